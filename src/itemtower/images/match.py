"""Items matched by photo: nearest neighbours by cosine of centred image features, kept above a threshold.

Centring: EfficientNet features are all positive after the final activation (mean-pooled Swish), so raw cosines
of any two photos are high (every photo shares the "product on white" direction); subtracting the catalog's mean
feature before the cosine spreads them out (BENCHMARKS.md, section 12). The mean is the mean of the rows being
matched, so it is a property of the catalog, like its IDF.

The near-duplicate threshold (`NEAR_DUPLICATE`) was measured on the 5,353 Myntra photos: the cosine of the 1,727
colour-variant pairs against random pairs (BENCHMARKS.md 12b). 0.60 is the 99th percentile of random pairs and
keeps 62% of the variant pairs; the two overlap widely, so a match means "looks like the same kind of garment,
cut and pose" (87% share the article_type, 4% are the listed variants), not "the same product". Matches carry
their cosine: a stricter consumer (title augmentation) can ask for more.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["centre", "neighbours", "find_matches", "NEAR_DUPLICATE", "DEFAULT_K"]

NEAR_DUPLICATE = 0.60  # measured: BENCHMARKS.md 12b
DEFAULT_K = 10
_CHUNK = 2048  # query rows per similarity block: 2048 x 100k floats = 0.8 GB at most


def centre(vectors: np.ndarray) -> np.ndarray:
    """Rows minus their mean, L2-normalised (a zero row stays zero)."""
    x = np.asarray(vectors, dtype=np.float32)
    if len(x) == 0:
        return x.copy()
    x = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def neighbours(unit: np.ndarray, query_rows: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows [Q, k], cosines [Q, k]) of each query row's k nearest other rows, best first (itself excluded).
    Fewer than k other rows: the missing places are row -1 with cosine -inf."""
    q_rows = np.asarray(query_rows, dtype=np.int64)
    n = len(unit)
    kk = max(0, min(k, n - 1))
    out_i = np.full((len(q_rows), k), -1, dtype=np.int64)
    out_s = np.full((len(q_rows), k), -np.inf, dtype=np.float32)
    if kk == 0 or len(q_rows) == 0:
        return out_i, out_s
    for a in range(0, len(q_rows), _CHUNK):
        rows = q_rows[a:a + _CHUNK]
        sims = unit[rows] @ unit.T
        sims[np.arange(len(rows)), rows] = -np.inf  # never one's own match
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        ps = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        out_i[a:a + len(rows), :kk] = np.take_along_axis(part, order, axis=1)
        out_s[a:a + len(rows), :kk] = np.take_along_axis(ps, order, axis=1)
    return out_i, out_s


def find_matches(ids: Sequence[str], vectors: np.ndarray, query_ids: Sequence[str] | None = None,
                 k: int = DEFAULT_K, threshold: float = NEAR_DUPLICATE) -> dict[str, list[tuple[str, float]]]:
    """query id -> [(matched id, cosine)] for its up-to-k nearest photos at or above `threshold`, best first.

    `ids`/`vectors` are every item with a photo (the candidates); `query_ids` the items to match (default: all;
    ids without a photo are left out). Items with no match above the threshold map to [].
    """
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} feature rows")
    row = {i: r for r, i in enumerate(ids)}
    queries = [q for q in (ids if query_ids is None else query_ids) if q in row]
    unit = centre(vectors)
    idx, sims = neighbours(unit, [row[q] for q in queries], k)
    out: dict[str, list[tuple[str, float]]] = {}
    for q, ri, rs in zip(queries, idx, sims):
        out[q] = [(ids[j], round(float(s), 4)) for j, s in zip(ri, rs) if j >= 0 and s >= threshold]
    return out
