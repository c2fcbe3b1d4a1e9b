"""A WordPiece vocabulary fitted on the catalog's pre-tokenized text (HF `tokenizers`), saved with the model.

Frequent words stay whole (a brand or "와이드" keeps its own id: lexical identity matters for near-duplicate
products), rare ones fall back to word pieces, and anything unseen maps to [UNK], which is counted, never raised.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer, models, pre_tokenizers

from itemtower.ids import TOKEN_MASK, TOKEN_PAD, TOKEN_UNK
from itemtower.features.pretokenize import PreTokenizer

__all__ = ["TextTokenizer", "PAD_ID", "UNK_ID", "MASK_ID"]

SPECIALS = ["[PAD]", "[UNK]", "[MASK]"]
PAD_ID, UNK_ID, MASK_ID = TOKEN_PAD, TOKEN_UNK, TOKEN_MASK


class TextTokenizer:
    """Pre-tokenizer + fitted WordPiece model.

    Use `TextTokenizer.fit(texts)` on a catalog, `encode_batch(texts)` to get id lists, `save`/`load` to keep it.
    """

    def __init__(self, tokenizer: Tokenizer, pre: PreTokenizer | None = None) -> None:
        self.tok = tokenizer
        self.pre = pre or PreTokenizer()
        if self.tok.token_to_id("[PAD]") != PAD_ID or self.tok.token_to_id("[UNK]") != UNK_ID:
            raise ValueError("tokenizer must have [PAD]=0 and [UNK]=1")

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int = 30000, min_frequency: int = 2,
            pre: PreTokenizer | None = None) -> "TextTokenizer":
        """Fit a WordPiece vocabulary on the texts (pre-tokenized first).

        The vocabulary is built here, not by tokenizers' WordPieceTrainer, because the trainer breaks ties in
        a different order on every run and training must be reproducible: every character seen (as a word start
        and as a "##" continuation, so any word can be spelled), then whole words by frequency (ties by text).
        """
        pre = pre or PreTokenizer()
        return cls.fit_words(pre.batch(list(texts)), vocab_size, min_frequency, pre)

    @classmethod
    def fit_words(cls, words: Sequence[Sequence[str]], vocab_size: int = 30000, min_frequency: int = 2,
                  pre: PreTokenizer | None = None) -> "TextTokenizer":
        """`fit` on texts already pre-tokenized by `pre` (so a caller that also encodes them splits them once)."""
        counts = Counter(w for ws in words for w in ws)
        chars: set[str] = set()
        for w in counts:
            chars.update(w[:1])
            chars.update("##" + c for c in w[1:])
        vocab = {t: i for i, t in enumerate(SPECIALS)}
        for t in sorted(chars):
            vocab.setdefault(t, len(vocab))
        for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if len(vocab) >= vocab_size or c < min_frequency:
                break
            vocab.setdefault(w, len(vocab))
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=50))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        return cls(tok, pre or PreTokenizer())

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Text -> token ids (no specials, no padding, no truncation)."""
        return self.encode_words(self.pre.batch(texts))

    def encode_words(self, words: Sequence[Sequence[str]]) -> list[list[int]]:
        """Pre-tokenized texts (from `self.pre`) -> token ids.

        Each distinct word goes to tokenizers once: WordPiece splits every word on its own (no normalizer, no
        specials), so a word's pieces never depend on its neighbours, and a catalog repeats its words (Myntra:
        2M words, 15k distinct). One call per text cost 8x more (BENCHMARKS.md 14)."""
        uniq = list(dict.fromkeys(w for ws in words for w in ws))
        if not uniq:
            return [[] for _ in words]
        # is_pretokenized: tokenizers must not re-split our words.
        encs = self.tok.encode_batch([[w] for w in uniq], is_pretokenized=True, add_special_tokens=False)
        pieces = dict(zip(uniq, (e.ids for e in encs)))
        return [[i for w in ws for i in pieces[w]] for ws in words]

    def tokens(self, text: str) -> list[str]:
        return self.tok.encode(self.pre(text) or [], is_pretokenized=True, add_special_tokens=False).tokens

    def id_to_token(self, i: int) -> str:
        return self.tok.id_to_token(i) or "[UNK]"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.tok.to_str(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "TextTokenizer":
        p = Path(path)
        try:
            return cls(Tokenizer.from_str(p.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, Exception) as e:  # tokenizers raises a bare Exception on bad JSON
            raise ValueError(f"cannot read tokenizer {p}: {e}") from e
