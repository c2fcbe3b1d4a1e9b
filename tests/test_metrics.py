"""Tests for itemtower.evaluation.metrics on tiny arrays whose answers can be worked out by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from itemtower.evaluation.metrics import (
    alignment_uniformity,
    attribute_consistency,
    linear_probe,
    other_view_recall,
    pair_metrics,
    top_k,
)

# Five items in 3-D. Scores (inner products) by hand:
#   0=[1,0,0] 1=[1,0,0] 2=[0,1,0] 3=[.6,.8,0] 4=[0,0,1]
#   row 0: 1->1.0, 3->0.6, 2->0, 4->0     row 3: 2->0.8, 0->0.6, 1->0.6, 4->0
TINY = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0.6, 0.8, 0], [0, 0, 1]], dtype=np.float32)


def test_top_k_excludes_self_and_orders_by_score():
    """Each row's own index never appears and neighbours come best score first."""
    idx, scores = top_k(TINY, 2)
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    assert idx.tolist() == [[1, 3], [0, 3], [3, 0], [2, 0], [0, 1]]
    np.testing.assert_allclose(scores[0], [1.0, 0.6], rtol=1e-6)
    np.testing.assert_allclose(scores[3], [0.8, 0.6], rtol=1e-6)
    assert all(i not in row for i, row in enumerate(idx.tolist()))


def test_top_k_without_exclusion_returns_self_first_when_best():
    """With exclude_self=False an item's own row is a candidate (lower index wins the tie with its duplicate)."""
    idx, _ = top_k(TINY, 1, exclude_self=False)
    assert idx[:, 0].tolist() == [0, 0, 2, 3, 4]


def test_top_k_ties_go_to_lower_index():
    """Equal scores are ordered by lower index, including at the k-th (boundary) place."""
    emb = np.zeros((6, 2), dtype=np.float32)
    emb[:, 0] = 1.0  # all identical: every score ties
    for m in (emb, sp.csr_matrix(emb)):
        idx, scores = top_k(m, 3)
        assert idx[0].tolist() == [1, 2, 3]
        assert idx[4].tolist() == [0, 1, 2]
        assert np.all(scores == 1.0)


def test_top_k_matches_brute_force_on_random_integer_data():
    """Blocked selection equals a stable full sort on data with many ties, for any batch size."""
    rng = np.random.default_rng(0)
    emb = rng.integers(0, 3, size=(300, 4)).astype(np.float32)
    s = emb @ emb.T
    np.fill_diagonal(s, -np.inf)
    ref = np.array([np.lexsort((np.arange(300), -row))[:20] for row in s])
    for batch in (7, 64, 2048):
        idx, scores = top_k(emb, 20, batch=batch)
        assert np.array_equal(idx, ref)
        np.testing.assert_array_equal(scores, np.take_along_axis(s, ref, axis=1).astype(np.float32))


def test_top_k_sparse_equals_dense():
    """A CSR matrix gives the same neighbours and scores as its dense copy."""
    rng = np.random.default_rng(1)
    # rare features (scored by the sparse product) plus one feature in every row, like a very common n-gram
    # (scored by the dense BLAS path): both halves of the sparse scorer are exercised
    dense = (rng.random((80, 300)) < 0.02) * rng.random((80, 300))
    dense[:, 0] = 0.5
    dense = (dense / np.linalg.norm(dense, axis=1, keepdims=True)).astype(np.float32)
    i_d, s_d = top_k(dense, 10)
    i_s, s_s = top_k(sp.csr_matrix(dense), 10)
    np.testing.assert_allclose(s_s, s_d, rtol=1e-5, atol=1e-6)
    assert (i_s == i_d).mean() > 0.99  # float sums in another order may swap near-equal neighbours


def test_top_k_external_queries():
    """With queries given, rows of emb are ranked for each query and nothing is excluded."""
    q = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32)
    idx, scores = top_k(TINY, 2, queries=q)
    assert idx.tolist() == [[2, 3], [4, 0]]
    np.testing.assert_allclose(scores, [[1.0, 0.8], [1.0, 0.0]], atol=1e-6)


def test_top_k_rejects_bad_k():
    """k larger than the number of other rows is a clear ValueError."""
    with pytest.raises(ValueError, match="k must be"):
        top_k(TINY, 5)
    with pytest.raises(ValueError, match="k must be"):
        top_k(TINY, 0)


# pair_metrics: 4 items, relevant sets a:{b, c}, b:{a}, c:{a}, d:{} -> queries a, b, c.
IDS = ["a", "b", "c", "d"]
PAIRS = [("a", "b"), ("c", "a"), ("b", "a"), ("a", "zz"), ("d", "d")]
# neighbours (row indices): a -> [b, d, c], b -> [d, c, a], c -> [d, b, ...] (a missing)
NB = np.array([[1, 3, 2], [3, 2, 0], [3, 1, -1], [0, 1, 2]])


def test_pair_metrics_hand_computed():
    """Recall, NDCG and MRR equal values computed by hand, including a two-relevant item and a miss."""
    m = pair_metrics(NB, IDS, PAIRS, ks=(1, 3), ndcg_k=3, mrr_k=3)
    # recall@1: a 1/2, b 0, c 0 -> 1/6 ; recall@3: a 2/2, b 1/1, c 0 -> 2/3
    assert m["recall@1"] == pytest.approx(1 / 6)
    assert m["recall@3"] == pytest.approx(2 / 3)
    # NDCG@3: a hits at ranks 1, 3: (1 + 1/log2 4) / (1 + 1/log2 3); b hit at rank 3: (1/2) / 1; c 0
    ndcg_a = (1 + 0.5) / (1 + 1 / math.log2(3))
    assert m["ndcg@3"] == pytest.approx((ndcg_a + 0.5 + 0.0) / 3)
    # MRR@3: a 1, b 1/3, c 0
    assert m["mrr@3"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["n_queries"] == 3
    assert m["n_pairs_used"] == 2  # (a,b) and (b,a) are one pair
    assert m["n_pairs_ignored"] == 2  # unknown id "zz" and self-pair (d, d)


def test_pair_metrics_default_keys_and_column_check():
    """Default keys are recall@10/50, ndcg@10, mrr@10, and too few neighbour columns is a ValueError."""
    rng = np.random.default_rng(0)
    ids = [str(i) for i in range(60)]
    nb, _ = top_k(rng.standard_normal((60, 8)).astype(np.float32), 50)
    m = pair_metrics(nb, ids, [("0", "1"), ("2", "3")])
    assert {"recall@10", "recall@50", "ndcg@10", "mrr@10", "n_queries", "n_pairs_used"} <= set(m)
    assert m["n_queries"] == 4 and m["n_pairs_used"] == 2
    with pytest.raises(ValueError, match="columns"):
        pair_metrics(nb[:, :20], ids, [("0", "1")])


def test_other_view_recall_perfect_and_shuffled():
    """Identical views give recall 1; a view paired with the wrong rows gives recall 0 at K=1."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perfect = other_view_recall(x, x)
    assert perfect["recall@1"] == 1.0 and perfect["recall@10"] == 1.0 and perfect["mean_rank"] == 1.0
    shifted = other_view_recall(x, np.roll(x, 1, axis=0))  # row i's own view now sits at row i+1
    assert shifted["recall@1"] == 0.0
    assert shifted["recall@10"] < 0.5


def test_other_view_recall_ties_rank_lower_index_first():
    """When all candidates tie, item i's other view ranks i+1, so recall@K is K/N."""
    x = np.ones((20, 3), dtype=np.float32)
    m = other_view_recall(x, x, ks=(1, 10))
    assert m["recall@1"] == pytest.approx(1 / 20)
    assert m["recall@10"] == pytest.approx(10 / 20)


def test_attribute_consistency_hand_computed():
    """The score is the mean matching fraction over labelled queries; None neighbours never match."""
    labels = ["x", "x", "y", None]
    nb = np.array([[1, 2], [0, 3], [0, 1], [0, 1]])
    # query 0: [x, y] -> 1/2 ; query 1: [x, None] -> 1/2 ; query 2: [x, x] -> 0 ; query 3 skipped
    assert attribute_consistency(nb, labels, k=2) == pytest.approx(1 / 3)
    assert attribute_consistency(nb, labels, k=1) == pytest.approx(2 / 3)
    assert math.isnan(attribute_consistency(nb, [None] * 4, k=1))


def test_alignment_uniformity_extremes():
    """Identical views have zero alignment; collapsed embeddings are less uniform than spread ones."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 8))
    spread = alignment_uniformity(x, x)
    assert spread["alignment"] == pytest.approx(0.0, abs=1e-12)
    collapsed = alignment_uniformity(np.ones((200, 8)), np.ones((200, 8)))
    assert collapsed["uniformity"] == pytest.approx(0.0, abs=1e-9)  # log mean exp(0)
    assert spread["uniformity"] < -1.0
    opposite = alignment_uniformity(np.eye(2), -np.eye(2))
    assert opposite["alignment"] == pytest.approx(4.0)  # ||x - (-x)||^2 = 4 on the unit sphere
    assert alignment_uniformity(x, x, max_samples=50)["n_uniformity"] == 50


def test_linear_probe_separable_and_random():
    """Separable classes are learned almost perfectly; random labels stay near chance; rare/None labels drop."""
    rng = np.random.default_rng(4)
    centers = rng.standard_normal((4, 16)) * 5
    y = rng.integers(0, 4, size=600)
    X = centers[y] + rng.standard_normal((600, 16))
    res = linear_probe(X, [f"c{v}" for v in y])
    assert res["accuracy"] > 0.95 and res["n_classes"] == 4
    assert res["n_train"] + res["n_test"] == 600

    noise = linear_probe(rng.standard_normal((600, 16)), list(rng.integers(0, 4, size=600)))
    assert noise["accuracy"] < 0.45  # chance is 0.25

    labels = [f"c{v}" for v in y]
    labels[0] = "singleton"
    labels[1] = None
    res2 = linear_probe(X, labels, max_classes=2)
    assert res2["n_classes"] == 2
    assert res2["n_train"] + res2["n_test"] < 600
