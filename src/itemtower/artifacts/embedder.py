"""The Embedder: items -> L2-normalised h, from a saved model directory (checkpoint.py reads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from itemtower.artifacts.checkpoint import (MANIFEST, PTH1, PTH2, ModelLoadError, ModelNotFoundError, atomic_save,
                                  load_tower, load_weights, save_model)
from itemtower.features.dataset import collate_items
from itemtower.features.featurize import EncodedItem, Featurizer
from itemtower.model import ItemTower
from itemtower.vectors import l2_normalize

__all__ = ["Embedder", "ModelLoadError", "ModelNotFoundError", "atomic_save", "load_tower", "load_weights",
           "save_model", "l2_normalize", "PTH1", "PTH2", "MANIFEST"]


CPU_BATCH = 64  # items per forward pass on a CPU (BENCHMARKS.md 14g)


class Embedder:
    """Items -> L2-normalised h vectors, from a saved model (pth1 + pth2 only).

    `precision` (model/device.use_bf16): "auto" (the default) runs the forward pass under bf16 autocast where the
    device has bf16 kernels (AVX-512 BF16 / AMX CPUs, Ampere+ GPUs), fp32 elsewhere; "fp32"; "bf16". On a trained
    Myntra model bf16 and fp32 vectors give the same retrieval metrics (BENCHMARKS.md 14g). `batch_size` None:
    64 items per forward pass on a CPU (1.3-1.7x batch 256 there: the attention's tensors stay in cache), 512 on
    CUDA.

    A model trained with photos (manifest model.image_dim > 0) reads each item's `image` (a path: absolute, or
    relative to `image_base`; an http(s) URL only with `allow_urls`) through the feature cache `image_cache`
    (default ~/.cache/itemtower/images); EfficientNet-Lite0 is loaded once, on the first photo not in the cache.
    Items without a (usable) photo embed from their text alone."""

    precision: str = "auto"
    image_cache: str | Path | None = None
    image_base: str | Path | None = None
    allow_urls: bool = False

    def __init__(self, tower: ItemTower, featurizer: Featurizer, manifest: dict[str, Any]) -> None:
        self.tower, self.featurizer, self.manifest = tower.eval(), featurizer, manifest
        self._image_encoder = None
        self.photo_warnings: list[tuple[str, str]] = []  # (item id, why) of the last photos_of call

    @classmethod
    def load(cls, directory: str | Path) -> "Embedder":
        return cls(*load_tower(directory))

    def to(self, device: str | torch.device) -> "Embedder":
        """Run the tower on `device` ("cpu", "cuda", "auto": model/device.resolve_device); batches follow it."""
        from itemtower.model.device import resolve_device

        self.tower.to(resolve_device(device) if isinstance(device, str) else device)
        return self

    @property
    def schema(self):
        return self.featurizer.schema

    @property
    def dim(self) -> int:
        return self.tower.cfg.h_dim

    @property
    def uses_photos(self) -> bool:
        """Whether the model was trained with photos (it then reads items' `image`)."""
        return self.tower.body.image is not None

    def image_encoder(self):
        """The process's EfficientNet-Lite0 for this embedder, loaded on first use (serve: in the model thread)."""
        if self._image_encoder is None:
            from itemtower.images.encoder import EfficientNetLite0

            self._image_encoder = EfficientNetLite0()
        return self._image_encoder

    def photos_of(self, items: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
        """(features (N, P), present (N,)) of the items' photos, or None (a text model, or no item has one).
        An unusable photo (missing, not an image) leaves that item photo-less; the reasons are kept in
        `photo_warnings`."""
        self.photo_warnings = []
        if not self.uses_photos or not any(it.get("image") for it in items):
            return None
        from itemtower.images.cache import cache_root
        from itemtower.images.encoder import MODEL_TAG
        from itemtower.images.features import aligned, extract

        factory = _LazyEncoder(self.image_encoder, MODEL_TAG, self.tower.cfg.image_dim)
        fs = extract(items, factory, cache_root(self.image_cache), base_dir=self.image_base, allow_urls=self.allow_urls, progress=False)
        self.photo_warnings = fs.warnings
        return aligned(items, fs)

    @property
    def bf16(self) -> bool:
        """Whether the forward pass runs under bf16 autocast: `precision` on the tower's device."""
        from itemtower.model.device import use_bf16

        return use_bf16(self.precision, next(self.tower.parameters()).device)

    def batch_for(self, batch_size: int | None) -> int:
        """The forward pass's batch: as given, or 64 on a CPU and 512 on CUDA."""
        if batch_size is not None:
            return batch_size
        return 512 if next(self.tower.parameters()).device.type == "cuda" else CPU_BATCH

    @torch.inference_mode()  # no autograd bookkeeping at all (no_grad still versions tensors)
    def embed_encoded(self, encoded: Sequence[EncodedItem], batch_size: int | None = None, progress: bool = False,
                      normalized: bool = True, photos: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """EncodedItems -> float32 (N, D), L2-normalised (normalized=False: h before it, the projection head's
        input, which evaluation needs for z). Batches are built from length-sorted items. `photos` (features,
        present), rows as `encoded`: what a photo model reads (photos_of); None: text alone."""
        n, batch_size, bf16 = len(encoded), self.batch_for(batch_size), self.bf16
        out = np.zeros((n, self.dim), dtype=np.float32)
        order = sorted(range(n), key=lambda i: len(encoded[i].title) + sum(len(p) for ph in encoded[i].re
                                                                          for p in ph))
        batches = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embed", unit="batch")
        dev = next(self.tower.parameters()).device  # Embedder.to(device); CPU unless moved
        for s in batches:
            idx = order[s: s + batch_size]
            view = collate_items([encoded[i] for i in idx], self.featurizer.max_text_tokens,
                                 None if photos is None else (photos[0][idx], photos[1][idx]))
            if dev.type == "cuda":  # pinned host memory: the copy runs asynchronously
                view = [t.pin_memory().to(dev, non_blocking=True) for t in view]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out[idx] = self.tower(*view).float().cpu().numpy()
        return l2_normalize(out) if normalized else out

    def embed(self, items: Sequence[dict[str, Any]], batch_size: int | None = None, progress: bool = False,
              chunk: int = 8192) -> np.ndarray:
        """Normalized item dicts (any part may be missing) -> float32 (N, D), L2-normalised h. Encoded `chunk`
        items at a time: the token ids of a whole catalog as Python lists are a few KB per item (BENCHMARKS.md 14)."""
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(items) <= chunk:
            return self.embed_encoded(self.featurizer.encode(items), batch_size, progress,
                                      photos=self.photos_of(items))
        out = np.empty((len(items), self.dim), dtype=np.float32)
        starts = range(0, len(items), chunk)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embed", unit="chunk")
        for s in starts:
            part = items[s: s + chunk]
            out[s: s + chunk] = self.embed_encoded(self.featurizer.encode(part), batch_size,
                                                   photos=self.photos_of(part))
        return out

    def explain(self, item: dict[str, Any], top: int = 5) -> dict[str, Any]:
        """Per STD field, the title/RE tokens its cross-attention query weighted most (explain.explain_item);
        the capability the service's explain route checks for (serve/deps.Explainer)."""
        from itemtower.artifacts.explain import explain_item

        return explain_item(self, item, top=top)


class _LazyEncoder:
    """An encoder factory for images.features.extract: its tag and size known up front, the model built (once,
    by the Embedder) only when a photo is not in the cache."""

    def __init__(self, build, tag: str, dim: int) -> None:
        self.build, self.tag, self.dim = build, tag, dim

    def __call__(self):
        return self.build()
