"""The one L2 normaliser: the Embedder's vectors, evaluation's z, the metrics and the text encoders all use it, so
"unit length" means the same float32 numbers everywhere (no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["l2_normalize"]


def l2_normalize(x, dtype=np.float32) -> np.ndarray:
    """Rows of a dense (N, D) array to unit length, as a new array of `dtype` (float64 where a metric sums many
    small terms); a zero row stays zero (eps 1e-12)."""
    x = np.asarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
