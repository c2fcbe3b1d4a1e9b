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
from typing import Any, Hashable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from itemtower.vectors import l2_normalize

__all__ = [
    "top_k",
    "pair_metrics",
    "other_view_recall",
    "attribute_consistency",
    "alignment_uniformity",
    "linear_probe",
]

# A query block's score matrix is capped at this many float32 cells (128 MB): large enough for BLAS to run at full
# speed, small enough to keep a 90k-item catalogue well inside a laptop's memory.
_BLOCK_CELLS = 1 << 25

# Sparse x sparse products cost about (df_query * df_item) multiply-adds per feature and run single-threaded in
# scipy, while a dense BLAS column costs Nq * N fused flops at tens of GFLOP/s. A feature is moved to the dense
# side when df_q * df_i > _DENSE_RATIO * Nq * N; on synthetic 21k-title char n-gram TF-IDF (37k-150k features)
# the optimum was 1e-3..2.5e-3 (common n-grams such as " a" occur in nearly every title and would make the sparse
# product quadratic). At most _MAX_DENSE_COLS columns are densified to bound memory.
_DENSE_RATIO = 1.5e-3
_MAX_DENSE_COLS = 4096


# ----------------------------------------------------------------------------------------------------------------
# scoring blocks
# ----------------------------------------------------------------------------------------------------------------


def _as_matrix(x: Any, name: str) -> np.ndarray | sp.csr_matrix:
    """Return `x` as a float32 C-contiguous 2-D array or a float32 canonical CSR matrix; reject NaN/inf."""
    if sp.issparse(x):
        m = sp.csr_matrix(x, dtype=np.float32)
        m.sum_duplicates()
        if m.nnz and not np.isfinite(m.data).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return m
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D], got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


class _Scorer:
    """Computes blocks of the score matrix queries @ base.T into a reused buffer.

    The buffer has `n_pad` >= N columns; the padding columns (n_pad - N of them) hold -inf so that a block can be
    reshaped into equal column groups by `_select_top_k` without ever selecting a padding column.

    Dense base: one BLAS matmul per block. Sparse base: the high-document-frequency features are densified and
    go through BLAS, the long tail of rare features goes through a sparse x sparse product that is then scattered
    into the block (see `_DENSE_RATIO`).
    """

    def __init__(self, base: np.ndarray | sp.csr_matrix, queries: np.ndarray | sp.csr_matrix, n_pad: int):
        self.n = base.shape[0]
        self.n_pad = n_pad
        self.base_t_dense: np.ndarray | None = None  # [F_dense, n_pad], zero-padded, C-contiguous
        self.q_dense: np.ndarray | sp.csr_matrix | None = None  # the matching query columns
        self.base_t_sparse: sp.csr_matrix | None = None  # [F_sparse, n_pad]
        self.q_sparse: sp.csr_matrix | None = None
        self.tmp: np.ndarray | None = None  # second block buffer, only when both halves exist
        if not sp.issparse(base):
            # C-contiguous padded transpose, so that np.matmul writes straight into the block buffer
            self.base_t_dense = np.zeros((base.shape[1], n_pad), dtype=np.float32)
            self.base_t_dense[:, : self.n] = base.T
            self.q_dense = queries  # sparse queries against a dense base are densified per block
            return
        q = queries if sp.issparse(queries) else sp.csr_matrix(queries)
        df_base = np.bincount(base.indices, minlength=base.shape[1]).astype(np.float64)
        df_q = np.bincount(q.indices, minlength=q.shape[1]).astype(np.float64)
        cost = df_base * df_q  # multiply-adds this feature costs in the sparse product
        dense_cols = np.flatnonzero(cost > _DENSE_RATIO * float(q.shape[0]) * float(self.n))
        if dense_cols.size > _MAX_DENSE_COLS:
            dense_cols = np.sort(dense_cols[np.argsort(-cost[dense_cols], kind="stable")[:_MAX_DENSE_COLS]])
        sparse_cols = np.setdiff1d(np.arange(base.shape[1]), dense_cols, assume_unique=True)
        if dense_cols.size:
            self.base_t_dense = np.zeros((dense_cols.size, n_pad), dtype=np.float32)
            self.base_t_dense[:, : self.n] = base[:, dense_cols].toarray().T
            self.q_dense = q[:, dense_cols].tocsr()  # densified per block, not all at once
        if sparse_cols.size:
            self.base_t_sparse = base[:, sparse_cols].T.tocsr()
            # pad to n_pad columns so that each block product has exactly the block buffer's shape
            self.base_t_sparse.resize((sparse_cols.size, n_pad))
            self.q_sparse = q[:, sparse_cols].tocsr()

    def block(self, start: int, stop: int, buf: np.ndarray) -> np.ndarray:
        """Scores of queries[start:stop] against every base row: a view of `buf`, shape [stop - start, n_pad]."""
        b = stop - start
        s = buf[:b]
        if self.base_t_sparse is not None:
            # scipy's toarray(out=) writes every cell; one dense scatter beats fancy-index += by ~10x
            (self.q_sparse[start:stop] @ self.base_t_sparse).toarray(out=s)
            if self.base_t_dense is not None:
                if self.tmp is None or self.tmp.shape[0] < b:
                    self.tmp = np.empty((buf.shape[0], self.n_pad), dtype=np.float32)
                t = self.tmp[:b]
                np.matmul(self.q_dense[start:stop].toarray(), self.base_t_dense, out=t)
                s += t
        elif self.base_t_dense is not None:
            qd = self.q_dense[start:stop]
            np.matmul(qd.toarray() if sp.issparse(qd) else qd, self.base_t_dense, out=s)
        else:  # a sparse matrix without any stored value
            s.fill(0.0)
        if self.n_pad > self.n:
            s[:, self.n :] = -np.inf
        return s


def _group_size(n: int, k: int) -> int:
    """Column-group width for `_select_top_k`: up to 64, but always leaving >= 4k groups (so >= k are finite)."""
    return int(max(1, min(64, n // (4 * k))))


def _select_top_k(s: np.ndarray, k: int, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k per row of a score block, ties to the lower column index.

    Why not argpartition on the whole row: on 90k columns it costs ~4x the matmul. Instead the columns are split
    into interleaved groups of width g (group j = columns j, j + n_groups, j + 2 n_groups, ...), so one fast
    elementwise-max pass gives each group's maximum. The k-th largest group maximum, tau, is a lower bound of the
    row's k-th largest score (the top k group maxima are k distinct entries), so every entry of the true top k is
    >= tau and lives in a group whose maximum is >= tau. Only those few groups (about k of them) are gathered and
    sorted exactly by (-score, column).

    Args:
        s: scores [b, n_pad], n_pad a multiple of g; excluded entries hold -inf; each row has >= k finite entries.
        k: neighbours per row.
        g: group width.

    Returns:
        (idx int64 [b, k], scores float32 [b, k]), best first.
    """
    b, n_pad = s.shape
    n_groups = n_pad // g
    s3 = s.reshape(b, g, n_groups)
    gmax = s3.max(axis=1)  # [b, n_groups]
    tau = np.partition(gmax, n_groups - k, axis=1)[:, n_groups - k]
    r, c = np.nonzero(gmax >= tau[:, None])
    vals = s3[r, :, c]  # [n_candidate_groups, g]
    cols = c[:, None] + np.arange(g, dtype=np.int64)[None, :] * n_groups
    keep = vals >= tau[r][:, None]
    rr = np.broadcast_to(r[:, None], vals.shape)[keep]
    vv = vals[keep]
    cc = cols[keep]
    order = np.lexsort((cc, -vv, rr))  # by row, then best score, then lower index
    rr, vv, cc = rr[order], vv[order], cc[order]
    counts = np.bincount(rr, minlength=b)
    starts = np.cumsum(counts) - counts
    first_k = (np.arange(rr.size) - starts[rr]) < k
    return cc[first_k].reshape(b, k).astype(np.int64), vv[first_k].reshape(b, k).astype(np.float32)


def top_k(
    emb: np.ndarray | sp.spmatrix,
    k: int,
    exclude_self: bool = True,
    queries: np.ndarray | sp.spmatrix | None = None,
    batch: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product nearest neighbours.

    Args:
        emb: base vectors [N, D], dense (float32 preferred) or scipy.sparse (e.g. TF-IDF, converted to CSR).
            Pass L2-normalised rows for cosine similarity.
        k: neighbours per query, 1 <= k <= N (N - 1 with exclude_self).
        exclude_self: when `queries` is None, never return row i as a neighbour of row i (ignored otherwise:
            external queries have no "self").
        queries: query vectors [Nq, D] (dense or sparse); default: `emb` itself.
        batch: most query rows scored at once; also capped so a block's score matrix stays under ~128 MB.

    Returns:
        idx: int64 [Nq, k], row indices into `emb`, best first.
        scores: float32 [Nq, k], the matching inner products (non-increasing along each row).
        Equal scores are ordered by lower index first, also at the k-th place.
    """
    base = _as_matrix(emb, "emb")
    self_mode = queries is None
    q = base if self_mode else _as_matrix(queries, "queries")
    n, d = base.shape
    if q.shape[1] != d:
        raise ValueError(f"queries have {q.shape[1]} columns, emb has {d}")
    k = int(k)
    excl = bool(exclude_self and self_mode)
    k_max = n - 1 if excl else n
    if not 1 <= k <= k_max:
        raise ValueError(f"k must be in [1, {k_max}] for {n} rows (exclude_self={excl}); got {k}")
    nq = q.shape[0]
    g = _group_size(n, k)
    n_pad = -(-n // g) * g
    scorer = _Scorer(base, q, n_pad)
    rows = int(max(1, min(batch, _BLOCK_CELLS // n_pad, nq)))
    buf = np.empty((rows, n_pad), dtype=np.float32)
    idx = np.empty((nq, k), dtype=np.int64)
    scores = np.empty((nq, k), dtype=np.float32)
    for start in range(0, nq, rows):
        stop = min(start + rows, nq)
        s = scorer.block(start, stop, buf)
        if excl:
            r = np.arange(stop - start)
            s[r, start + r] = -np.inf
        idx[start:stop], scores[start:stop] = _select_top_k(s, k, g)
    return idx, scores


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

    used: set[tuple[int, int]] = set()
    n_ignored = 0
    for pair in pairs:
        a, b = pair
        ia, ib = pos.get(a), pos.get(b)
        if ia is None or ib is None or ia == ib:
            n_ignored += 1
            continue
        used.add((ia, ib) if ia < ib else (ib, ia))

    out: dict[str, float | int] = {}
    if not used:
        for kk in ks:
            out[f"recall@{kk}"] = float("nan")
        out[f"ndcg@{ndcg_k}"] = float("nan")
        out[f"mrr@{mrr_k}"] = float("nan")
        out.update(n_queries=0, n_pairs_used=0, n_pairs_ignored=n_ignored)
        return out

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
    nrel_q = n_rel[queries].astype(np.float64)

    for kk in ks:
        out[f"recall@{kk}"] = float(np.mean(hit[:, :kk].sum(axis=1) / nrel_q))

    disc = 1.0 / np.log2(np.arange(2, ndcg_k + 2, dtype=np.float64))  # rank p -> 1 / log2(p + 1)
    dcg = (hit[:, :ndcg_k] * disc).sum(axis=1)
    idcg = np.cumsum(disc)[np.minimum(n_rel[queries], ndcg_k) - 1]
    out[f"ndcg@{ndcg_k}"] = float(np.mean(dcg / idcg))

    h = hit[:, :mrr_k]
    first = np.argmax(h, axis=1)
    rr = np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)
    out[f"mrr@{mrr_k}"] = float(np.mean(rr))

    out.update(n_queries=int(queries.size), n_pairs_used=len(used), n_pairs_ignored=n_ignored)
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
    a = _as_matrix(emb1, "emb1")
    b = _as_matrix(emb2, "emb2")
    if a.shape != b.shape:
        raise ValueError(f"emb1 and emb2 must have the same shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    scorer = _Scorer(b, a, n)
    rows = int(max(1, min(batch, _BLOCK_CELLS // max(n, 1), n)))
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
