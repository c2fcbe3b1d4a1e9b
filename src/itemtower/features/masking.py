"""Correlated feature masking: which STD fields to mask together, from their mutual information on the catalog.

Masking one field at random is easy to undo when a correlated field is still visible (season from fibre, category
from category_specification). Masking a seed field together with the fields that share the most information with
it removes that shortcut (the "correlated feature masking" of self-supervised tabular and recommender towers).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from itemtower.features.featurize import EncodedItem

__all__ = ["field_mutual_information", "correlated_groups"]


def field_mutual_information(encoded: Sequence[EncodedItem], max_items: int = 20000,
                             seed: int = 0) -> np.ndarray:
    """Normalised mutual information between STD fields: (F, F), symmetric, diagonal 1.

    Each field is read as its first value id, with "missing" as a value of its own (absence is informative:
    only tops have a neckline). Computed on a seeded sample of at most max_items items.
    """
    if not encoded:
        return np.zeros((0, 0))
    idx = np.random.default_rng(seed).permutation(len(encoded))[:max_items]
    n_fields = len(encoded[0].std)
    cols = np.array([[encoded[i].std[f][0] if encoded[i].std[f] else -1 for f in range(n_fields)] for i in idx])
    mi = np.eye(n_fields)
    for a in range(n_fields):
        for b in range(a + 1, n_fields):
            mi[a, b] = mi[b, a] = normalized_mutual_info_score(cols[:, a], cols[:, b])
    return mi


def correlated_groups(mi: np.ndarray, k: int = 2) -> list[list[int]]:
    """For each seed field, the seed plus the k fields with the highest mutual information with it."""
    groups = []
    for f in range(len(mi)):
        others = [int(j) for j in np.argsort(-mi[f], kind="stable") if j != f][:k]
        groups.append([f] + others)
    return groups
