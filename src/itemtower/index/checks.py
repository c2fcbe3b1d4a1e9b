"""What every index backend refuses in an upsert, refused one way (ValueError naming what is wrong): the FAISS
index, the durable store before it logs a write (a logged write must apply), and the Milvus backend."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

__all__ = ["checked_upsert"]


def checked_upsert(ids: Sequence[Any], vectors: np.ndarray, items: Sequence[Any] | None, dim: int
                   ) -> tuple[list[str], np.ndarray]:
    """(ids as strings, vectors as float32 (N, dim)); a single (dim,) vector for one id is accepted.
    `items` None: only the ids and vectors are checked.

    Raises:
        ValueError: wrong shape, counts that differ, an id twice, NaN or infinity."""
    ids = [str(i) for i in ids]
    vecs = np.asarray(vectors, dtype=np.float32)
    if vecs.ndim == 1 and len(ids) == 1:
        vecs = vecs.reshape(1, -1)
    if vecs.ndim != 2 or vecs.shape[1] != dim:
        raise ValueError(f"vectors must have shape (N, {dim}); got {vecs.shape}")
    n_items = len(items) if items is not None else len(ids)
    if not (len(ids) == vecs.shape[0] == n_items):
        raise ValueError(f"got {len(ids)} ids, {vecs.shape[0]} vectors and {n_items} items; they must match")
    if len(set(ids)) != len(ids):
        dups = sorted(i for i, c in Counter(ids).items() if c > 1)
        raise ValueError(f"duplicate ids in one upsert: {dups[:5]}")
    if not np.isfinite(vecs).all():
        raise ValueError("vectors contain NaN or infinity")
    return ids, vecs
