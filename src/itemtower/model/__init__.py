"""The item tower and its training-only parts. Imports torch (and pytorch-metric-learning) only: no I/O."""

from itemtower.model.config import TowerConfig, TowerSizes
from itemtower.model.heads import ProjectionHead
from itemtower.model.losses import ContrastiveLoss, SimilarityDistillLoss
from itemtower.model.tower import ItemTower

__all__ = ["ContrastiveLoss", "ItemTower", "ProjectionHead", "SimilarityDistillLoss", "TowerConfig", "TowerSizes"]
