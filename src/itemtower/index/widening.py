"""The filtered search of FaissIndex: over-fetch from FAISS, drop what does not pass, widen until k pass.

FAISS knows nothing of filters, exclusions or tombstones (replaced or deleted items whose vectors are still
stored), so a search asks it for more candidates than it needs and keeps the ones that pass: k (+ exclusions) at
first, k * 4 with filters, then 4 times more each round, until k pass or every stored vector has been looked at.
That last round is what makes a rare filter still exact. With HNSW a long candidate list costs about as much as a
scan and may still miss items, so a round past a few hundred candidates is an exact scan of the stored vectors.

Kept apart from FaissIndex (which holds the maps and the lock) so that the one loop that decides what a search
returns reads on its own; FaissIndex.search calls it under its read lock.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from itemtower.index import ann as annlib

__all__ = ["std_values", "passes", "widening_search"]

# Filtered search first fetches k * GROWTH candidates, then GROWTH times more each round, until k survive the
# filter or the whole index has been scanned (which is what makes a rare filter still exact).
GROWTH = 4
# An HNSW round that would need more candidates than this (or than efSearch * GROWTH) scans the stored vectors
# exactly instead: a long HNSW candidate list costs about as much as a scan and may still miss items.
HNSW_MAX_FETCH = 512


def std_values(item: dict[str, Any], field: str) -> list[str]:
    """item["std"][field] as a list; a bare string (an item that skipped normalize_item) counts as one value."""
    std = item.get("std") or {}
    v = std.get(field)
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return list(v)


def passes(item: dict[str, Any], filters: Mapping[str, str]) -> bool:
    """Every filter {field: value} holds: item["std"][field] contains value (AND over the fields)."""
    return all(value in std_values(item, field) for field, value in filters.items())


def widening_search(
    index: Any,
    kind: str,
    q: np.ndarray,
    k: int,
    filters: Mapping[str, str],
    exclude: set[str],
    *,
    str_of: Mapping[int, str],
    int_of: Mapping[str, int],
    items: Mapping[str, dict[str, Any]],
    ef_search: int,
) -> list[tuple[str, float]]:
    """Up to k (id, score), best first, among the live items that pass `filters` and are not in `exclude`.

    Args:
        index, kind: the FAISS index and its layout (annlib.FLAT or annlib.HNSW); or, on a GPU, the flat index's
            GpuMirror (index/gpu.py: `ntotal` and an exact `search` of any k, past the GPU's limit on the CPU).
        q: float32 (1, D), contiguous.
        str_of: internal id -> string id of the live items (a stored id missing here is a tombstone).
        int_of, items: string id -> internal id, and -> stored item (for the filters).
        ef_search: the HNSW candidate list; rounds longer than GROWTH times it (or HNSW_MAX_FETCH) are exact.

    The caller holds a read lock over the index and the maps for the whole call.
    """
    n = index.ntotal
    if not str_of:
        return []
    n_excluded = sum(1 for e in exclude if e in int_of)
    fetch = min(n, (k + n_excluded) * (GROWTH if filters else 1))
    verdict: dict[int, bool] = {}  # internal id -> passes; filters are evaluated once per item
    while True:
        if kind == annlib.HNSW and fetch > max(HNSW_MAX_FETCH, ef_search * GROWTH):
            scores, labels = annlib.exact_search(index, q, fetch)
        else:
            scores, labels = index.search(q, fetch)  # (1, fetch) each
        out: list[tuple[str, float]] = []
        for score, iid in zip(scores[0].tolist(), labels[0].tolist()):
            if iid < 0:  # faiss pads with -1 when it finds fewer than `fetch`
                continue
            ok = verdict.get(iid)
            if ok is None:
                sid = str_of.get(iid)  # None: a tombstone
                ok = sid is not None and sid not in exclude and (not filters or passes(items[sid], filters))
                verdict[iid] = ok
            if ok:
                out.append((str_of[iid], float(score)))
                if len(out) == k:
                    return out
        if fetch >= n:
            return out
        fetch = min(n, fetch * GROWTH)
