"""BatchingEmbedder (serve/batcher.py): concurrent embed calls share model calls and each gets its own rows back;
an error reaches only the caller whose items caused it."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fakes import FakeEmbedder
from itemtower.serve.batcher import BatchingEmbedder


class Flaky(FakeEmbedder):
    """Fails any call holding an item titled "boom"; counts the threads that ran the model."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def embed(self, items, batch_size=256):
        self.threads.add(threading.current_thread().name)
        if any(it.get("title") == "boom" for it in items):
            raise ValueError("cannot embed 'boom'")
        return super().embed(items)


def run_callers(batcher: BatchingEmbedder, requests: list[list[dict]]) -> list:
    """Start the batcher on a loop, call embed from one worker thread per request at once, return the results
    (an array or the exception each caller got)."""

    async def main():
        await batcher.start()
        barrier = threading.Barrier(len(requests))

        def call(items):
            barrier.wait()  # all callers at the same moment, as 16 clients would be
            try:
                return batcher.embed(items)
            except Exception as e:  # noqa: BLE001 (the test looks at which caller got what)
                return e

        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(len(requests))  # one thread per caller (the default pool has fewer)
        try:
            return await asyncio.gather(*(loop.run_in_executor(pool, call, r) for r in requests))
        finally:
            pool.shutdown()
            await batcher.close()

    return asyncio.run(main())


def requests_of(n: int) -> list[list[dict]]:
    # request i has 1 + i % 3 items, each with its own words: rows can be told apart
    return [[{"title": f"req{i} item{j} word{i * 7 + j}"} for j in range(1 + i % 3)] for i in range(n)]


def test_concurrent_callers_get_their_own_rows_in_few_model_calls():
    """16 threads at once: each gets exactly the rows the model gives its items alone, in one or a few calls."""
    fake = Flaky()
    batcher = BatchingEmbedder(fake, max_wait_ms=50, max_items=256)
    reqs = requests_of(16)
    got = run_callers(batcher, reqs)
    reference = FakeEmbedder()
    for items, rows in zip(reqs, got):
        assert isinstance(rows, np.ndarray) and rows.shape == (len(items), fake.dim)
        np.testing.assert_allclose(rows, reference.embed(items))
    assert 1 <= len(fake.calls) <= 4  # 16 requests, 32 items: batched, not one call each
    assert fake.threads == {next(iter(fake.threads))} and next(iter(fake.threads)).startswith("itemtower-model")


def test_max_items_caps_a_batch():
    """No model call holds more than max_items items (a request is never split)."""
    fake = Flaky()
    got = run_callers(BatchingEmbedder(fake, max_wait_ms=50, max_items=4), requests_of(12))
    assert all(isinstance(r, np.ndarray) for r in got)
    assert all(len(call) <= 4 for call in fake.calls)
    assert sum(len(c) for c in fake.calls) == sum(len(r) for r in requests_of(12))


def test_an_error_reaches_only_the_caller_that_caused_it():
    """One request with a bad item fails with the model's error; the others in its batch get their rows."""
    fake = Flaky()
    reqs = requests_of(8)
    reqs[3] = [{"title": "fine"}, {"title": "boom"}]
    got = run_callers(BatchingEmbedder(fake, max_wait_ms=50), reqs)
    assert isinstance(got[3], ValueError) and "boom" in str(got[3])
    for i, rows in enumerate(got):
        if i != 3:
            np.testing.assert_allclose(rows, FakeEmbedder().embed(reqs[i]))


def test_batching_off_calls_the_model_directly():
    """max_wait_ms=0: each call runs the model itself, in the caller's thread (the reference in BENCHMARKS)."""
    fake = Flaky()
    got = run_callers(BatchingEmbedder(fake, max_wait_ms=0), requests_of(4))
    assert len(fake.calls) == 4 and all(isinstance(r, np.ndarray) for r in got)
    assert not any(t.startswith("itemtower-model") for t in fake.threads)


def test_surface_and_empty_input():
    """The wrapper has the embedder's schema, manifest and dim; no items is no model call."""
    fake = FakeEmbedder()
    b = BatchingEmbedder(fake)
    assert (b.schema, b.manifest, b.dim) == (fake.schema, fake.manifest, fake.dim)
    assert b.embed([]).shape == (0, fake.dim) and fake.calls == []
    assert not hasattr(b, "explain")  # the fake cannot explain, so neither can its wrapper


@pytest.mark.parametrize("n", [1, 3])
def test_sequential_calls_each_get_a_call(n):
    """Calls that do not overlap are not held back for each other beyond max_wait: n calls, n model calls."""
    fake = FakeEmbedder()
    batcher = BatchingEmbedder(fake, max_wait_ms=1)

    async def main():
        await batcher.start()
        try:
            for i in range(n):
                await asyncio.to_thread(batcher.embed, [{"title": f"t{i}"}])
        finally:
            await batcher.close()

    asyncio.run(main())
    assert len(fake.calls) == n
