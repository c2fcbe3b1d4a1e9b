"""Image features on disk, keyed by the sha256 of the photo file's bytes.

One `<sha256>.npy` (float32 [D]) per photo under `root/<model tag>/<first two hex digits>/`: a re-run, a second
catalog with the same photos, or a photo moved to another path reads the cache; a changed photo (new bytes) is
encoded again. Writes go to a temporary file and are renamed into place, so an interrupted run leaves no half
file and two runs can share a cache. The model tag is part of the path: features of another model or another
preprocessing never mix with these.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FeatureCache", "cache_root"]


def cache_root(image_cache: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """Where a photo model's features are kept: `image_cache` when given, else `cache_dir`/images, else
    ~/.cache/itemtower/images (what training, the Embedder and the service share by default)."""
    if image_cache:
        return Path(image_cache)
    return (Path(cache_dir) if cache_dir else Path.home() / ".cache" / "itemtower") / "images"


class FeatureCache:
    """get/put float32 vectors by content hash under `root/tag`."""

    def __init__(self, root: str | Path, tag: str, dim: int):
        self.dir = Path(root) / tag
        self.dim = dim
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached vector, or None if absent or unreadable (a damaged file is re-encoded, not an error)."""
        p = self._path(key)
        if not p.exists():
            return None
        try:
            v = np.load(p, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if v.shape != (self.dim,) or v.dtype != np.float32:
            return None
        return v

    def put(self, key: str, vector: np.ndarray) -> None:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape != (self.dim,):
            raise ValueError(f"feature of shape {v.shape} for a cache of dimension {self.dim}")
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, v, allow_pickle=False)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.npy"))
