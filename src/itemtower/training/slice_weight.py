"""The served weight of h's semantic slice, read off the trained model on the catalog itself (issue 9).

h = cat(LayerNorm(main), s x LayerNorm(slice)): the main part is the tower proper (it ranks colour variants and
near-duplicates), the slice is what e5 taught (same kind of product). Training sees the slice at s = 1 and its
LayerNorm gains settle how loud each part is for this catalog: where the structured fields and text separate
items well (Myntra: 20 std fields and a description) the slice ends up quiet, about 0.65 of the main part's RMS;
where they do not (Musinsa: a short title and a brand) it ends up loud, about 2 times the main part's. Served at
s = 1 that preference is too mild for both (BENCHMARKS.md 13b: Myntra's NDCG@10 wants s near 0.5, Musinsa's
category consistency wants s of 2 or more). Served at s = RMS(slice) / RMS(main), measured on a sample of the
catalog's items at the end of training (label-free), the slice's share of the cosine is that preference squared:
quiet slices get quieter, loud ones louder. Section 13c measures it on the three benchmark catalogs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["slice_ratio", "measured_sem_scale", "serve_measured_slice", "SCALE_RANGE"]

SCALE_RANGE = (0.25, 4.0)  # a measured weight is kept inside this: neither part ever vanishes from the cosine


def slice_ratio(h: np.ndarray, main_dim: int) -> float:
    """RMS(slice) / RMS(main) over the rows of h (N, main_dim + sem_dim), as trained (slice at scale 1).
    Scale-free per row: an L2-normalised h gives the same ratio."""
    h = np.asarray(h, dtype=np.float64)
    main = float(np.square(h[:, :main_dim]).sum())
    sem = float(np.square(h[:, main_dim:]).sum())
    if main <= 0.0:
        return SCALE_RANGE[1]
    return float(np.sqrt(sem / main))


def measured_sem_scale(embed: Any, items: Sequence[dict], main_dim: int, sample: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """(served sem_scale, measured ratio): `embed(items) -> h` with the slice at scale 1, on a seeded sample of
    at most `sample` items; the ratio clipped to SCALE_RANGE."""
    n = len(items)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False)) if n else []
    h = embed([items[i] for i in rows])
    ratio = slice_ratio(h, main_dim) if len(h) else 1.0
    return float(np.clip(ratio, *SCALE_RANGE)), ratio


def serve_measured_slice(out: str | Path, encoded: Sequence[Any], sample: int = 2000, seed: int = 0,
                         log: Callable[[str], None] = print) -> float | None:
    """Set the exported model's served sem_scale to the one measured on `encoded` (EncodedItems of the catalog),
    in OUT/manifest.json (the weights do not change: the scale is a constant of the served norm). Records the
    measurement under manifest["training"]["sem_scale_measured"]. None (nothing changed) without a slice."""
    from itemtower.artifacts.checkpoint import read_manifest, write_manifest
    from itemtower.artifacts.embedder import Embedder

    out = Path(out)
    emb = Embedder.load(out)
    cfg = emb.tower.cfg
    if not cfg.sem_dim:
        return None
    exported = cfg.sem_scale if cfg.sem_scale > 0 else 1.0

    def h_at_one(batch: Sequence[Any]) -> np.ndarray:  # the slice as trained: undo the exported scale
        h = emb.embed_encoded(batch, normalized=False)
        h[:, cfg.main_dim:] /= exported
        return h

    scale, ratio = measured_sem_scale(h_at_one, encoded, cfg.main_dim, sample, seed)
    manifest = read_manifest(out)
    manifest["model"]["sem_scale"] = scale
    manifest.setdefault("training", {})["sem_scale_measured"] = {
        "served": round(scale, 4), "ratio": round(ratio, 4), "items": min(sample, len(encoded)),
        "rule": "RMS(slice) / RMS(main) of h as trained, clipped to [%g, %g] (training/slice_weight.py)"
                % SCALE_RANGE}
    write_manifest(out, manifest)
    log(f"semantic slice served at {scale:.3f} (RMS slice / main measured on {min(sample, len(encoded))} items: "
        f"{ratio:.3f}); --no-auto-sem-scale keeps --sem-scale")
    return scale
