"""Baseline item embeddings that the learned tower has to beat: random, one-hot attributes, TF-IDF.

They take normalized items (see docs/design-notes.md) or texts and return row-per-item matrices with
L2-normalised rows, so `metrics.top_k` (inner product = cosine) scores them exactly like the model's h.

- `random_embeddings`: the floor (any metric's chance level).
- `onehot_embeddings`: STD attributes only; cosine = attribute overlap. Shows what the categorical fields alone give.
- `tfidf_embeddings` (character n-grams) / `tfidf_words_embeddings` (words): the lexical baseline over
  `item_text`, strong on near-duplicate titles (colour variants), blind to synonyms across languages.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from itemtower.vectors import l2_normalize

__all__ = [
    "item_text",
    "random_embeddings",
    "onehot_embeddings",
    "tfidf_embeddings",
    "tfidf_words_embeddings",
    "WORD_TOKEN_PATTERN",
]

# Runs of letters or digits in any script: Hangul syllables and jamo, Latin, digits. Underscore is excluded so
# codes such as "01outer_02jacket" split, and single characters are kept (many Korean words are one syllable:
# 핏, 룩, 캡), unlike sklearn's default r"(?u)\b\w\w+\b".
WORD_TOKEN_PATTERN = r"(?u)[^\W_]+"

_SEPARATORS = re.compile(r"[_.]+")


def _words(s: str) -> str:
    """'01outer_02jacket' -> '01outer 02jacket', 'specification.metadata' -> 'specification metadata'."""
    return " ".join(_SEPARATORS.sub(" ", str(s)).split())


def item_text(item: Mapping[str, Any], title: bool = True, std: bool = True, re: bool = True) -> str:
    """One flat string per item for lexical baselines.

    Args:
        item: normalized item {"id", "title", "std": {field: [values]}, "re": {field: [phrases]}, ...}.
        title: include the title.
        std: include each STD value as "field value" words (underscores and dots become spaces), so that
            "color Black" and a title word "black" share tokens, and the field name disambiguates codes.
        re: include the RE phrases verbatim (field names omitted: they are free text, not codes).

    Returns:
        The parts joined by single spaces, in the order title, STD fields, RE fields (each in the item's order).
    """
    parts: list[str] = []
    if title and item.get("title"):
        parts.append(" ".join(str(item["title"]).split()))
    if std:
        for field, values in (item.get("std") or {}).items():
            for v in values or ():
                parts.append(f"{_words(field)} {_words(v)}".strip())
    if re:
        for _field, phrases in (item.get("re") or {}).items():
            for ph in phrases or ():
                ph = " ".join(str(ph).split())
                if ph:
                    parts.append(ph)
    return " ".join(parts)


def random_embeddings(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Gaussian random vectors on the unit sphere.

    Args:
        n: number of items.
        dim: dimension.
        seed: numpy Generator seed.

    Returns:
        float32 [n, dim], L2-normalised rows.
    """
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def _l2_normalize_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Return a float32 copy with unit-norm rows; all-zero rows stay zero (no attributes, no direction)."""
    m = m.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ m, dtype=np.float32)


def onehot_embeddings(items: Sequence[Mapping[str, Any]], fields: Iterable[str] | None = None) -> sp.csr_matrix:
    """One-hot (multi-hot) encoding of the STD attributes.

    One column per (field, value) seen in `items`, columns sorted by (field, value) so the layout does not depend
    on item order. A multi-valued field sets several columns; repeated values count once. Rows are L2-normalised,
    so the inner product of two items is their attribute overlap / sqrt(|attrs_a| |attrs_b|); an item with no
    STD value is an all-zero row.

    Args:
        items: normalized items (only "std" is read).
        fields: STD fields to encode (default: every field present in `items`).

    Returns:
        float32 CSR [len(items), n_columns].
    """
    wanted = None if fields is None else set(fields)
    per_item: list[set[tuple[str, str]]] = []
    for it in items:
        attrs = set()
        for field, values in (it.get("std") or {}).items():
            if wanted is not None and field not in wanted:
                continue
            for v in values or ():
                attrs.add((str(field), str(v)))
        per_item.append(attrs)
    vocab = sorted(set().union(*per_item)) if per_item else []
    col = {a: j for j, a in enumerate(vocab)}
    indptr = [0]
    indices: list[int] = []
    for attrs in per_item:
        indices.extend(sorted(col[a] for a in attrs))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    m = sp.csr_matrix((data, np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                      shape=(len(per_item), len(vocab)))
    return _l2_normalize_rows(m)


def tfidf_embeddings(
    texts: Sequence[str],
    analyzer: str = "char_wb",
    ngram_range: tuple[int, int] = (2, 4),
    min_df: int | float = 2,
    max_features: int | None = None,
    sublinear_tf: bool = True,
    token_pattern: str | None = None,
) -> sp.csr_matrix:
    """TF-IDF vectors (sklearn TfidfVectorizer, fitted on `texts` themselves).

    The default, character n-grams within word boundaries, needs no tokenizer and copes with Korean, English and
    typos alike; min_df=2 drops n-grams of a single item (they cannot make two items similar anyway).

    Args:
        texts: one string per item (e.g. `item_text(item)`).
        analyzer: "char_wb", "char" or "word".
        ngram_range: n-gram lengths (characters or words, per `analyzer`).
        min_df: minimum document frequency (count, or fraction if float).
        max_features: keep only the most frequent features.
        sublinear_tf: use 1 + log(tf).
        token_pattern: word regex for analyzer="word" (default `WORD_TOKEN_PATTERN`).

    Returns:
        float32 CSR [len(texts), n_features], L2-normalised rows (rows with no kept feature are zero).

    Raises:
        ValueError: from sklearn when no feature survives (e.g. fewer than `min_df` texts share any n-gram).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=tuple(ngram_range),
        min_df=min_df,
        max_features=max_features,
        sublinear_tf=sublinear_tf,
        lowercase=True,
        norm="l2",
        dtype=np.float32,
    )
    if analyzer == "word":
        # only the word analyzer reads token_pattern (sklearn warns when it is set for char analyzers)
        vec.set_params(token_pattern=token_pattern or WORD_TOKEN_PATTERN)
    return sp.csr_matrix(vec.fit_transform(list(texts)), dtype=np.float32)


def tfidf_words_embeddings(
    texts: Sequence[str],
    ngram_range: tuple[int, int] = (1, 2),
    min_df: int | float = 2,
    max_features: int | None = None,
    sublinear_tf: bool = True,
) -> sp.csr_matrix:
    """Word unigram + bigram TF-IDF, tokens = runs of letters/digits in any script (`WORD_TOKEN_PATTERN`).

    Args:
        texts: one string per item.
        ngram_range: word n-gram lengths.
        min_df: minimum document frequency.
        max_features: keep only the most frequent features.
        sublinear_tf: use 1 + log(tf).

    Returns:
        float32 CSR [len(texts), n_features], L2-normalised rows.
    """
    return tfidf_embeddings(
        texts,
        analyzer="word",
        ngram_range=ngram_range,
        min_df=min_df,
        max_features=max_features,
        sublinear_tf=sublinear_tf,
        token_pattern=WORD_TOKEN_PATTERN,
    )
