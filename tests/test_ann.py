"""FaissIndex's HNSW layout and tombstones: recall against exact search, deletes that never come back, filters that
still fill k, compaction at save, old (version 1) directories, and rebuilds that do not lose concurrent writes."""

from __future__ import annotations

import json
import threading
import time

import faiss
import numpy as np
import pytest

from itemtower.index import AnnConfig, FaissIndex

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 20 random centres: the structure real embeddings have (pure noise is HNSW's worst case)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    x = centres[rng.integers(0, 20, n)] + 0.6 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def items(n: int) -> list[dict]:
    return [{"id": f"i{j}", "title": f"item {j}", "std": {"colour": ["Red" if j % 10 == 0 else "Blue"]},
             "group": f"g{j // 3}"} for j in range(n)]


def build(n: int, threshold: int, seed: int = 0, ef: int = 64) -> tuple[FaissIndex, np.ndarray]:
    x = clustered(n, seed)
    idx = FaissIndex(DIM, AnnConfig(threshold=threshold, ef_search=ef, m=16, ef_construction=40))
    its = items(n)
    idx.upsert([it["id"] for it in its], x, its)
    return idx, x


@pytest.fixture(scope="module")
def pair():
    """The same 3,000 items in an HNSW index and an exact one."""
    hnsw, x = build(3000, threshold=0)
    flat, _ = build(3000, threshold=10**9)
    return hnsw, flat, x


def test_layout_follows_the_threshold(pair):
    """Above the threshold the index is HNSW; at or below it, exact flat."""
    hnsw, flat, _ = pair
    assert hnsw.kind == "hnsw" and flat.kind == "flat"
    small, _ = build(50, threshold=50)
    assert small.kind == "flat"
    small.upsert(["extra"], clustered(1, seed=9), [{"title": "x"}])
    assert small.kind == "hnsw"  # 51 > 50: rebuilt on the write that crossed it
    assert len(small.search(clustered(1, seed=9)[0], 5)) == 5


def test_hnsw_recall_at_10_against_exact(pair):
    """HNSW (efSearch 64) finds at least 98% of the exact top 10, over 100 seeded queries."""
    hnsw, flat, x = pair
    rng = np.random.default_rng(1)
    recalls = []
    for qi in rng.choice(len(x), 100, replace=False):
        exact = {i for i, _ in flat.search(x[qi], 10, exclude={f"i{qi}"})}
        approx = {i for i, _ in hnsw.search(x[qi], 10, exclude={f"i{qi}"})}
        recalls.append(len(exact & approx) / 10)
    assert np.mean(recalls) >= 0.98, np.mean(recalls)


def test_hnsw_rare_filter_still_returns_k_exact(pair):
    """A filter that 10% of items pass returns k of them with HNSW too, and the same ones exact search returns."""
    hnsw, flat, x = pair
    for qi in (0, 7, 1234):
        got = hnsw.search(x[qi], 20, filters={"colour": "Red"})
        want = flat.search(x[qi], 20, filters={"colour": "Red"})
        assert len(got) == 20
        assert all(int(i[1:]) % 10 == 0 for i, _ in got)
        assert len({i for i, _ in got} & {i for i, _ in want}) >= 19
    # more than there are: every one of the 300 red items, none twice
    assert len({i for i, _ in hnsw.search(x[0], 1000, filters={"colour": "Red"})}) == 300


@pytest.mark.parametrize("threshold", [0, 10**9], ids=["hnsw", "flat"])
def test_deleted_and_replaced_items_never_come_back(threshold):
    """A deleted item is never returned; a replaced one is returned once, with its new vector and item."""
    idx, x = build(500, threshold=threshold)
    assert idx.delete("i3")
    assert "i3" not in {i for i, _ in idx.search(x[3], 50)}
    assert idx.get("i3") is None and idx.vector("i3") is None
    idx.upsert(["i4"], x[100:101], [{"title": "now like 100"}])
    hits = idx.search(x[100], 50)
    assert [i for i, _ in hits].count("i4") == 1
    assert idx.get("i4")["title"] == "now like 100"
    np.testing.assert_allclose(idx.vector("i4"), x[100])
    assert idx.tombstones == 2 and len(idx) == 499


def test_save_compacts_flat_and_reload_keeps_deletes(tmp_path):
    """A flat index is saved without its tombstones; an HNSW one lists them, and both reload with the deletes."""
    flat, x = build(200, threshold=10**9)
    hnsw, _ = build(200, threshold=0)
    for idx, name in ((flat, "flat"), (hnsw, "hnsw")):
        idx.delete("i0")
        idx.upsert(["i1"], x[50:51], [{"title": "moved"}])
        idx.save(tmp_path / name)
        meta = json.loads((tmp_path / name / "ids.json").read_text())
        raw = faiss.read_index(str(tmp_path / name / "index.faiss"))
        back = FaissIndex.load(tmp_path / name)
        assert back.kind == name and len(back) == 199
        assert "i0" not in {i for i, _ in back.search(x[0], 20)}
        assert back.get("i1")["title"] == "moved"
        if name == "flat":
            assert raw.ntotal == 199 and meta["tombstones"] == [] and back.tombstones == 0
        else:
            assert raw.ntotal == 201 and len(meta["tombstones"]) == 2 and back.tombstones == 2
        back.upsert(["new"], x[7:8], [{"title": "new"}])  # internal ids go on past the tombstones
        assert back.search(x[7], 1)[0][0] in {"new", "i7"}


def test_version_1_directory_still_loads(tmp_path):
    """A directory written before tombstones (format version 1, no "tombstones" key) loads as it did."""
    idx, x = build(30, threshold=10**9)
    idx.save(tmp_path)
    meta = json.loads((tmp_path / "ids.json").read_text())
    meta["version"] = 1
    for key in ("tombstones", "kind"):
        meta.pop(key)
    (tmp_path / "ids.json").write_text(json.dumps(meta))
    back = FaissIndex.load(tmp_path)
    assert len(back) == 30 and back.search(x[5], 1)[0][0] == "i5"


def test_compaction_in_memory_past_the_tombstone_share():
    """Once tombstones pass compact_fraction of the stored vectors, a rebuild drops them; results stay right."""
    x = clustered(100)
    idx = FaissIndex(DIM, AnnConfig(threshold=10**9, compact_fraction=0.25))
    idx.upsert([f"i{j}" for j in range(100)], x, items(100))
    for j in range(30):
        idx.delete(f"i{j}")
    assert idx.tombstones < 30  # a rebuild ran when the 26th delete passed 25%
    assert len(idx) == 70
    assert idx.search(x[50], 1)[0][0] == "i50"


def test_rebuild_keeps_writes_made_while_it_runs():
    """Items written, replaced and deleted between the copy and the swap of a rebuild end up as written."""
    idx, x = build(2000, threshold=10**9)
    idx.ann = AnnConfig(threshold=0, m=16, ef_construction=40)  # the next rebuild makes HNSW
    stop = threading.Event()

    def writer():
        j, rng = 0, np.random.default_rng(1)
        while not stop.is_set():
            # each its own vector: copies of one (a long rebuild writes many) would tie, and a top 5 could miss it
            v = x[j % 2000: j % 2000 + 1] + 0.05 * rng.standard_normal((1, DIM)).astype(np.float32)
            idx.upsert([f"w{j}"], v / np.linalg.norm(v), [{"title": f"w{j}"}])
            if j % 3 == 0:
                idx.delete(f"i{j}")
            j += 1

    t = threading.Thread(target=writer)
    t.start()
    idx.rebuild()
    stop.set()
    t.join()
    assert idx.kind == "hnsw"
    for sid in list(idx.ids())[-20:]:
        v = idx.vector(sid)
        assert v is not None and sid in {i for i, _ in idx.search(v, 5)}
    assert "i0" not in idx and idx.vector("i0") is None


def test_configure_switches_a_loaded_flat_index_in_the_background(tmp_path):
    """An old flat directory past the threshold loads flat; configure(background_rebuilds=True) returns at once,
    searches keep working while the graph is built, and the index ends up HNSW with the same items."""
    flat, x = build(1500, threshold=10**9)
    flat.save(tmp_path)
    idx = FaissIndex.load(tmp_path)
    assert idx.kind == "flat"
    idx.configure(AnnConfig(threshold=1000, m=16, ef_construction=40), background_rebuilds=True)
    assert len(idx.search(x[3], 5)) == 5  # served (exactly, or by the new graph) while it builds
    deadline = time.monotonic() + 60
    while idx.kind != "hnsw" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert idx.kind == "hnsw" and len(idx) == 1500
    assert idx.search(x[3], 1)[0][0] == "i3"
