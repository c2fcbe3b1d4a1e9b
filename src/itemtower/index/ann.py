"""Building blocks of FaissIndex's two layouts: exact (IndexFlatIP) and ANN (IndexHNSWFlat, inner product).

Both sit inside an IndexIDMap2, so that FAISS speaks the index's own int64 ids and `reconstruct(id)` works for
either. Which layout an index uses follows its size (`AnnConfig.threshold`): exact search costs O(N * D) per query
and stops meeting the service's latency target past some ten thousand items on this class of CPU (BENCHMARKS.md,
section 11); HNSW costs O(log N * M * D) and loses a little recall, which efSearch buys back. With FAISS on a GPU
(`AnnConfig.gpu`, index/gpu.py) the layout is exact flat at every size: the GPU makes the scan cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

__all__ = ["AnnConfig", "FLAT", "HNSW", "GPU_SETTINGS", "build", "kind_of", "live_vectors", "exact_search"]

FLAT, HNSW = "flat", "hnsw"
GPU_SETTINGS = ("auto", "on", "off")  # AnnConfig.gpu (ITEMTOWER_FAISS_GPU in the service)


@dataclass(frozen=True)
class AnnConfig:
    """When and how FaissIndex switches to HNSW. Defaults measured at 100k x 512 (BENCHMARKS.md, section 11)."""

    threshold: int = 10_000  # more live items than this: HNSW; this many or fewer: exact flat. 0 = always HNSW
    ef_search: int = 32  # HNSW candidate list at query time: higher = better recall, slower (>= k is used)
    m: int = 32  # HNSW neighbours per node: memory and build time grow with it, recall too
    ef_construction: int = 80  # HNSW candidate list while inserting
    compact_fraction: float = 0.25  # tombstones above this share of the stored vectors: rebuild in memory
    # Search on a GPU (index/gpu.py): "auto" when faiss has one, "on" (an error without), "off". With it the layout
    # is exact flat at any size and `threshold` does not apply. "off" here, so that a FaissIndex made in code
    # behaves the same on every machine; the service's ITEMTOWER_FAISS_GPU defaults to "auto".
    gpu: str = "off"

    def __post_init__(self) -> None:
        for name in ("threshold",):
            if getattr(self, name) < 0:
                raise ValueError(f"AnnConfig.{name} must be >= 0; got {getattr(self, name)}")
        for name in ("ef_search", "m", "ef_construction"):
            if getattr(self, name) < 1:
                raise ValueError(f"AnnConfig.{name} must be >= 1; got {getattr(self, name)}")
        if not 0.0 < self.compact_fraction <= 1.0:
            raise ValueError(f"AnnConfig.compact_fraction must be in (0, 1]; got {self.compact_fraction}")
        if self.gpu not in GPU_SETTINGS:
            raise ValueError(f"AnnConfig.gpu must be one of {', '.join(GPU_SETTINGS)}; got {self.gpu!r}")

    def kind_for(self, n_live: int) -> str:
        return HNSW if n_live > self.threshold else FLAT


def kind_of(index: faiss.IndexIDMap2) -> str:
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSWFlat):
        return HNSW
    if isinstance(inner, faiss.IndexFlat):
        return FLAT
    raise ValueError(f"unsupported FAISS index inside the id map: {type(inner).__name__}")


def build(kind: str, dim: int, vectors: np.ndarray, ids: np.ndarray, cfg: AnnConfig) -> faiss.IndexIDMap2:
    """A new IndexIDMap2 of `kind` holding vectors (N, D) float32 under int64 ids (N,)."""
    if kind == HNSW:
        inner = faiss.IndexHNSWFlat(dim, cfg.m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = cfg.ef_construction
        inner.hnsw.efSearch = cfg.ef_search
    elif kind == FLAT:
        inner = faiss.IndexFlatIP(dim)
    else:
        raise ValueError(f"index kind must be {FLAT!r} or {HNSW!r}; got {kind!r}")
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def set_ef_search(index: faiss.IndexIDMap2, ef: int) -> None:
    if kind_of(index) == HNSW:
        faiss.downcast_index(index.index).hnsw.efSearch = int(ef)


def live_vectors(index: faiss.IndexIDMap2, live: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (L, D), ids (L,)) of the stored vectors whose id is in `live`, in storage order."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)  # (N,) storage position -> id
    if index.ntotal == 0:
        return np.zeros((0, index.d), np.float32), ids
    vecs = index.index.reconstruct_n(0, index.ntotal)  # (N, D)
    keep = np.fromiter((int(i) in live for i in ids), dtype=bool, count=len(ids))
    return vecs[keep], ids[keep]


def exact_search(index: faiss.IndexIDMap2, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k by inner product over an HNSW index's flat storage: (scores (1, k), ids (1, k)), -1 padded.
    What a widening filtered search falls back to once it needs more candidates than HNSW finds cheaply."""
    storage = faiss.downcast_index(faiss.downcast_index(index.index).storage)
    scores, pos = storage.search(query, k)  # (1, k) storage positions
    id_map = faiss.vector_to_array(index.id_map)
    labels = np.where(pos >= 0, id_map[np.clip(pos, 0, None)], -1)
    return scores, labels
