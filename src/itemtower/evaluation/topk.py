"""Exact inner-product top-k (the engine under the retrieval metrics): dense float32 or scipy.sparse CSR (TF-IDF)
input, scored in blocks, ties to the lower row index (no model, no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["top_k", "Scorer", "as_matrix", "BLOCK_CELLS"]

# A query block's score matrix is capped at this many float32 cells (128 MB): large enough for BLAS to run at full
# speed, small enough to keep a 90k-item catalogue well inside a laptop's memory.
BLOCK_CELLS = 1 << 25

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


def as_matrix(x: Any, name: str) -> np.ndarray | sp.csr_matrix:
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


class Scorer:
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
    base = as_matrix(emb, "emb")
    self_mode = queries is None
    q = base if self_mode else as_matrix(queries, "queries")
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
    scorer = Scorer(base, q, n_pad)
    rows = int(max(1, min(batch, BLOCK_CELLS // n_pad, nq)))
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
