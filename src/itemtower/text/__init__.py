"""Text handling: Korean-aware pre-tokenization and a subword tokenizer fitted on the catalog."""

from itemtower.text.pretokenize import PreTokenizer
from itemtower.text.tokenizer import TextTokenizer

__all__ = ["PreTokenizer", "TextTokenizer"]
