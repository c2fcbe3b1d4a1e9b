"""serve/similarity.py's search threads: every awaiting request gets its own result (or its own error), however
many finish while the loop is busy, on any event loop; and similar_to's 404 comes back through them."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from itemtower.index import FaissIndex
from itemtower.serve import similarity
from itemtower.serve.validation import ApiError


def _job(i: int) -> int:
    time.sleep(0.0005 * (i % 3))  # finish out of order
    if i % 7 == 3:
        raise ValueError(f"job {i}")
    return i * i


async def _many(n: int) -> list:
    return await asyncio.gather(*(similarity._threads().run(_job, i) for i in range(n)), return_exceptions=True)


def test_each_request_gets_its_own_result_or_error():
    for _ in range(2):  # a second event loop (a second TestClient, a restart) is served as well as the first
        got = asyncio.run(_many(300))
        for i, r in enumerate(got):
            if i % 7 == 3:
                assert isinstance(r, ValueError) and str(r) == f"job {i}"
            else:
                assert r == i * i


def test_results_finishing_while_the_loop_is_blocked_are_all_delivered():
    """The loop is busy (not awaiting) while every job finishes: one wake-up must still settle all of them."""
    async def blocked() -> list:
        futures = [asyncio.ensure_future(similarity._threads().run(_job, i)) for i in range(50)]
        await asyncio.sleep(0)  # let them be submitted
        time.sleep(0.2)  # the loop thread is blocked: the workers append to the inbox meanwhile
        return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=10)

    got = asyncio.run(blocked())
    assert [r for i, r in enumerate(got) if i % 7 != 3] == [i * i for i in range(50) if i % 7 != 3]


def test_similar_off_loop_searches_and_404s_in_the_worker():
    idx = FaissIndex(8)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 8)).astype(np.float32)
    idx.upsert([f"a{i}" for i in range(5)], v / np.linalg.norm(v, axis=1, keepdims=True),
               [{"title": str(i)} for i in range(5)])
    main = threading.get_ident()
    seen = []
    real = idx.vector

    def vector(item_id):
        seen.append(threading.get_ident())
        return real(item_id)

    idx.vector = vector  # type: ignore[method-assign]
    hits = asyncio.run(similarity.similar_off_loop(idx, "a0", 3))
    assert len(hits) == 3 and "a0" not in {h for h, _ in hits}
    assert seen and main not in seen  # the lookup ran in a search thread
    with pytest.raises(ApiError) as e:
        asyncio.run(similarity.similar_off_loop(idx, "nope", 3))
    assert e.value.status == 404
