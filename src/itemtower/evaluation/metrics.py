"""Retrieval and representation metrics: arrays in, numbers out (no model, no torch).

Everything here works on plain arrays so that the learned tower, the baselines (random / one-hot / TF-IDF, see
`baselines.py`) and any external embedding are scored by exactly the same code:

- `top_k`: exact inner-product nearest neighbours, dense float32 or scipy.sparse CSR (TF-IDF) input.
- `pair_metrics`: Recall@K / NDCG@10 / MRR@10 against known related-item pairs (e.g. colour variants).
- `other_view_recall`: can view 1 of item i find view 2 of item i among all items' view 2?
- `attribute_consistency`: how often the neighbours share a label (category, colour, ...).
- `alignment_uniformity`: Wang & Isola (2020) alignment and uniformity.
- `linear_probe`: logistic-regression accuracy of a label from the embedding.

Conventions: scores are inner products (cosine when the caller passes L2-normalised rows); rows are items in the
order of the caller's `ids`; ties between equal scores always go to the lower row index, so every result is
reproducible and the tests can state exact neighbours.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from itemtower.evaluation.topk import BLOCK_CELLS, Scorer, as_matrix, top_k
from itemtower.vectors import l2_normalize

__all__ = [
    "top_k",
    "pair_metrics",
    "other_view_recall",
    "attribute_consistency",
    "alignment_uniformity",
    "linear_probe",
]

# ----------------------------------------------------------------------------------------------------------------
# retrieval metrics
# ----------------------------------------------------------------------------------------------------------------


def pair_metrics(
    neighbors: np.ndarray,
    ids: Sequence[Hashable],
    pairs: Iterable[Sequence[Hashable]],
    ks: Sequence[int] = (10, 50),
    ndcg_k: int = 10,
    mrr_k: int = 10,
) -> dict[str, float | int]:
    """Ranking quality against known related-item pairs (binary relevance).

    Item b is relevant to query a when (a, b) or (b, a) is in `pairs`. Only items with at least one relevant
    item are queries. Per query: Recall@K = |relevant in top K| / |relevant|; NDCG@n = DCG / ideal DCG with
    DCG = sum over relevant hits at rank p (1-based) of 1 / log2(p + 1) and the ideal placing min(|relevant|, n)
    hits first; MRR@n = 1 / rank of the first relevant hit within n, else 0. All are averaged over queries.

    Args:
        neighbors: int [N, >= max(ks, ndcg_k, mrr_k)], row i = distinct row indices of the neighbours of ids[i],
            best first (as from `top_k`); negative values (e.g. FAISS padding) count as misses.
        ids: the N item ids, in row order.
        pairs: unordered (id_a, id_b) pairs. Pairs with an id not in `ids`, or joining an id to itself, are
            ignored and counted; duplicates (in either order) count once.
        ks: cut-offs for recall.
        ndcg_k, mrr_k: cut-offs for NDCG and MRR.

    Returns:
        {"recall@K" for K in ks, "ndcg@<ndcg_k>", "mrr@<mrr_k>": float (nan when there are no queries),
         "n_queries": items with >= 1 relevant item, "n_pairs_used": distinct usable pairs,
         "n_pairs_ignored": pairs dropped (unknown id or self-pair)}.
    """
    ks = tuple(int(x) for x in ks)
    nb = np.asarray(neighbors)
    ids = list(ids)
    n = len(ids)
    pos = {item_id: i for i, item_id in enumerate(ids)}
    if len(pos) != n:
        raise ValueError("ids contains duplicates")
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must be [len(ids)={n}, K], got shape {nb.shape}")
    need = max(max(ks), ndcg_k, mrr_k)
    if nb.shape[1] < need:
        raise ValueError(
            f"neighbors has {nb.shape[1]} columns but the metrics need {need} (max of ks={ks}, ndcg_k={ndcg_k}, "
            f"mrr_k={mrr_k}); compute top_k with k >= {need}"
        )

    used, n_ignored = _usable_pairs(pairs, pos)
    if not used:
        out: dict[str, float | int] = {f"recall@{kk}": float("nan") for kk in ks}
        out.update({f"ndcg@{ndcg_k}": float("nan"), f"mrr@{mrr_k}": float("nan")})
        out.update(n_queries=0, n_pairs_used=0, n_pairs_ignored=n_ignored)
        return out
    hit, n_rel = _pair_hits(nb, used, n, need)
    out = _ranking_scores(hit, n_rel, ks, ndcg_k, mrr_k)
    out.update(n_queries=int(hit.shape[0]), n_pairs_used=len(used), n_pairs_ignored=n_ignored)
    return out


def _usable_pairs(pairs: Iterable[Sequence[Hashable]], pos: dict) -> tuple[set[tuple[int, int]], int]:
    """Distinct (lower row, higher row) pairs of known, different ids, and how many pairs were dropped."""
    used: set[tuple[int, int]] = set()
    n_ignored = 0
    for a, b in pairs:
        ia, ib = pos.get(a), pos.get(b)
        if ia is None or ib is None or ia == ib:
            n_ignored += 1
            continue
        used.add((ia, ib) if ia < ib else (ib, ia))
    return used, n_ignored


def _pair_hits(nb: np.ndarray, used: set[tuple[int, int]], n: int, need: int) -> tuple[np.ndarray, np.ndarray]:
    """(hit [Nq, need] bool: is the neighbour at each rank relevant, relevant items per query [Nq]) over the items
    with at least one relevant item."""
    p = np.array(sorted(used), dtype=np.int64)
    # both directions: relevance is symmetric
    rel_q = np.concatenate([p[:, 0], p[:, 1]])
    rel_t = np.concatenate([p[:, 1], p[:, 0]])
    n_rel = np.bincount(rel_q, minlength=n)
    queries = np.flatnonzero(n_rel > 0)
    rel_codes = np.unique(rel_q * n + rel_t)  # (query, target) encoded as one int64 for a vectorised isin

    top = nb[queries, :need].astype(np.int64)
    valid = (top >= 0) & (top < n)
    hit = np.isin(queries[:, None] * n + np.where(valid, top, 0), rel_codes) & valid  # [Nq, need] bool
    return hit, n_rel[queries]


def _ranking_scores(hit: np.ndarray, n_rel: np.ndarray, ks: Sequence[int], ndcg_k: int,
                    mrr_k: int) -> dict[str, float | int]:
    """Recall@K, NDCG@ndcg_k and MRR@mrr_k averaged over the queries of `hit` (see pair_metrics)."""
    out: dict[str, float | int] = {}
    nrel_q = n_rel.astype(np.float64)
    for kk in ks:
        out[f"recall@{kk}"] = float(np.mean(hit[:, :kk].sum(axis=1) / nrel_q))

    disc = 1.0 / np.log2(np.arange(2, ndcg_k + 2, dtype=np.float64))  # rank p -> 1 / log2(p + 1)
    dcg = (hit[:, :ndcg_k] * disc).sum(axis=1)
    idcg = np.cumsum(disc)[np.minimum(n_rel, ndcg_k) - 1]
    out[f"ndcg@{ndcg_k}"] = float(np.mean(dcg / idcg))

    h = hit[:, :mrr_k]
    first = np.argmax(h, axis=1)
    rr = np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)
    out[f"mrr@{mrr_k}"] = float(np.mean(rr))
    return out


def other_view_recall(
    emb1: np.ndarray | sp.spmatrix,
    emb2: np.ndarray | sp.spmatrix,
    ks: Sequence[int] = (1, 10),
    batch: int = 2048,
) -> dict[str, float]:
    """Cross-view retrieval: does view 1 of item i retrieve view 2 of item i among all items' view 2?

    The rank of emb2[i] for query emb1[i] is 1 + the number of rows j with a higher score, plus the rows j < i
    with an equal score (the same lower-index-first tie rule as `top_k`).

    Args:
        emb1: [N, D] first view (dense or sparse), one row per item.
        emb2: [N, D] second view, same row order.
        ks: cut-offs.
        batch: most query rows scored at once (also capped at ~128 MB per block).

    Returns:
        {"recall@K": fraction of items whose other view ranks <= K, for K in ks; "mean_rank": mean 1-based rank}.
    """
    a = as_matrix(emb1, "emb1")
    b = as_matrix(emb2, "emb2")
    if a.shape != b.shape:
        raise ValueError(f"emb1 and emb2 must have the same shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    scorer = Scorer(b, a, n)
    rows = int(max(1, min(batch, BLOCK_CELLS // max(n, 1), n)))
    buf = np.empty((rows, n), dtype=np.float32)
    ranks = np.empty(n, dtype=np.int64)  # 0-based
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        s = scorer.block(start, stop, buf)
        r = np.arange(stop - start)
        own = s[r, start + r]
        ranks[start:stop] = (s > own[:, None]).sum(axis=1)
        # exact ties are rare: resolve them row by row (only rows j < i that tie rank above i)
        n_eq = (s == own[:, None]).sum(axis=1)
        for i in np.flatnonzero(n_eq > 1):
            ranks[start + i] += int(np.count_nonzero(s[i, : start + i] == own[i]))
    out = {f"recall@{int(kk)}": float(np.mean(ranks < int(kk))) for kk in ks}
    out["mean_rank"] = float(np.mean(ranks + 1)) if n else float("nan")
    return out


def attribute_consistency(neighbors: np.ndarray, labels: Sequence[Hashable | None], k: int = 10) -> float:
    """Mean fraction of the top-k neighbours that share the query's label.

    Args:
        neighbors: int [N, >= k] neighbour row indices (as from `top_k`); negative values count as not matching.
        labels: N hashable labels (None = unknown). For multi-valued fields pass one canonical string per item
            (e.g. sorted values joined by "|").
        k: neighbours considered.

    Returns:
        Average over queries with a non-None label of |{top-k neighbours j : labels[j] == labels[i]}| / k; a
        neighbour whose label is None never matches. nan when no query has a label.
    """
    nb = np.asarray(neighbors)
    labels = list(labels)
    n = len(labels)
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must be [len(labels)={n}, K], got shape {nb.shape}")
    if nb.shape[1] < k:
        raise ValueError(f"neighbors has {nb.shape[1]} columns, need k={k}")
    codes_of: dict[Hashable, int] = {}
    codes = np.array([-1 if lab is None else codes_of.setdefault(lab, len(codes_of)) for lab in labels] + [-1],
                     dtype=np.int64)  # the extra -1 at index n absorbs invalid neighbour indices
    queries = np.flatnonzero(codes[:n] >= 0)
    if queries.size == 0:
        return float("nan")
    top = nb[queries, :k].astype(np.int64)
    top = np.where((top >= 0) & (top < n), top, n)
    nb_codes = codes[top]
    match = (nb_codes == codes[queries][:, None]) & (nb_codes >= 0)
    return float(match.mean())


# ----------------------------------------------------------------------------------------------------------------
# representation metrics
# ----------------------------------------------------------------------------------------------------------------


def _uniformity(x: np.ndarray, t: float) -> float:
    """log mean_{i<j} exp(-t ||x_i - x_j||^2), computed stably in float64."""
    m = x.shape[0]
    if m < 2:
        return float("nan")
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    iu = np.triu_indices(m, k=1)
    v = -t * d2[iu]
    vmax = v.max()
    return float(vmax + math.log(np.exp(v - vmax).mean()))


def alignment_uniformity(
    emb1: np.ndarray,
    emb2: np.ndarray,
    t: float = 2,
    alpha: float = 2,
    max_samples: int = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """Alignment and uniformity of Wang & Isola (2020), on L2-normalised rows.

    alignment = mean_i ||f(x_i) - f(y_i)||^alpha over positive pairs (row i of each view); lower is better.
    uniformity = log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2) over distinct rows; lower (more negative) is more
    uniform. Rows are L2-normalised here (the definitions live on the unit sphere), so raw baselines can be passed.

    Args:
        emb1: [N, D] view 1 (dense; sparse is densified).
        emb2: [N, D] view 2, same row order.
        t: uniformity temperature.
        alpha: alignment exponent.
        max_samples: uniformity uses at most this many rows (the pairwise matrix is quadratic), sampled with `seed`
            (the same rows for both views).
        seed: sampling seed.

    Returns:
        {"alignment", "uniformity" (mean of the two views), "uniformity_1", "uniformity_2", "n_uniformity"}.
    """
    x = l2_normalize(emb1.toarray() if sp.issparse(emb1) else emb1, dtype=np.float64)
    y = l2_normalize(emb2.toarray() if sp.issparse(emb2) else emb2, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"emb1 and emb2 must be 2-D with the same shape, got {x.shape} and {y.shape}")
    align = float(np.mean(np.linalg.norm(x - y, axis=1) ** alpha))
    n = x.shape[0]
    rows = np.arange(n)
    if n > max_samples:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
    u1 = _uniformity(x[rows], t)
    u2 = _uniformity(y[rows], t)
    return {
        "alignment": align,
        "uniformity": (u1 + u2) / 2.0,
        "uniformity_1": u1,
        "uniformity_2": u2,
        "n_uniformity": int(rows.size),
    }


def linear_probe(
    X: np.ndarray | sp.spmatrix,
    y: Sequence[Hashable | None],
    seed: int = 0,
    test_frac: float = 0.3,
    max_classes: int | None = None,
) -> dict[str, float | int]:
    """Linear-probe accuracy: how linearly decodable a label is from the embedding.

    Items whose label is None are dropped, then classes with fewer than 2 examples; with `max_classes`, only the
    most frequent classes are kept (ties by label text, for determinism). The split is stratified when every class
    fits in both parts, random otherwise. Classifier: sklearn LogisticRegression(max_iter=500), default L2 C=1.

    Args:
        X: [N, D] features, dense or sparse.
        y: N hashable labels or None.
        seed: split and solver seed.
        test_frac: fraction of the kept items used for testing.
        max_classes: keep at most this many classes (most frequent first).

    Returns:
        {"accuracy": test accuracy (nan if fewer than 2 classes remain), "n_train", "n_test", "n_classes",
         "majority": accuracy of always predicting the most frequent training class (the chance level)}.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    y = list(y)
    if X.shape[0] != len(y):
        raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} labels")
    counts = Counter(lab for lab in y if lab is not None)
    classes = [c for c, m in counts.items() if m >= 2]
    classes.sort(key=lambda c: (-counts[c], str(c)))
    if max_classes is not None:
        classes = classes[: int(max_classes)]
    code = {c: i for i, c in enumerate(classes)}
    keep = np.array([lab is not None and lab in code for lab in y], dtype=bool)
    rows = np.flatnonzero(keep)
    yy = np.array([code[y[i]] for i in rows], dtype=np.int64)
    n_classes = len(classes)
    result: dict[str, float | int] = {"accuracy": float("nan"), "n_train": 0, "n_test": 0,
                                      "n_classes": n_classes, "majority": float("nan")}
    if n_classes < 2:
        return result

    Xk = X[rows] if sp.issparse(X) else np.asarray(X)[rows]
    try:
        # stratify keeps rare classes in both parts; sklearn refuses when a part is smaller than the class count
        tr, te = train_test_split(np.arange(rows.size), test_size=test_frac, random_state=seed, stratify=yy)
    except ValueError:
        tr, te = train_test_split(np.arange(rows.size), test_size=test_frac, random_state=seed)
    result.update(n_train=int(tr.size), n_test=int(te.size))
    if np.unique(yy[tr]).size < 2 or te.size == 0:
        return result
    clf = LogisticRegression(max_iter=500, random_state=seed)
    clf.fit(Xk[tr], yy[tr])
    result["accuracy"] = float(np.mean(clf.predict(Xk[te]) == yy[te]))
    majority_class = np.bincount(yy[tr]).argmax()
    result["majority"] = float(np.mean(yy[te] == majority_class))
    return result
