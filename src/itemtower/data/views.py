"""Augmented views of an encoded item for contrastive training. Each augmentation can be switched off (p=0).

Views work on ids, not text, so an epoch over 100k items costs no re-tokenization. Model dropout (SimCSE's
"two dropout masks") lives in the model, not here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from itemtower.data.featurize import VALUE_MASK, EncodedItem

__all__ = ["ViewConfig", "make_view"]


@dataclass(frozen=True)
class ViewConfig:
    std_mask_p: float = 0.15  # each present STD field is replaced by [MASK] with this probability
    re_drop_p: float = 0.2  # each RE phrase is dropped with this probability
    token_drop_p: float = 0.1  # each title / RE token is dropped with this probability
    crop_min: float = 0.6  # long RE phrases (> 16 tokens) are cropped to a random span of at least this fraction
    keep_one_title_token: bool = True  # never drop the whole title
    corr_mask_p: float = 0.0  # chance that a view masks a seed field together with its correlated fields
    corr_k: int = 2  # correlated fields masked with the seed (by mutual information on the catalog)

    @classmethod
    def none(cls) -> "ViewConfig":
        """The identity view: only model dropout makes the two views differ (SimCSE unsupervised)."""
        return cls(std_mask_p=0.0, re_drop_p=0.0, token_drop_p=0.0, crop_min=1.0)


def _drop_tokens(ids: list[int], p: float, rng: random.Random, keep_one: bool) -> list[int]:
    if p <= 0 or not ids:
        return ids
    kept = [t for t in ids if rng.random() >= p]
    if not kept and keep_one:
        kept = [ids[rng.randrange(len(ids))]]
    return kept


def _crop(ids: list[int], min_frac: float, rng: random.Random) -> list[int]:
    if min_frac >= 1.0 or len(ids) <= 16:
        return ids
    n = max(1, int(len(ids) * rng.uniform(min_frac, 1.0)))
    start = rng.randrange(len(ids) - n + 1)
    return ids[start:start + n]


def make_view(item: EncodedItem, cfg: ViewConfig, rng: random.Random,
              groups: Sequence[Sequence[int]] | None = None) -> EncodedItem:
    """One random view of `item` (the input is not modified).

    Args:
        groups: per seed field, the fields to mask with it (data.masking.correlated_groups); needed for
            correlated masking, ignored when cfg.corr_mask_p is 0.
    """
    std = [[VALUE_MASK] if vals and rng.random() < cfg.std_mask_p else vals for vals in item.std]
    if groups and cfg.corr_mask_p > 0 and rng.random() < cfg.corr_mask_p:
        present = [f for f, vals in enumerate(item.std) if vals]
        if present:
            for f in groups[rng.choice(present)]:
                if std[f]:
                    std[f] = [VALUE_MASK]
    title = _drop_tokens(item.title, cfg.token_drop_p, rng, cfg.keep_one_title_token)
    re_out = []
    for phrases in item.re:
        kept = [p for p in phrases if rng.random() >= cfg.re_drop_p] if cfg.re_drop_p > 0 else phrases
        re_out.append([_drop_tokens(_crop(p, cfg.crop_min, rng), cfg.token_drop_p, rng, False) for p in kept])
    return EncodedItem(std=std, title=title, re=re_out, n_unk=item.n_unk)
