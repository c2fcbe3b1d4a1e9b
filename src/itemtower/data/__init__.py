"""From items to tensors: the fitted Featurizer, the augmented views, SimCSERecSysDataset and its collate."""

from itemtower.data.dataset import SimCSERecSysDataset, collate_views, collate_items
from itemtower.data.featurize import EncodedItem, Featurizer
from itemtower.data.views import ViewConfig, make_view

__all__ = ["EncodedItem", "Featurizer", "SimCSERecSysDataset", "ViewConfig", "collate_items",
           "collate_views", "make_view"]
