"""Cross-request batching for embed work: one queue in front of the model, one model call per batch.

Sixteen clients each embedding one item used to make sixteen forward passes in sixteen worker threads, each with
torch's default thread count, fighting over two cores. `BatchingEmbedder` wraps the embedder with the same surface
(schema, manifest, dim, embed), so the routes (POST /embed, PUT, POST /search, batch writes) do not change: their
`embed(items)` call, made from FastAPI's worker threads, puts the items on a queue on the event loop and waits. A
collector task takes the first request, waits at most `max_wait_ms` for more (never past `max_items` items), and
runs one model call for all of them in the batcher's own thread, the only thread that ever runs the model (its
torch thread count set once from Settings); each request gets its own rows back, in order. If the batched call
fails, each request of the batch is run alone, so the error reaches the request that caused it and only that one.

`max_wait_ms=0` switches batching off (each call runs the model directly in its caller's thread, the old way):
that is the reference in BENCHMARKS.md, section 11.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["BatchingEmbedder"]

log = logging.getLogger("itemtower.serve")


@dataclass
class _Request:
    items: Sequence[dict[str, Any]]
    done: Future = field(default_factory=Future)  # concurrent.futures: the waiting worker thread blocks on it


class BatchingEmbedder:
    """An embedder whose `embed` calls from many threads are merged into few model calls.

    Args:
        embedder: what actually embeds (artifacts.Embedder, or a fake in tests): schema, manifest, dim, embed().
        max_wait_ms: how long the first request of a batch waits for others; 0: no batching.
        max_items: most items per model call (a request larger than this runs alone).
        torch_threads: torch.set_num_threads in the model thread (when torch is loaded); None leaves it.

    `start(loop)` from the event loop (the app's lifespan), `close()` at shutdown.
    """

    def __init__(self, embedder: Any, max_wait_ms: float = 2.0, max_items: int = 256,
                 torch_threads: int | None = 1) -> None:
        self.inner = embedder
        self.max_wait = max_wait_ms / 1000.0
        self.max_items = max_items
        self.torch_threads = torch_threads
        self.calls = 0  # model calls made (batched ones and lone re-runs after a failure)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Request | None = None
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="itemtower-model",
                                                initializer=self._init_thread)
        if hasattr(embedder, "explain"):  # the capability the explain route asks for (deps.Explainer)
            self.explain = self._explain

    # the embedder surface the routes use
    @property
    def schema(self):
        return self.inner.schema

    @property
    def manifest(self) -> dict[str, Any]:
        return self.inner.manifest

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def uses_photos(self) -> bool:  # serve/photos.py: whether items' `image` is read
        return bool(getattr(self.inner, "uses_photos", False))

    @property
    def batching(self) -> bool:
        return self.max_wait > 0 and self._task is not None

    def _init_thread(self) -> None:
        if self.torch_threads is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(self.torch_threads)

    def _explain(self, item: dict[str, Any], top: int = 5) -> dict[str, Any]:
        return self._model_thread.submit(self.inner.explain, item, top).result()

    async def start(self) -> None:
        """Start the collector on the running loop (no-op when batching is off)."""
        self._loop = asyncio.get_running_loop()
        if self.max_wait <= 0:
            if self.torch_threads is not None and "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(self.torch_threads)
            return
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._collect(), name="itemtower-embed-batcher")

    async def close(self) -> None:
        """Stop the collector; requests still queued fail with a clear error; the model thread ends."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue is not None and not self._queue.empty():
            req = self._queue.get_nowait()
            if not req.done.done():
                req.done.set_exception(RuntimeError("the service is shutting down; retry the request"))
        self._model_thread.shutdown(wait=True)

    def embed(self, items: Sequence[dict[str, Any]], batch_size: int = 256) -> np.ndarray:
        """Normalized items -> float32 (N, D), L2-normalised, as the wrapped embedder's. Blocks the calling
        thread (a FastAPI worker thread) until the batch holding these items has been embedded."""
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.batching or self._on_loop_thread():
            return self.inner.embed(items)
        req = _Request(list(items))
        self._loop.call_soon_threadsafe(self._queue.put_nowait, req)
        return req.done.result()

    def _on_loop_thread(self) -> bool:
        # Blocking the event loop on a future that the loop itself must fill would never return.
        return self._loop is not None and getattr(self._loop, "_thread_id", None) == threading.get_ident()

    async def _collect(self) -> None:
        assert self._queue is not None and self._loop is not None
        while True:
            batch = [self._carry or await self._queue.get()]
            self._carry = None
            n = len(batch[0].items)
            deadline = self._loop.time() + self.max_wait
            while n < self.max_items:
                if self._queue.empty():
                    left = deadline - self._loop.time()
                    if left <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), left)
                    except TimeoutError:
                        break
                else:
                    nxt = self._queue.get_nowait()
                if n + len(nxt.items) > self.max_items:
                    self._carry = nxt  # first of the next batch
                    break
                batch.append(nxt)
                n += len(nxt.items)
            await self._loop.run_in_executor(self._model_thread, self._run_batch, batch)

    def _run_batch(self, batch: list[_Request]) -> None:
        """In the model thread: one call for the whole batch, rows routed back; on failure, each request alone."""
        items = [it for req in batch for it in req.items]
        try:
            self.calls += 1
            vectors = self.inner.embed(items)  # (sum N_i, D)
        except Exception:
            if len(batch) == 1:
                batch[0].done.set_exception(sys.exc_info()[1])
                return
            log.info("a batch of %d embed requests failed; running them one by one", len(batch))
            for req in batch:
                try:
                    self.calls += 1
                    req.done.set_result(self.inner.embed(req.items))
                except Exception as e:
                    req.done.set_exception(e)
            return
        start = 0
        for req in batch:
            req.done.set_result(vectors[start: start + len(req.items)])
            start += len(req.items)
