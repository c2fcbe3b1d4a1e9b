"""From items to ids and tensors: the Korean-aware pre-tokenizer and the fitted WordPiece tokenizer, the fashion
lexicon, the fitted Featurizer, the augmented views (masking, synonyms), SimCSERecSysDataset and its collate."""

from itemtower.features.dataset import SimCSERecSysDataset, collate_items, collate_views
from itemtower.features.featurize import EncodedItem, Featurizer
from itemtower.features.pretokenize import PreTokenizer
from itemtower.features.tokenizer import TextTokenizer
from itemtower.features.views import ViewConfig, make_view

__all__ = ["EncodedItem", "Featurizer", "PreTokenizer", "SimCSERecSysDataset", "TextTokenizer", "ViewConfig",
           "collate_items", "collate_views", "make_view"]
