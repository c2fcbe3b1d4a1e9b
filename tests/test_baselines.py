"""Tests for itemtower.evaluation.baselines: texts, random, one-hot and TF-IDF embeddings."""

import numpy as np
import pytest
import scipy.sparse as sp

from itemtower.evaluation.baselines import (
    item_text,
    onehot_embeddings,
    random_embeddings,
    tfidf_embeddings,
    tfidf_words_embeddings,
)
from itemtower.evaluation.metrics import top_k

ITEM = {
    "id": "1",
    "title": "Puma  Ferrari Black Jacket",
    "std": {"category": ["01outer_02jacket"], "color": ["Black", "Red"]},
    "re": {"specification.metadata": ["Ferrari edition"]},
}


def _row_norms(m):
    m = m.toarray() if sp.issparse(m) else m
    return np.linalg.norm(m, axis=1)


def test_item_text_joins_title_std_and_re():
    """Title, 'field value' words with underscores/dots as spaces, then RE phrases, each part switchable."""
    assert item_text(ITEM) == (
        "Puma Ferrari Black Jacket category 01outer 02jacket color Black color Red Ferrari edition"
    )
    assert item_text(ITEM, std=False, re=False) == "Puma Ferrari Black Jacket"
    assert item_text(ITEM, title=False, std=False) == "Ferrari edition"
    assert item_text({"id": "2", "title": "t"}) == "t"


def test_random_embeddings_unit_norm_and_seeded():
    """Random vectors are float32, unit-norm and reproducible per seed."""
    a = random_embeddings(10, dim=8, seed=1)
    assert a.shape == (10, 8) and a.dtype == np.float32
    np.testing.assert_allclose(_row_norms(a), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a, random_embeddings(10, dim=8, seed=1))
    assert not np.array_equal(a, random_embeddings(10, dim=8, seed=2))


def test_onehot_embeddings_overlap_and_neighbours():
    """One column per (field, value); cosine is attribute overlap, so the item sharing most attributes is nearest."""
    items = [
        {"id": "a", "std": {"category": ["top"], "color": ["black"]}},
        {"id": "b", "std": {"category": ["top"], "color": ["white"]}},
        {"id": "c", "std": {"category": ["top"], "color": ["black", "white"]}},
        {"id": "d", "std": {"category": ["pants"], "color": ["red"]}},
        {"id": "e", "std": {}},
    ]
    m = onehot_embeddings(items)
    assert sp.issparse(m) and m.shape == (5, 5)  # top, pants, black, white, red
    np.testing.assert_allclose(_row_norms(m)[:4], 1.0, rtol=1e-6)
    assert m[4].nnz == 0  # no attributes: zero row
    s = (m @ m.T).toarray()
    assert s[0, 2] == pytest.approx(2 / np.sqrt(2 * 3), rel=1e-6)  # shares top + black; |a| = 2, |c| = 3
    assert s[0, 3] == 0.0
    idx, _ = top_k(m, 1)
    assert idx[0, 0] == 2 and idx[1, 0] == 2
    only_color = onehot_embeddings(items, fields=["color"])
    assert only_color.shape == (5, 3)


def test_tfidf_near_duplicate_titles_are_nearest():
    """Character and word TF-IDF put colour variants of the same product next to each other."""
    texts = [
        "나이키 에어 맥스 운동화 블랙",
        "나이키 에어 맥스 운동화 화이트",
        "리바이스 501 청바지 블루",
        "리바이스 501 청바지 블랙",
        "Puma Ferrari fleece jacket black",
        "Puma Ferrari fleece jacket red",
    ]
    partner = [1, 0, 3, 2, 5, 4]
    for m in (tfidf_embeddings(texts), tfidf_words_embeddings(texts)):
        assert sp.issparse(m) and m.dtype == np.float32
        np.testing.assert_allclose(_row_norms(m), 1.0, rtol=1e-5)
        idx, _ = top_k(m, 1)
        assert idx[:, 0].tolist() == partner


def test_tfidf_words_keeps_hangul_single_syllables_and_splits_codes():
    """The word tokenizer keeps one-syllable Hangul words and splits underscore codes into tokens."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from itemtower.evaluation.baselines import WORD_TOKEN_PATTERN

    vec = TfidfVectorizer(token_pattern=WORD_TOKEN_PATTERN)
    vec.fit(["오버 핏 셔츠 01outer_02jacket"])
    assert set(vec.vocabulary_) == {"오버", "핏", "셔츠", "01outer", "02jacket"}
