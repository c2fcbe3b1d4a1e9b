"""Featurizer: item dict -> ids. Value vocabularies for STD fields and the text tokenizer, fitted on a catalog.

STD values share one vocabulary of "field=value" keys, so the same word in two fields ("Others") stays apart.
Text is the title plus every RE phrase, each token tagged with its segment type (1 = title, 2 + i = RE field i),
so the tower knows which answer a token came from.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from itemtower.ids import FIRST_VALUE, TOKEN_UNK, TYPE_PAD, TYPE_TITLE, VALUE_MASK, VALUE_PAD, VALUE_UNK
from itemtower.catalog.schema import Schema
from itemtower.features.pretokenize import PreTokenizer
from itemtower.features.tokenizer import TextTokenizer

__all__ = ["COLOUR_FIELDS", "EncodedItem", "Featurizer", "VALUE_PAD", "VALUE_MASK", "VALUE_UNK", "TYPE_PAD",
           "TYPE_TITLE"]

COLOUR_FIELDS = ("color", "colour", "base_colour")  # STD fields that name the item's colour (views, colour_blind)


@dataclass
class EncodedItem:
    """One item as ids, before augmentation.

    std: per STD field (schema order), the list of value ids (empty = field missing).
    title: title token ids. re: per RE field (schema order), a list of phrases, each a list of token ids.
    """

    std: list[list[int]]
    title: list[int]
    re: list[list[list[int]]]
    n_unk: int = 0  # unknown STD values + [UNK] text tokens, for reporting


@dataclass
class Featurizer:
    """Fitted vocabularies + tokenizer. `fit` on a catalog, `encode` items, `save`/`load` with the model."""

    schema: Schema
    tokenizer: TextTokenizer
    values: dict[str, int]  # "field=value" -> id (ids 0..2 are PAD, MASK, UNK)
    max_values: int = 4  # values kept per multi-valued STD field
    max_title_tokens: int = 32
    max_text_tokens: int = 128  # title + RE tokens, after which RE text is truncated
    token_df: list[int] = field(default_factory=list)  # document frequency per token id, for IDF pooling init
    value_df: list[int] = field(default_factory=list)  # items per STD value id, for the value bag's IDF init
    n_docs: int = 0
    colour_blind: bool = False  # encode items without their colour: colour words (the lexicon's) out of the text,
    #                             the STD colour field left empty (COLOUR_FIELDS); False in models saved before it
    _colour: Any = field(default=None, init=False, repr=False, compare=False)  # (colour token ids, field indexes)

    @property
    def std_fields(self) -> tuple[str, ...]:
        return tuple(self.schema.std_fields)

    @property
    def n_values(self) -> int:
        return len(self.values) + FIRST_VALUE

    @staticmethod
    def _key(field_name: str, value: str) -> str:
        return f"{field_name}={value}"

    @classmethod
    def fit(cls, items: Sequence[dict[str, Any]], schema: Schema, vocab_size: int = 30000,
            min_frequency: int = 2, **kw: Any) -> "Featurizer":
        """Fit value vocabularies (schema values first, then catalog values) and the tokenizer on items."""
        return cls.fit_encode(items, schema, vocab_size, min_frequency, **kw)[0]

    @classmethod
    def fit_encode(cls, items: Sequence[dict[str, Any]], schema: Schema, vocab_size: int = 30000,
                   min_frequency: int = 2, **kw: Any) -> tuple["Featurizer", list[EncodedItem]]:
        """`fit`, also returning the items encoded on the way (the IDF counts need them): training uses both,
        so the catalog is tokenized once, not twice."""
        keys: dict[str, int] = {}

        def add(k: str) -> None:
            if k not in keys:
                keys[k] = len(keys) + FIRST_VALUE

        for f, allowed in schema.std_fields.items():
            for v in allowed or ():
                add(cls._key(f, v))
        counts: Counter[str] = Counter()
        for it in items:
            for f, vs in (it.get("std") or {}).items():
                if f in schema.std_fields:
                    counts.update(cls._key(f, v) for v in vs)
        for k, _ in counts.most_common():
            add(k)
        pre = PreTokenizer()
        words = pre.batch([t for it in items for t in _texts(it, schema)])  # once: kiwi is the slow part
        tok = TextTokenizer.fit_words(words, vocab_size=vocab_size, min_frequency=min_frequency, pre=pre)
        feat = cls(schema=schema, tokenizer=tok, values=keys, **kw)
        encoded = feat._encode(items, tok.encode_words(words))
        df = [0] * tok.vocab_size
        for enc in encoded:
            for t in set(enc.title) | {t for phrases in enc.re for p in phrases for t in p}:
                df[t] += 1
        vdf = [0] * feat.n_values
        for enc in encoded:
            for v in {v for row in enc.std for v in row}:
                vdf[v] += 1
        feat.token_df, feat.value_df, feat.n_docs = df, vdf, len(items)
        return feat, encoded

    def encode(self, items: Sequence[dict[str, Any]]) -> list[EncodedItem]:
        """Items (normalized dicts; any part may be missing) -> EncodedItems. Unknown values -> UNK, counted."""
        flat: list[str] = []
        for it in items:
            flat.extend(_texts(it, self.schema))
        return self._encode(items, self.tokenizer.encode_batch(flat) if flat else [])

    def _encode(self, items: Sequence[dict[str, Any]], ids: Sequence[list[int]]) -> list[EncodedItem]:
        """`encode` with the token ids of every text of `items` given, in `_texts` order."""
        fields = self.std_fields
        re_fields = self.schema.re_fields
        out, pos = [], 0
        for it in items:
            std_in = it.get("std") or {}
            n_unk = 0
            std: list[list[int]] = []
            for f in fields:
                vs = std_in.get(f) or []
                if isinstance(vs, str):
                    vs = [vs]
                row = [self.values.get(self._key(f, v), VALUE_UNK) for v in vs[: self.max_values]]
                n_unk += row.count(VALUE_UNK)
                std.append(row)
            title = ids[pos][: self.max_title_tokens]
            pos += 1
            re_in = it.get("re") or {}
            re_ids: list[list[list[int]]] = []
            for f in re_fields:
                phrases = re_in.get(f) or []
                if isinstance(phrases, str):
                    phrases = [phrases]
                re_ids.append([ids[pos + j] for j in range(len(phrases))])
                pos += len(phrases)
            if self.colour_blind:
                title, re_ids = self._without_colour(std, title, re_ids)
            n_unk += title.count(TOKEN_UNK) + sum(p.count(TOKEN_UNK) for ph in re_ids for p in ph)
            out.append(EncodedItem(std=std, title=title, re=re_ids, n_unk=n_unk))
        return out

    def colour_parts(self) -> tuple[frozenset[int], list[int]]:
        """What colour_blind leaves out: the lexicon's colour token ids in this tokenizer, and the indexes of the
        STD colour fields (COLOUR_FIELDS) among std_fields. Computed once."""
        if self._colour is None:
            from itemtower.features.synonyms import build_swap_table

            self._colour = (build_swap_table(self.tokenizer).colour_ids,
                            [i for i, f in enumerate(self.std_fields) if f in COLOUR_FIELDS])
        return self._colour

    def _without_colour(self, std: list[list[int]], title: list[int], re_ids: list[list[list[int]]]):
        """colour_blind: the colour field emptied (in place), colour words dropped (a title of colour words
        alone keeps its first token; RE phrases left empty are dropped)."""
        words, colour_fields = self.colour_parts()
        for i in colour_fields:
            std[i] = []
        title = [t for t in title if t not in words] or title[:1]
        re_ids = [[q for q in ([t for t in p if t not in words] for p in ph) if q] for ph in re_ids]
        return title, re_ids

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "max_values": self.max_values, "max_title_tokens": self.max_title_tokens,
                "max_text_tokens": self.max_text_tokens, "token_df": self.token_df, "value_df": self.value_df,
                "n_docs": self.n_docs, "colour_blind": self.colour_blind}

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        self.schema.save(d / "schema.json")
        self.tokenizer.save(d / "tokenizer.json")
        (d / "featurizer.json").write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Featurizer":
        d = Path(directory)
        for name in ("schema.json", "tokenizer.json", "featurizer.json"):
            if not (d / name).exists():
                raise FileNotFoundError(f"{d / name} is missing: the model directory is incomplete")
        try:
            meta = json.loads((d / "featurizer.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{d / 'featurizer.json'}: not valid JSON ({e.msg})") from None
        return cls(schema=Schema.load(d / "schema.json"), tokenizer=TextTokenizer.load(d / "tokenizer.json"), **meta)


def _texts(item: dict[str, Any], schema: Schema) -> list[str]:
    """The title, then each RE phrase in schema order: the order `encode` reads them back in."""
    out = [str(item.get("title") or "")]
    re_in = item.get("re") or {}
    for f in schema.re_fields:
        phrases = re_in.get(f) or []
        out.extend([phrases] if isinstance(phrases, str) else [str(p) for p in phrases])
    return out
