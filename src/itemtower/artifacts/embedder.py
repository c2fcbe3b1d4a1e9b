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


class Embedder:
    """Items -> L2-normalised h vectors, from a saved model (pth1 + pth2 only).

    `bf16 = True` (opt-in, `itemtower embed --bf16`) runs the forward pass under bf16 autocast (AMX on CPUs that
    have it): vectors within ~1e-5 cosine of fp32 on Myntra, not yet checked on a trained model's quality
    (BENCHMARKS.md 14), hence off by default."""

    bf16: bool = False

    def __init__(self, tower: ItemTower, featurizer: Featurizer, manifest: dict[str, Any]) -> None:
        self.tower, self.featurizer, self.manifest = tower.eval(), featurizer, manifest

    @classmethod
    def load(cls, directory: str | Path) -> "Embedder":
        return cls(*load_tower(directory))

    @property
    def schema(self):
        return self.featurizer.schema

    @property
    def dim(self) -> int:
        return self.tower.cfg.h_dim

    @torch.inference_mode()  # no autograd bookkeeping at all (no_grad still versions tensors)
    def embed_encoded(self, encoded: Sequence[EncodedItem], batch_size: int = 256, progress: bool = False,
                      normalized: bool = True) -> np.ndarray:
        """EncodedItems -> float32 (N, D), L2-normalised (normalized=False: h before it, the projection head's
        input, which evaluation needs for z). Batches are built from length-sorted items."""
        n = len(encoded)
        out = np.zeros((n, self.dim), dtype=np.float32)
        order = sorted(range(n), key=lambda i: len(encoded[i].title) + sum(len(p) for ph in encoded[i].re
                                                                          for p in ph))
        batches = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embed", unit="batch")
        for s in batches:
            idx = order[s: s + batch_size]
            t_std, t_re = collate_items([encoded[i] for i in idx], self.featurizer.max_text_tokens)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                out[idx] = self.tower(t_std, t_re).float().numpy()
        return l2_normalize(out) if normalized else out

    def embed(self, items: Sequence[dict[str, Any]], batch_size: int = 256, progress: bool = False,
              chunk: int = 8192) -> np.ndarray:
        """Normalized item dicts (any part may be missing) -> float32 (N, D), L2-normalised h. Encoded `chunk`
        items at a time: the token ids of a whole catalog as Python lists are a few KB per item (BENCHMARKS.md 14)."""
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(items) <= chunk:
            return self.embed_encoded(self.featurizer.encode(items), batch_size, progress)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        starts = range(0, len(items), chunk)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embed", unit="chunk")
        for s in starts:
            out[s: s + chunk] = self.embed_encoded(self.featurizer.encode(items[s: s + chunk]), batch_size)
        return out

    def explain(self, item: dict[str, Any], top: int = 5) -> dict[str, Any]:
        """Per STD field, the title/RE tokens its cross-attention query weighted most (explain.explain_item);
        the capability the service's explain route checks for (serve/deps.Explainer)."""
        from itemtower.artifacts.explain import explain_item

        return explain_item(self, item, top=top)
