"""Searches running while PUT/DELETE change the index, and the readers-writer lock under them."""

from __future__ import annotations

import threading
import time

import numpy as np
from fastapi.testclient import TestClient

from fakes import FakeEmbedder, catalog
from itemtower.index import AnnConfig, FaissIndex
from itemtower.index.rwlock import RWLock
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings


def test_writer_waits_for_readers_and_blocks_new_ones():
    """A writer waits until the readers inside leave; while it waits, a new reader waits behind it."""
    lock = RWLock()
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def reader(name: str, hold: threading.Event | None) -> None:
        with lock.read():
            order.append(f"{name} in")
            if hold is not None:
                inside.set()
                hold.wait(5)
            order.append(f"{name} out")

    def writer() -> None:
        with lock.write():
            order.append("writer")

    r1 = threading.Thread(target=reader, args=("r1", release))
    r1.start()
    inside.wait(5)
    w = threading.Thread(target=writer)
    w.start()
    deadline = time.monotonic() + 5
    while lock._writers_waiting == 0 and time.monotonic() < deadline:  # the writer is queued
        time.sleep(0.001)
    r2 = threading.Thread(target=reader, args=("r2", None))
    r2.start()
    time.sleep(0.05)
    assert order == ["r1 in"] and lock.state == (1, False)  # neither the writer nor r2 got in
    release.set()
    for t in (r1, w, r2):
        t.join(5)
    assert order == ["r1 in", "r1 out", "writer", "r2 in", "r2 out"]
    assert lock.state == (0, False)


def test_searches_during_upserts_and_deletes_never_see_deleted_items():
    """Four search threads run while a writer replaces and deletes items (HNSW, with a rebuild on the way): no
    search fails, none returns an id deleted before it started, all return k while enough items are live."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx = FaissIndex(16, AnnConfig(threshold=1000, m=8, ef_construction=20, compact_fraction=0.2))
    idx.upsert([f"i{j}" for j in range(900)], x[:900], [{"title": str(j)} for j in range(900)])
    deleted: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                gone = set(deleted)  # deleted before this search started
                hits = idx.search(x[r.integers(0, 1500)], 10)
                assert len(hits) == 10
                assert not gone & {h for h, _ in hits}
        except BaseException as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(e)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for j in range(900, 1500):  # crosses the threshold (1000): the layout changes under the searches
        idx.upsert([f"i{j}"], x[j:j + 1], [{"title": str(j)}])
        if j % 2 == 0:
            victim = f"i{j - 900}"
            idx.delete(victim)
            deleted.add(victim)
        if j % 5 == 0:
            idx.upsert([f"i{j - 1}"], x[(j * 7) % 1500][None], [{"title": "replaced"}])
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors[0]
    assert idx.kind == "hnsw" and len(idx) == 1500 - 300


def test_api_searches_during_puts_and_deletes(tmp_path):
    """Similar-by-id from two threads while another PUTs and DELETEs: only 200s and 404s (the item asked for was
    just deleted), never a 5xx, and every result is an item that exists at the end or was deleted meanwhile."""
    embedder = FakeEmbedder()
    items = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    app = create_app(Settings(model_dir=tmp_path / "unused"), embedder=embedder, index=index)
    statuses: list[int] = []
    seen: set[str] = set()
    stop = threading.Event()
    with TestClient(app) as client:
        def reader() -> None:
            while not stop.is_set():
                for q in ("j1", "w0", "w3"):
                    r = client.get(f"/items/{q}/similar?k=3")
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        seen.update(it["id"] for it in r.json()["items"])

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for j in range(40):
            assert client.put(f"/items/w{j % 8}", json={"title": f"wool coat {j}"}).status_code in (200, 201)
            if j % 3 == 0:
                client.delete(f"/items/w{(j + 4) % 8}")
        stop.set()
        for t in threads:
            t.join(10)
    assert statuses and set(statuses) <= {200, 404}
    assert seen <= {it["id"] for it in items} | {f"w{j}" for j in range(8)}
