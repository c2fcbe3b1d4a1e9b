"""Start-up and shutdown of the service's performance machinery, from Settings: the index's ANN layout and search
threads, and the batching queue that owns the model (serve/batcher.py). Called by the app's lifespan."""

from __future__ import annotations

import logging

from itemtower.index import AnnConfig, FaissIndex
from itemtower.index.gpu import GpuUnavailable
from itemtower.serve.batcher import BatchingEmbedder
from itemtower.serve.deps import ServiceState
from itemtower.serve.neighbours import NeighbourCache
from itemtower.serve.settings import Settings

__all__ = ["start", "stop"]

log = logging.getLogger("itemtower.serve")


async def start(state: ServiceState, settings: Settings) -> None:
    """Configure the index and put the embedder behind the batching queue (no-op parts when there is no model)."""
    if isinstance(state.index, FaissIndex):
        cfg = AnnConfig(threshold=settings.ann_threshold, ef_search=settings.ef_search, m=settings.hnsw_m,
                        gpu=settings.faiss_gpu)
        # background: a large flat index from an old directory serves (exactly, slower) while HNSW is built (or,
        # on a GPU, a saved HNSW index serves on the CPU while its flat GPU copy is made)
        try:
            state.index.configure(cfg, search_threads=settings.search_threads, background_rebuilds=True)
        except GpuUnavailable as e:  # ITEMTOWER_FAISS_GPU=on without a GPU: the start-up stops, saying what to do
            log.error("%s", e)
            raise
        log.info("index: %s", state.index)
        # Kept neighbour lists need every write to pass through this process: true of the embedded FAISS index.
        if settings.neighbour_depth > 0 and state.embedder is not None:
            state.neighbours = NeighbourCache(settings.neighbour_depth, settings.neighbour_max_items)
            state.neighbours.fill_in_background(state.index)
    if state.embedder is not None and not isinstance(state.embedder, BatchingEmbedder):
        state.embedder = BatchingEmbedder(state.embedder, max_wait_ms=settings.batch_wait_ms,
                                          max_items=settings.batch_max_items, torch_threads=settings.torch_threads)
        await state.embedder.start()


async def stop(state: ServiceState) -> None:
    if state.neighbours is not None:
        state.neighbours.stop()
    if isinstance(state.embedder, BatchingEmbedder):
        await state.embedder.close()
