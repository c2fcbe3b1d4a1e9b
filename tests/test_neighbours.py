"""Kept similar-by-id lists (serve/neighbours.py): a list served is always what a fresh search returns now."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fakes import FakeEmbedder, catalog
from itemtower.index import FaissIndex
from itemtower.serve.app import create_app
from itemtower.serve.neighbours import NeighbourCache
from itemtower.serve.settings import Settings

DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def random_index(rng: np.random.Generator, n: int) -> FaissIndex:
    index = FaissIndex(DIM)
    ids = [f"i{j}" for j in range(n)]
    index.upsert(ids, unit(rng, n), [{"id": i} for i in ids])
    return index


def fresh(index: FaissIndex, item_id: str, k: int, offset: int) -> list[tuple[str, float]]:
    return index.search(index.vector(item_id), offset + k, exclude={item_id})[offset:]


def assert_same(got, want) -> None:
    assert [h for h, _ in got] == [h for h, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)


def test_filled_lists_answer_like_a_search():
    rng = np.random.default_rng(0)
    index = random_index(rng, 200)
    cache = NeighbourCache(depth=12)
    cache.fill_in_background(index).join(timeout=30)
    assert len(cache) == 200 and cache.filled == 200
    for item_id in rng.choice(list(index.ids()), 40):
        k, offset = int(rng.integers(1, 8)), int(rng.integers(0, 5))
        assert_same(cache.lookup(item_id, k, offset), fresh(index, item_id, k, offset))
    assert cache.lookup("i0", 10, 5) is None  # deeper than the lists: the route searches instead
    assert cache.hits == 40 and cache.misses == 1  # the too-deep one


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_random_writes_a_served_list_is_never_stale(seed):
    """Upserts of new items, replacements and deletes, noted as serve/writes.py does, with a reach that covers
    the index (so the push into other lists is exact): every list served equals a fresh search, and most
    lists survive the writes."""
    rng = np.random.default_rng(seed)
    index = random_index(rng, 150)
    cache = NeighbourCache(depth=10, reach=1000)
    cache.fill_in_background(index).join(timeout=30)
    served = 0
    for step in range(120):
        op = rng.random()
        live = list(index.ids())
        if op < 0.4:  # a new item
            new_id = f"n{step}"
            vec = unit(rng, 1)
            index.upsert([new_id], vec, [{"id": new_id}])
            cache.note(index, [new_id], vec)
        elif op < 0.7:  # a replaced vector
            old = str(rng.choice(live))
            vec = unit(rng, 1)
            index.upsert([old], vec, [{"id": old}])
            cache.note(index, [old], vec)
        else:
            gone = str(rng.choice(live))
            index.delete(gone)
            cache.note(index, [gone], None)
        for item_id in rng.choice(list(index.ids()), 5):
            got = cache.lookup(str(item_id), 5, 0)
            if got is None:
                cache.compute(index, str(item_id))
                continue
            served += 1
            assert_same(got, fresh(index, str(item_id), 5, 0))
    assert served > 300  # of 600 reads: writes keep lists current instead of voiding them


def test_the_push_into_other_lists_recalls_what_a_search_finds():
    """With a reach smaller than the index (the default, 3 x depth), a new item reaches the lists of the items
    among its own top `reach`: measured against fresh exact searches after 300 new items."""
    rng = np.random.default_rng(8)
    dim = 48
    base = rng.standard_normal((3000, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = FaissIndex(dim)
    index.upsert([f"i{j}" for j in range(3000)], base, [{"id": f"i{j}"} for j in range(3000)])
    cache = NeighbourCache(depth=10)
    cache.fill_in_background(index).join(timeout=60)
    for j in range(300):
        vec = rng.standard_normal((1, dim)).astype(np.float32)
        vec /= np.linalg.norm(vec)
        index.upsert([f"n{j}"], vec, [{"id": f"n{j}"}])
        cache.note(index, [f"n{j}"], vec)
    found = total = 0
    for item_id in [f"i{j}" for j in range(0, 3000, 5)]:
        want = {h for h, _ in fresh(index, item_id, 10, 0)}
        got = {h for h, _ in cache.lookup(item_id, 10)}
        found += len(want & got)
        total += len(want)
    assert found / total >= 0.99, found / total


def test_a_list_computed_while_an_item_is_written_takes_the_write_in():
    """The write lands between the list's search and its keeping: the kept list is replayed against it."""
    rng = np.random.default_rng(4)
    index = random_index(rng, 50)
    cache = NeighbourCache(depth=5)
    near = index.vector("i0") + 0.01 * unit(rng, 1)[0]
    near = (near / np.linalg.norm(near)).reshape(1, DIM)

    class WriteDuringSearch:
        """The index, except that the first search also writes an item next to i0, after searching."""

        def __init__(self) -> None:
            self.written = False

        def __getattr__(self, name):
            return getattr(index, name)

        def search(self, *args, **kwargs):
            hits = index.search(*args, **kwargs)
            if not self.written:
                self.written = True
                index.upsert(["close"], near, [{"id": "close"}])
                cache.note(index, ["close"], near)
            return hits

    cache.compute(WriteDuringSearch(), "i0")
    got = cache.lookup("i0", 3)
    assert got is not None and got[0][0] == "close"
    assert_same(got, fresh(index, "i0", 3, 0))


def test_deleted_neighbours_are_skipped_and_a_short_list_is_recomputed():
    rng = np.random.default_rng(9)
    index = random_index(rng, 60)
    cache = NeighbourCache(depth=6)
    first = [h for h, _ in cache.compute(index, "i0")]
    index.delete(first[0])
    cache.note(index, [first[0]], None)
    assert_same(cache.lookup("i0", 5), fresh(index, "i0", 5, 0))  # 5 live entries of 6 are still exact
    index.delete(first[1])
    cache.note(index, [first[1]], None)
    assert cache.lookup("i0", 5) is None  # 4 live entries cannot answer k = 5: search again
    assert cache.lookup("i0", 4) is not None


def test_lists_stay_right_while_writers_and_readers_race():
    rng = np.random.default_rng(5)
    index = random_index(rng, 300)
    cache = NeighbourCache(depth=8, reach=1000)
    cache.fill_in_background(index)
    stop = threading.Event()

    def write() -> None:
        wrng = np.random.default_rng(6)
        for j in range(150):
            vec = unit(wrng, 1)
            item_id = f"w{j}" if j % 3 else f"i{j}"  # new items, and replacements of stored ones
            index.upsert([item_id], vec, [{"id": item_id}])
            cache.note(index, [item_id], vec)
        stop.set()

    def read() -> None:
        rrng = np.random.default_rng(7)
        while not stop.is_set():
            item_id = f"i{int(rrng.integers(0, 300))}"
            if cache.lookup(item_id, 5) is None:
                cache.compute(index, item_id)

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    checked = 0
    for item_id in list(index.ids()):
        got = cache.lookup(item_id, 5)
        if got is not None:
            checked += 1
            assert_same(got, fresh(index, item_id, 5, 0))
    assert checked >= 10  # lists made during the race that no later write voided (timing decides how many)
    for item_id in list(index.ids()):  # and once quiet, a recomputed list is served and right
        cache.compute(index, item_id)
        assert_same(cache.lookup(item_id, 5), fresh(index, item_id, 5, 0))


def make_app(tmp_path: Path, depth: int) -> TestClient:
    embedder = FakeEmbedder()
    items = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    return TestClient(create_app(Settings(model_dir=tmp_path / "unused", neighbour_depth=depth),
                                 embedder=embedder, index=index))


def test_the_route_with_lists_answers_as_without(tmp_path):
    """The same requests, writes in between, against a service with the lists and one without: same bodies."""
    new = {"title": "blue denim jacket", "std": {"category": "01outer_02jacket", "color": "Blue",
                                                  "gender": "both"}}
    with make_app(tmp_path / "a", 30) as listed, make_app(tmp_path / "b", 0) as searched:
        ids = [it["id"] for it in catalog()]

        def same(path: str) -> None:
            """Same status and scores, the same items except among equal scores at the cut (the fake embedder
            makes ties, and FAISS orders ties by k)."""
            a, b = listed.get(path), searched.get(path)
            assert a.status_code == b.status_code, path
            if a.status_code != 200:
                assert a.json() == b.json(), path
                return
            ha, hb = a.json()["items"], b.json()["items"]
            assert [round(h["score"], 5) for h in ha] == [round(h["score"], 5) for h in hb], path
            cut = round(ha[-1]["score"], 5) if ha else 0
            above = [{h["id"] for h in hs if round(h["score"], 5) > cut} for hs in (ha, hb)]
            assert above[0] == above[1], path
            assert {h["id"]: h for h in ha}.keys() <= {h["id"] for h in catalog()} | {"new1"}

        for item_id in ids:
            same(f"/items/{item_id}/similar?k=3")
        for c in (listed, searched):
            assert c.put("/items/new1", json=new).status_code == 201
            assert c.delete(f"/items/{ids[0]}").status_code == 204
        for item_id in ids[1:]:
            same(f"/items/{item_id}/similar?k=4")
            same(f"/items/{item_id}/similar?k=2&offset=1")
        same(f"/items/{ids[0]}/similar")  # deleted: a 404 from both
        same("/items/new1/similar?k=5")
        assert "new1" in {h["id"] for h in listed.get(f"/items/{ids[1]}/similar?k=10").json()["items"]}
        health = listed.get("/health").json()["neighbours"]
        assert health["depth"] == 30 and health["hit_rate"] is not None
        assert searched.get("/health").json()["neighbours"] is None
