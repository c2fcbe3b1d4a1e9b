"""FAISS on a GPU (issue 14): an exact copy of FaissIndex's flat index in GPU memory, searched instead of it.

FAISS has no GPU HNSW; what it does on a GPU is exact (flat) search, a scan of 1M x 512 in about a millisecond.
So with a GPU (`AnnConfig.gpu`, ITEMTOWER_FAISS_GPU in the service) FaissIndex keeps the flat layout at every
size (recall 1.0, the HNSW threshold does not apply) and a `GpuMirror` of its CPU IndexIDMap2(IndexFlatIP):
built by `faiss.index_cpu_to_gpu` (FAISS's cloner copies the id map and turns the flat index inside it into a
GpuIndexFlat), kept in step by adding the same rows under the same ids, and searched instead of the CPU index.
The CPU index stays the source of truth: `vector` (reconstruct), `save` (faiss.write_index) and rebuilds read
it, since FAISS cannot write or reconstruct GPU indexes reliably.

Two FAISS limits shape the mirror: a GPU search returns at most MAX_K results (the k-selection kernels' limit,
GPU_MAX_SELECTION_K), so a widening filtered search that asks for more is answered by the CPU flat index (exact
as well, slower); and a GpuResources object serves one CPU thread at a time, so every GPU call holds one lock
(a search is about a millisecond; the service searches from two threads).
"""

from __future__ import annotations

import functools
import threading
from importlib import metadata
from typing import Any

import faiss
import numpy as np

from itemtower.index import ann as annlib

__all__ = ["GpuUnavailable", "GpuMirror", "gpu_count", "use_gpu", "faiss_build", "MAX_K"]

MAX_K = 2048  # FAISS GPU's k limit (GPU_MAX_SELECTION_K, CUDA builds): larger searches go to the CPU index
DEVICE = 0  # the GPU FaissIndex uses (FAISS numbering, after CUDA_VISIBLE_DEVICES)
# pip names of the faiss builds, GPU ones first (they all install the module `faiss`)
_DISTRIBUTIONS = ("faiss-gpu-cu12", "faiss-gpu-cu11", "faiss-gpu", "faiss-gpu-cuvs", "faiss-gpu-cu12-cuvs", "faiss-cpu")

_lock = threading.Lock()  # every GPU call (search, add, copy): a GpuResources object is not thread-safe
_resources: dict[int, Any] = {}  # device -> its StandardGpuResources, one per process (made on first use)


class GpuUnavailable(RuntimeError):
    """AnnConfig.gpu (ITEMTOWER_FAISS_GPU) is "on", but this faiss cannot search on a GPU."""


def _gpu_capable() -> bool:
    return all(hasattr(faiss, name) for name in ("get_num_gpus", "StandardGpuResources", "index_cpu_to_gpu"))


def gpu_count() -> int:
    """The GPUs faiss can use: 0 with a faiss built without GPU support (faiss-cpu), or with no GPU visible."""
    return int(faiss.get_num_gpus()) if _gpu_capable() else 0


@functools.lru_cache(maxsize=1)
def faiss_build() -> str:
    """The installed faiss, as pip names it: "faiss-cpu 1.15.1", "faiss-gpu-cu12 1.14.1", ..."""
    for dist in _DISTRIBUTIONS:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return f"faiss {getattr(faiss, '__version__', '?')} (not installed by pip)"


def use_gpu(setting: str) -> bool:
    """Whether an index with AnnConfig.gpu = `setting` searches on a GPU: "off" never, "auto" when faiss has one.

    Raises:
        GpuUnavailable: "on", and this faiss has no GPU support or sees no GPU (the message says which and what
            to do).
    """
    if setting == "off":
        return False
    n = gpu_count()
    if n > 0 or setting == "auto":
        return n > 0
    if not _gpu_capable():
        why = f"the installed {faiss_build()} is built without GPU support"
        fix = "install a CUDA build in its place (pip uninstall faiss-cpu && pip install faiss-gpu-cu12)"
    else:
        why = f"the installed {faiss_build()} sees no GPU (faiss.get_num_gpus() is 0)"
        fix = "check that this process sees a CUDA device (nvidia-smi, CUDA_VISIBLE_DEVICES)"
    raise GpuUnavailable(f"ITEMTOWER_FAISS_GPU=on (AnnConfig.gpu) asks for FAISS search on a GPU, but {why}; {fix}, "
                         "or set ITEMTOWER_FAISS_GPU=auto (a GPU when there is one) or off")


def _resources_for(device: int) -> Any:
    res = _resources.get(device)
    if res is None:
        res = _resources[device] = faiss.StandardGpuResources()
    return res


class GpuMirror:
    """A GPU copy of a CPU IndexIDMap2(IndexFlatIP), for search only.

    Args:
        cpu: the flat index to copy; it also answers searches for more than MAX_K results.
        device: the GPU.

    The owner (FaissIndex) adds every row it adds to `cpu` here too (`add_with_ids`, same ids), under its write
    lock, and replaces mirror and CPU index together. Raises RuntimeError (FAISS's errors, e.g. out of GPU memory).
    """

    def __init__(self, cpu: faiss.IndexIDMap2, device: int = DEVICE) -> None:
        if annlib.kind_of(cpu) != annlib.FLAT:
            raise ValueError("only a flat index can be mirrored on a GPU (FAISS has no GPU HNSW)")
        self.cpu, self.device = cpu, device
        with _lock:
            self.gpu = faiss.index_cpu_to_gpu(_resources_for(device), device, cpu)  # IndexIDMap2(GpuIndexFlat)

    @property
    def ntotal(self) -> int:
        return int(self.gpu.ntotal)

    def add_with_ids(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add rows (N, D) float32 under int64 ids (N,), as the CPU index got them."""
        with _lock:
            self.gpu.add_with_ids(vectors, ids)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k by inner product: (scores (1, k), ids (1, k)), -1 padded, as faiss's Index.search."""
        if k > MAX_K:  # past what the GPU selects: the CPU flat index, exact too
            return self.cpu.search(query, k)
        with _lock:
            return self.gpu.search(query, k)

    def __repr__(self) -> str:
        return f"GpuMirror(device={self.device}, ntotal={self.ntotal})"
