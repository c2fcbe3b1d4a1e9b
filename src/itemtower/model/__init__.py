"""The item tower and its training-only parts. Imports torch (and pytorch-metric-learning) only: no I/O.

The losses (and with them pytorch-metric-learning, ~0.7 s to import) load on first use: embedding and serving
never need them."""

from itemtower.model.config import TowerConfig, TowerSizes
from itemtower.model.heads import ProjectionHead
from itemtower.model.tower import ItemTower

__all__ = ["ContrastiveLoss", "ItemTower", "ProjectionHead", "SimilarityDistillLoss", "TowerConfig", "TowerSizes"]

_LAZY = {"ContrastiveLoss", "SimilarityDistillLoss"}


def __getattr__(name: str):
    if name in _LAZY:
        from itemtower.model import losses

        return getattr(losses, name)
    raise AttributeError(f"module 'itemtower.model' has no attribute {name!r}")
