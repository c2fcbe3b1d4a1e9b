"""SimCSERecSysDataset (two views per item) and the collate that turns views into the tower's tensors.

Tensor layout, the tower's input contract:
    t_std: (B, F, M) long   value ids per STD field, padded with 0 (PAD); [MASK] = 1, UNK = 2
    t_re:  (B, 2, T) long   [:, 0] text token ids (title then RE phrases), [:, 1] segment types (0 = pad)
  and, when the catalog has photos (issue 12), two more:
    image: (B, P) float32   the photo feature (EfficientNet-Lite0: P = 1280), zeros where there is none
    image_mask: (B,) bool   True = the item has a photo
A view is then (t_std, t_re, image, image_mask), else (t_std, t_re): the tower takes either.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from itemtower.features.featurize import EncodedItem
from itemtower.ids import TOKEN_PAD, TYPE_PAD, TYPE_TITLE, VALUE_PAD
from itemtower.features.views import ViewConfig, make_view

__all__ = ["SimCSERecSysDataset", "collate_items", "collate_views"]


class SimCSERecSysDataset(Dataset):
    """Yields (view1, view2, label) for each item; label = the item's group index (its own index if none).

    Args:
        encoded: the catalog, encoded once by the Featurizer.
        mask_groups: for correlated masking, per seed field the fields masked with it.
        swaps, colour_field: lexicon synonym table and STD colour field index, for title augmentation.
        labels: one int per item; items sharing a label are positives for each other (groups).
        views: augmentation settings.
        seed: views are a deterministic function of (seed, epoch, index): reproducible and worker-safe.
        photos: (features (N, P) float32, present (N,) bool) aligned with `encoded`, or None (no photos). Both
            views get the item's photo (the tower drops it per view in training: TowerConfig.image_dropout).
    """

    def __init__(self, encoded: Sequence[EncodedItem], labels: Sequence[int], views: ViewConfig, seed: int = 0,
                 mask_groups: Sequence[Sequence[int]] | None = None, swaps=None, colour_field: int | None = None,
                 photos: tuple[np.ndarray, np.ndarray] | None = None):
        if len(encoded) != len(labels):
            raise ValueError(f"{len(encoded)} items but {len(labels)} labels")
        self.encoded, self.labels, self.views, self.seed = encoded, list(labels), views, seed
        self.mask_groups = mask_groups  # correlated-masking groups per seed field (data.masking)
        self.swaps, self.colour_field = swaps, colour_field  # lexicon synonyms / colour words (data.synonyms)
        if photos is not None and len(photos[0]) != len(encoded):
            raise ValueError(f"{len(encoded)} items but {len(photos[0])} photo rows")
        self.photos = photos
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int):
        """(view1, view2, label), and (features row, present) fourth when the dataset has photos."""
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
        item = self.encoded[i]
        kw = dict(groups=self.mask_groups, swaps=self.swaps, colour_field=self.colour_field)
        out = make_view(item, self.views, rng, **kw), make_view(item, self.views, rng, **kw), self.labels[i]
        if self.photos is None:
            return out
        return out + ((self.photos[0][i], bool(self.photos[1][i])),)


PAD_MULTIPLE = 8  # text lengths padded to a multiple of this (collate_items)


def collate_items(batch: Sequence[EncodedItem], max_text_tokens: int = 128,
                  photos: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[torch.Tensor, ...]:
    """EncodedItems -> (t_std (B, F, M), t_re (B, 2, T)); T is the longest text in the batch, capped, rounded up
    to a multiple of PAD_MULTIPLE. With `photos` ((B, P) features, (B,) present, rows as `batch`): (t_std, t_re,
    image (B, P), image_mask (B,)).

    The rounding keeps the number of distinct tensor shapes small: oneDNN's bf16 kernels are generated per shape,
    and a first call of a new one cost ~4x a cached one here (BENCHMARKS.md 14g); padded tokens are masked.

    Rows are padded as Python lists and each tensor is built by one `torch.tensor` call: per-row tensors cost
    more than the tower's own forward pass on a 2-core CPU."""
    B = len(batch)
    F = len(batch[0].std) if B else 0
    M = max([len(v) for it in batch for v in it.std] + [1])
    std_rows = [[vals + [VALUE_PAD] * (M - len(vals)) for vals in it.std] for it in batch]
    seqs: list[tuple[list[int], list[int]]] = []
    for it in batch:
        ids = list(it.title)
        types = [TYPE_TITLE] * len(ids)
        for r, phrases in enumerate(it.re):
            for p in phrases:
                ids.extend(p)
                types.extend([2 + r] * len(p))
        seqs.append((ids[:max_text_tokens], types[:max_text_tokens]))
    T = -(-max([len(s[0]) for s in seqs] + [1]) // PAD_MULTIPLE) * PAD_MULTIPLE
    re_rows = [[ids + [TOKEN_PAD] * (T - len(ids)), types + [TYPE_PAD] * (T - len(types))] for ids, types in seqs]
    t_std = torch.tensor(std_rows, dtype=torch.long) if B and F else torch.zeros(B, F, M, dtype=torch.long)
    t_re = torch.tensor(re_rows, dtype=torch.long) if B else torch.zeros(0, 2, 1, dtype=torch.long)
    if photos is None:
        return t_std, t_re
    feats, present = photos
    return (t_std, t_re, torch.as_tensor(np.asarray(feats, dtype=np.float32)),
            torch.as_tensor(np.asarray(present, dtype=bool)))


def collate_views(batch, max_text_tokens: int = 128):
    """[(view1, view2, label[, (photo, present)])] -> ((t_std1, t_re1[, image, mask]), (t_std2, t_re2[, ...]),
    labels (B,)): both views carry the same photo tensors."""
    v1, v2, labels = [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch]
    photos = None
    if batch and len(batch[0]) > 3:
        photos = (np.stack([b[3][0] for b in batch]), np.array([b[3][1] for b in batch], dtype=bool))
    return (collate_items(v1, max_text_tokens, photos), collate_items(v2, max_text_tokens, photos),
            torch.tensor(labels, dtype=torch.long))
