"""Augmented views of an encoded item for contrastive training. Each augmentation can be switched off (p=0).

Views work on ids, not text, so an epoch over 100k items costs no re-tokenization. Model dropout (SimCSE's
"two dropout masks") lives in the model, not here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from itemtower.features.featurize import VALUE_MASK, EncodedItem

__all__ = ["ViewConfig", "make_view"]


@dataclass(frozen=True)
class ViewConfig:
    std_mask_p: float = 0.0  # each present STD field is replaced by [MASK] with this probability (0: measured
    #                          better on Myntra with the value bag, two seeds, BENCHMARKS.md 8a)
    re_drop_p: float = 0.2  # each RE phrase is dropped with this probability
    token_drop_p: float = 0.0  # each title / RE token is dropped with this probability (0: measured better,
    #                              BENCHMARKS.md section 3b; word deletion hurt SimCSE's sentences too)
    crop_min: float = 0.6  # long RE phrases (> 16 tokens) are cropped to a random span of at least this fraction
    keep_one_title_token: bool = True  # never drop the whole title
    corr_mask_p: float = 0.0  # chance that a view masks a seed field together with its correlated fields
    corr_k: int = 2  # correlated fields masked with the seed (by mutual information on the catalog)
    synonym_p: float = 0.0  # each title/RE token with a lexicon synonym is swapped for one (와이드 -> wide)
    colour_drop_p: float = 0.5  # chance that a view loses every colour word and its STD colour value (colour
    #                               variants are near-duplicates that differ in colour; BENCHMARKS.md 3b)

    @classmethod
    def none(cls) -> "ViewConfig":
        """The identity view: only model dropout makes the two views differ (SimCSE unsupervised)."""
        return cls(std_mask_p=0.0, re_drop_p=0.0, token_drop_p=0.0, crop_min=1.0, colour_drop_p=0.0)


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


def _swap(ids: list[int], table, p: float, drop: frozenset[int], rng: random.Random) -> list[int]:
    out = []
    for t in ids:
        if t in drop:
            continue
        alts = table.synonyms.get(t) if table is not None and p > 0 else None
        out.append(alts[rng.randrange(len(alts))] if alts and rng.random() < p else t)
    return out


def make_view(item: EncodedItem, cfg: ViewConfig, rng: random.Random,
              groups: Sequence[Sequence[int]] | None = None, swaps=None,
              colour_field: int | None = None) -> EncodedItem:
    """One random view of `item` (the input is not modified).

    Args:
        groups: per seed field, the fields to mask with it (data.masking.correlated_groups); needed for
            correlated masking, ignored when cfg.corr_mask_p is 0.
        swaps: a data.synonyms.SwapTable, for synonym swaps and colour-word removal.
        colour_field: index of the STD colour field, masked together with the colour words.
    """
    std = [[VALUE_MASK] if vals and rng.random() < cfg.std_mask_p else vals for vals in item.std]
    if groups and cfg.corr_mask_p > 0 and rng.random() < cfg.corr_mask_p:
        present = [f for f, vals in enumerate(item.std) if vals]
        if present:
            for f in groups[rng.choice(present)]:
                if std[f]:
                    std[f] = [VALUE_MASK]
    drop: frozenset[int] = frozenset()
    if swaps is not None and cfg.colour_drop_p > 0 and rng.random() < cfg.colour_drop_p:
        drop = swaps.colour_ids
        if colour_field is not None and std[colour_field]:
            std[colour_field] = [VALUE_MASK]
    title, re_phrases = item.title, item.re
    if swaps is not None and (drop or cfg.synonym_p > 0):
        title = _swap(title, swaps, cfg.synonym_p, drop, rng) or title[:1]
        re_phrases = [[_swap(p, swaps, cfg.synonym_p, drop, rng) for p in ph] for ph in item.re]
    title = _drop_tokens(title, cfg.token_drop_p, rng, cfg.keep_one_title_token)
    re_out = []
    for phrases in re_phrases:
        kept = [p for p in phrases if rng.random() >= cfg.re_drop_p] if cfg.re_drop_p > 0 else phrases
        re_out.append([_drop_tokens(_crop(p, cfg.crop_min, rng), cfg.token_drop_p, rng, False) for p in kept])
    return EncodedItem(std=std, title=title, re=re_out, n_unk=item.n_unk)
