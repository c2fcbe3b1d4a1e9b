"""What a training run reads: the featurized catalog, the views' lookup tables, the train/validation split, the
loader, and the teacher's vectors for distillation. No model here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from itemtower.features.dataset import SimCSERecSysDataset, collate_views
from itemtower.features.featurize import COLOUR_FIELDS, EncodedItem, Featurizer
from itemtower.features.masking import correlated_groups, field_mutual_information
from itemtower.features.synonyms import build_swap_table
from itemtower.catalog.schema import Schema
from itemtower.encoders.text import e5_encoder
from itemtower.training.config import TrainConfig

__all__ = ["TrainData", "Teacher", "build_data", "featurize", "load_photos", "load_teacher", "split_rows",
           "teacher_rows"]

Log = Callable[[str], None]


@dataclass
class TrainData:
    """The featurized catalog and what the loop iterates."""

    featurizer: Featurizer
    encoded: list[EncodedItem]  # every item, catalog order
    train_idx: np.ndarray  # rows of `encoded` trained on
    train_ds: SimCSERecSysDataset
    val_ds: SimCSERecSysDataset
    loader: DataLoader
    batch_size: int  # what the loader uses: cfg.batch_size, or fewer on a small catalog
    photos: tuple[np.ndarray, np.ndarray] | None = None  # (features (N, P), present (N,)) for `encoded`, or None

    def collate(self, batch):
        return collate_views(batch, self.featurizer.max_text_tokens)

    def val_loader(self) -> DataLoader:
        return DataLoader(self.val_ds, batch_size=self.batch_size, collate_fn=self.collate)


@dataclass
class Teacher:
    """The distillation target: e5's vectors of a seeded sample of training titles (rows of TrainData.encoded)."""

    rows: np.ndarray
    vectors: np.ndarray  # float32 (len(rows), e5 dim)


def featurize(items: Sequence[dict], schema: Schema, cfg: TrainConfig, log: Log,
              featurizer: Featurizer | None = None) -> tuple[Featurizer, list[EncodedItem]]:
    """Fit the featurizer on the items (a fresh run), or encode them with a saved one (resume: token and value
    ids keep the meaning the restored weights learned them with; words new to the catalog are UNK)."""
    t0 = time.perf_counter()
    if featurizer is None:
        featurizer, encoded = Featurizer.fit_encode(items, schema, vocab_size=cfg.vocab_size,
                                                    min_frequency=cfg.min_frequency,
                                                    max_text_tokens=cfg.max_text_tokens,
                                                    colour_blind=cfg.colour_blind)
        how = "fitted"
    else:
        encoded, how = featurizer.encode(items), "loaded from the model directory"
    log(f"featurizer ({how}): {len(items)} items, {len(featurizer.schema.std_fields)} std fields, "
        f"{len(featurizer.schema.re_fields)} re fields, {featurizer.tokenizer.vocab_size} tokens, "
        f"{featurizer.n_values} values ({time.perf_counter() - t0:.1f}s)")
    if featurizer.colour_blind:
        words, fields = featurizer.colour_parts()
        names = ", ".join(featurizer.std_fields[i] for i in fields) or "none in this schema"
        log(f"colour-blind: {len(words)} colour words left out of the text, STD colour field: {names}")
    return featurizer, encoded


def build_data(items: Sequence[dict], featurizer: Featurizer, encoded: list[EncodedItem], cfg: TrainConfig,
               log: Log) -> TrainData:
    """The views' lookup tables (correlated fields, synonyms, colour words), the train/validation split and the
    training loader (seeded: same seed, same batches)."""
    mask_groups = None
    names = featurizer.std_fields
    if cfg.views.corr_mask_p > 0:
        mi = field_mutual_information(encoded, seed=cfg.seed)
        mask_groups = correlated_groups(mi, cfg.views.corr_k)
        log("correlated masking groups: " + "; ".join(
            "+".join(names[f] for f in g) for g in mask_groups[:8]) + (" ..." if len(mask_groups) > 8 else ""))
    swaps, colour_field = None, None
    if cfg.views.synonym_p > 0 or cfg.views.colour_drop_p > 0:
        swaps = build_swap_table(featurizer.tokenizer)
        colour_field = next((names.index(f) for f in COLOUR_FIELDS if f in names), None)
        log(f"title augmentation: {len(swaps.synonyms)} tokens with lexicon synonyms, "
            f"{len(swaps.colour_ids)} colour tokens")
    labels = labels_of(items, cfg.use_groups)
    val_idx, train_idx = split_rows(len(items), cfg.val_frac, cfg.seed)
    photos = load_photos(items, cfg, log)

    def dataset(rows: np.ndarray, seed: int) -> SimCSERecSysDataset:
        return SimCSERecSysDataset([encoded[i] for i in rows], [labels[i] for i in rows], cfg.views, seed,
                                   mask_groups, swaps, colour_field,
                                   photos=None if photos is None else (photos[0][rows], photos[1][rows]))

    train_ds, val_ds = dataset(train_idx, cfg.seed), dataset(val_idx, cfg.seed + 1)
    bs = min(cfg.batch_size, len(train_ds))
    data = TrainData(featurizer, encoded, train_idx, train_ds, val_ds, None, bs, photos)  # type: ignore[arg-type]
    data.loader = DataLoader(train_ds, batch_size=bs, shuffle=True, drop_last=len(train_ds) > bs,
                             collate_fn=data.collate, generator=torch.Generator().manual_seed(cfg.seed))
    return data


def load_photos(items: Sequence[dict], cfg: TrainConfig, log: Log) -> tuple[np.ndarray, np.ndarray] | None:
    """The photo features of the items that have a usable `image` (cached by file content; the encoder is loaded
    only for photos not in the cache), aligned with `items`; None when photos are off or no item has one.
    Relative paths are read from the catalog's folder; unusable photos are logged and the item has none."""
    if not cfg.images or not any(it.get("image") for it in items):
        return None
    from itemtower.images.cache import cache_root
    from itemtower.images.encoder import EfficientNetLite0
    from itemtower.images.features import aligned, extract

    t0 = time.perf_counter()
    cache = cache_root(cfg.image_cache, cfg.cache_dir)
    base = Path(cfg.catalog).parent if cfg.catalog else None
    fs = extract(items, EfficientNetLite0, cache, base_dir=base, progress=cfg.progress)
    for iid, msg in fs.warnings[:5]:
        log(f"photo of item {iid!r} not used: {msg}")
    if not fs.ids:
        log(f"no usable photo among {len(items)} items ({len(fs.warnings)} unusable): text only")
        return None
    log(f"photos: {len(fs.ids)} of {len(items)} items ({fs.n_cached} cached, {fs.n_encoded} encoded, "
        f"{len(fs.warnings)} unusable; {time.perf_counter() - t0:.1f}s)")
    return aligned(items, fs)


def labels_of(items: Sequence[dict], use_groups: bool) -> list[int]:
    """Item index as label, or a shared label per `group`."""
    labels, groups = [], {}
    for i, it in enumerate(items):
        g = it.get("group") if use_groups else None
        if g is None:
            labels.append(len(items) + i)  # unique, never collides with group labels
        else:
            labels.append(groups.setdefault(g, len(groups)))
    return labels


def split_rows(n_items: int, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows, training rows) of a catalog of n_items: a seeded permutation, at most 2,000 held out."""
    n_val = min(2000, int(n_items * val_frac)) if n_items >= 200 else 0
    perm = np.random.default_rng(seed).permutation(n_items)
    return perm[:n_val], perm[n_val:]


def teacher_rows(train_idx: np.ndarray, distill_items: int, seed: int) -> np.ndarray:
    """The sorted rows whose titles e5 teaches: a seeded sample of distill_items training rows (all, if fewer).
    benchmarks/teacher_overlap.py calls it (with split_rows) to find them again from a model's train_config."""
    n = min(distill_items, len(train_idx))
    return np.sort(np.random.default_rng(seed + 3).choice(train_idx, size=n, replace=False))


def load_teacher(items: Sequence[dict[str, Any]], train_idx: np.ndarray, cfg: TrainConfig,
                 log: Log) -> Teacher | None:
    """A seeded sample of `distill_items` training items and e5's vectors of their titles (every valid item has
    one), encoded once and cached (text_encoders.e5_encoder). None when distillation is off or fewer than two
    items (it compares items with each other)."""
    if cfg.distill_items <= 0:
        return None
    rows = teacher_rows(train_idx, cfg.distill_items, cfg.seed)
    if len(rows) < 2:
        log(f"distillation off: {len(rows)} training item(s), it compares items with each other")
        return None
    texts = [str(items[i].get("title") or "") for i in rows]
    t0 = time.perf_counter()
    vecs = e5_encoder(cfg.cache_dir, progress=cfg.progress, log=log, name="e5-titles")(texts)
    log(f"distillation teacher: e5 vectors of {len(rows)} titles ({time.perf_counter() - t0:.1f}s)")
    return Teacher(rows, np.asarray(vecs, dtype=np.float32))
