"""Items -> image features: every item with a usable photo gets one row, read from the cache or encoded.

The pipeline per item: resolve its `image`, read the bytes, hash them; a cache hit is the row; misses are
decoded with Pillow and encoded in batches (32 by default: a batch amortises torch's per-call cost, and 32
photos of 224 x 224 are 19 MB of floats). A missing, unreadable or non-image photo is a warning naming the
item, never a crash: that item simply has no row. The same photo twice (two items, one file) is encoded once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from itemtower.images.cache import FeatureCache
from itemtower.images.source import ImageError, decode, read_bytes, resolve, sha256

__all__ = ["Encoder", "FeatureSet", "extract", "aligned", "save_features", "load_features"]


class Encoder(Protocol):
    """What `extract` needs from a model: a cache tag, the feature size and a batch encoder."""

    tag: str
    dim: int

    def encode(self, images: np.ndarray) -> np.ndarray: ...


@dataclass
class FeatureSet:
    """Rows for the items with a usable photo, in catalog order.

    Attributes:
        ids: item ids, one per row.
        vectors: float32 [len(ids), dim].
        hashes: the sha256 of each row's photo file.
        warnings: (item id, message) for every item whose photo could not be used.
        n_cached / n_encoded: rows read from the cache / encoded in this run.
    """

    ids: list[str]
    vectors: np.ndarray
    hashes: list[str]
    warnings: list[tuple[str, str]] = field(default_factory=list)
    n_cached: int = 0
    n_encoded: int = 0

    def row_of(self) -> dict[str, int]:
        return {i: r for r, i in enumerate(self.ids)}


def extract(items: Sequence[dict[str, Any]], encoder: Encoder | Callable[[], Encoder], cache_dir: str | Path,
            base_dir: str | Path | None = None, batch_size: int = 32, allow_urls: bool = False,
            progress: bool = True) -> FeatureSet:
    """Features for every item that has an `image` (items without one are skipped silently: a photo is optional).

    `encoder` may be a zero-argument factory: it is called only if some photo is not in the cache, so a run
    whose photos are all cached never loads torch's model. `base_dir` is the folder relative paths are read from
    (the catalog file's folder).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    is_factory = isinstance(encoder, type) or not hasattr(encoder, "encode")  # a class has .encode too
    enc: Encoder | None = None if is_factory else encoder  # type: ignore[assignment]
    factory = None if enc is not None else encoder
    tag, dim = (enc.tag, enc.dim) if enc is not None else _tag_dim(factory)
    cache = FeatureCache(cache_dir, tag, dim)

    ids: list[str] = []
    hashes: list[str] = []
    rows: dict[str, np.ndarray] = {}
    warnings: list[tuple[str, str]] = []
    pending: dict[str, np.ndarray] = {}  # hash -> pixels waiting for the encoder
    n_cached = n_encoded = 0

    def flush() -> None:
        nonlocal enc, n_encoded
        if not pending:
            return
        if enc is None:
            enc = factory()  # type: ignore[misc]
        keys = list(pending)
        vecs = np.asarray(enc.encode(np.stack([pending[k] for k in keys])), dtype=np.float32)
        for k, v in zip(keys, vecs):
            cache.put(k, v)
            rows[k] = v
        n_encoded += len(keys)
        pending.clear()

    bar = _bar(len(items), progress)
    for it in items:
        if bar is not None:
            bar.update(1)
        if it.get("image") is None:
            continue
        iid = str(it.get("id"))
        try:
            data = read_bytes(resolve(it["image"], base_dir), allow_urls=allow_urls)
            key = sha256(data)
            if key not in rows and key not in pending:
                cached = cache.get(key)
                if cached is not None:
                    rows[key] = cached
                    n_cached += 1
                else:
                    pending[key] = decode(data, where=f"image of item {iid!r}")
        except ImageError as e:
            warnings.append((iid, str(e)))
            continue
        ids.append(iid)
        hashes.append(key)
        if len(pending) >= batch_size:
            flush()
    flush()
    if bar is not None:
        bar.close()
    vectors = np.stack([rows[k] for k in hashes]) if hashes else np.zeros((0, dim), np.float32)
    return FeatureSet(ids, vectors, hashes, warnings, n_cached, n_encoded)


def aligned(items: Sequence[dict[str, Any]], fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """A FeatureSet laid out as `items`: (features float32 [len(items), dim], zeros where there is no photo;
    present bool [len(items)]): what the tower's batches take (features/dataset.py)."""
    dim = fs.vectors.shape[1] if fs.vectors.ndim == 2 else 0
    out = np.zeros((len(items), dim), dtype=np.float32)
    present = np.zeros(len(items), dtype=bool)
    row = fs.row_of()
    for i, it in enumerate(items):
        r = row.get(str(it.get("id")))
        if r is not None:
            out[i], present[i] = fs.vectors[r], True
    return out, present


def _tag_dim(factory: Any) -> tuple[str, int]:
    """The cache tag and size of a factory's encoder without building it (a class, or anything with tag/dim)."""
    tag, dim = getattr(factory, "tag", None), getattr(factory, "dim", None)
    if tag is None or dim is None:
        raise TypeError("encoder must have .encode, or be a factory (e.g. the class) with .tag and .dim")
    return tag, int(dim)


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="image features", unit="item", mininterval=0.5)


def save_features(fs: FeatureSet, out: str | Path) -> Path:
    """OUT/features.npy (float32 [N, D]) and OUT/features.json ({"ids", "hashes", "warnings"}, row order)."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "features.npy", fs.vectors, allow_pickle=False)
    meta = {"ids": fs.ids, "hashes": fs.hashes, "warnings": [{"id": i, "message": m} for i, m in fs.warnings]}
    (d / "features.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return d


def load_features(out: str | Path) -> FeatureSet:
    """What `save_features` wrote. Raises FileNotFoundError naming the folder and the command that writes it."""
    d = Path(out)
    if not (d / "features.npy").exists() or not (d / "features.json").exists():
        raise FileNotFoundError(f"no image features in {d} (features.npy + features.json); "
                                f"run `itemtower images --catalog C --out {d}` first")
    vectors = np.load(d / "features.npy", allow_pickle=False)
    meta = json.loads((d / "features.json").read_text(encoding="utf-8"))
    if len(meta["ids"]) != len(vectors):
        raise ValueError(f"{d}: features.json names {len(meta['ids'])} ids for {len(vectors)} rows")
    warns = [(w["id"], w["message"]) for w in meta.get("warnings", [])]
    return FeatureSet(list(meta["ids"]), vectors, list(meta.get("hashes", [])), warns)
