"""MilvusIndex beyond the shared protocol tests (tests/test_index.py runs those on both backends): the same top 10
as FaissIndex for the same vectors and filters, filter literals that need escaping, what Milvus cannot hold,
whole-catalog loads, and the short-lived reuse of search hits' JSON."""

from __future__ import annotations

import numpy as np
import pytest
from milvus_support import drop, fresh_collection, milvus_uri  # noqa: F401  (milvus_uri: a session fixture)

from itemtower.index import FaissIndex
from itemtower.index.milvus_expr import filter_expr
from itemtower.index.milvus_store import MilvusIndex
from itemtower.index.wal import UnstorableError

COLORS, CATS = ("Black", "White", "Red", "Blue", "Green"), ("coat", "jacket", "pants")


@pytest.fixture
def connect(milvus_uri):
    made = []

    def make(dim: int, **kw) -> MilvusIndex:
        made.append(MilvusIndex.connect(milvus_uri, dim, collection=fresh_collection(), **kw))
        return made[-1]

    yield make
    for idx in made:
        drop(idx)


def catalog(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = [{"title": f"item {i}", "std": {"color": [COLORS[rng.integers(5)]],
                                            "category": [CATS[i % 3]] + (["sale"] if i % 7 == 0 else [])}}
             for i in range(n)]
    return [f"id{i}" for i in range(n)], vecs, items


FILTERS = [None, {"color": "Red"}, {"color": "Blue", "category": "pants"}, {"category": "sale"}]


def _compare(milvus: MilvusIndex, ids, vecs, items):
    """FaissIndex's (exact at this size) top 10 and Milvus's, for 20 queries x FILTERS, one exclusion each."""
    faiss_idx = FaissIndex(vecs.shape[1])
    faiss_idx.upsert(ids, vecs, items)
    milvus.load_all(ids, vecs, items, batch=500)
    assert len(milvus) == len(ids)
    rng = np.random.default_rng(1)
    for q in rng.normal(size=(20, vecs.shape[1])).astype(np.float32):
        q /= np.linalg.norm(q)
        for filters in FILTERS:
            exclude = {ids[int(np.argmax(vecs @ q))]}
            want = faiss_idx.search(q, 10, filters=filters, exclude=exclude)
            assert len(want) == 10
            yield q, want, milvus.search(q, 10, filters=filters, exclude=exclude)


def test_same_top10_as_faiss(connect):
    """2,000 random unit vectors, 20 queries, with and without filters (one of them matching 1 item in 7) and an
    exclusion: Milvus with its exact FLAT index returns FaissIndex's top 10, the same ids in the same order with
    the same scores."""
    ids, vecs, items = catalog(2000, 32)
    pairs = list(_compare(connect(32, index_type="FLAT"), ids, vecs, items))
    assert len(pairs) == 80
    for _, want, got in pairs:
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-6)


def test_hnsw_top10_is_close_to_faiss(connect):
    """The same with Milvus's HNSW (the default; approximate): recall@10 against FAISS's exact top 10 >= 0.95
    over the 80 searches, and every returned score is the true inner product."""
    ids, vecs, items = catalog(2000, 32)
    found = total = 0
    for q, want, got in _compare(connect(32, index_type="HNSW", ef_search=64), ids, vecs, items):
        found += len({i for i, _ in got} & {i for i, _ in want})
        total += 10
        for i, score in got:
            assert score == pytest.approx(float(vecs[int(i[2:])] @ q), abs=1e-5)
    assert found / total >= 0.95, found / total


def test_filter_values_that_need_escaping(connect):
    """Quotes, backslashes, newlines and non-ASCII in std values and field names filter exactly."""
    idx = connect(4)
    odd = ['say "hi"', "back\\slash", "two\nlines", "it's", "색상"]
    idx.upsert([f"o{i}" for i in range(len(odd))], np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]],
               [{"std": {"odd field \"x\"": [v]}} for v in odd])
    for i, v in enumerate(odd):
        assert [h[0] for h in idx.search(np.ones(4), 10, filters={'odd field "x"': v})] == [f"o{i}"]
    assert idx.search(np.ones(4), 10, exclude={'x"] or id != ["'}) and filter_expr(None) == ""


def test_what_milvus_cannot_hold_is_refused(connect):
    """An item whose JSON passes Milvus's 65,535-byte field, or an over-long id, is an UnstorableError (the
    service's 422) naming the id, and nothing is written."""
    idx = connect(4)
    with pytest.raises(UnstorableError, match="'big': its item is longer than the 65535 bytes"):
        idx.upsert(["ok", "big"], np.eye(4, dtype=np.float32)[:2], [{}, {"title": "코" * 30000}])
    with pytest.raises(UnstorableError, match="its id is longer"):
        idx.upsert(["x" * 2000], np.eye(4, dtype=np.float32)[:1], [{}])
    with pytest.raises(UnstorableError, match="cannot be stored as JSON"):
        idx.upsert(["nan"], np.eye(4, dtype=np.float32)[:1], [{"price": float("nan")}])
    assert len(idx) == 0


def test_recreate_replaces_everything(connect):
    """`itemtower index` on Milvus: recreate + load_all leaves exactly the new catalog."""
    idx = connect(8)
    idx.upsert(["old"], np.eye(8, dtype=np.float32)[:1], [{"title": "old"}])
    ids, vecs, items = catalog(30, 8)
    idx.recreate()
    idx.load_all(ids, vecs, items, batch=7)
    assert len(idx) == 30 and "old" not in idx and sorted(idx.ids()) == sorted(ids)
    assert idx.get("id3")["std"]["category"] == ["coat"]


def test_search_hits_json_is_reused_briefly(milvus_uri, connect):
    """get_json after a search answers from the search's own rows for read_cache_seconds: a write by another
    process shows after that; this process's own writes show at once; get() always reads Milvus."""
    a = connect(4, read_cache_seconds=30.0)
    b = MilvusIndex.connect(milvus_uri, 4, collection=a.collection, read_cache_seconds=0)  # "another process"
    try:
        a.upsert(["x"], np.eye(4, dtype=np.float32)[:1], [{"title": "v1"}])
        assert a.search(np.eye(4)[0], 1)[0][0] == "x"
        b.upsert(["x"], np.eye(4, dtype=np.float32)[:1], [{"title": "v2"}])
        assert '"v1"' in a.get_json("x") and a.get("x")["title"] == "v2"  # the cached hit, and a fresh read
        assert '"v2"' in b.get_json("x")
        a.upsert(["x"], np.eye(4, dtype=np.float32)[:1], [{"title": "v3"}])
        assert '"v3"' in a.get_json("x")
    finally:
        b.close()


def test_a_collection_another_process_creates_meanwhile_is_used(milvus_uri, monkeypatch):
    """Two services started together on an empty store: both see no collection, one creates it, the other's
    create fails; that one uses the collection that now exists instead of failing to start."""
    import itemtower.index.milvus_connect as mc

    name = fresh_collection()
    first = MilvusIndex.connect(milvus_uri, 4, collection=name)  # the other process, done first
    real_open = mc.open_client

    def late_open(*args, **kwargs):
        client = real_open(*args, **kwargs)
        has = client.has_collection
        calls = []

        def has_collection(collection, *a, **kw):  # the first look happened before the other process created it
            calls.append(collection)
            return False if len(calls) == 1 else has(collection, *a, **kw)

        client.has_collection = has_collection
        return client

    monkeypatch.setattr(mc, "open_client", late_open)
    second = MilvusIndex.connect(milvus_uri, 4, collection=name)
    try:
        first.upsert(["a"], np.eye(4, dtype=np.float32)[:1], [{"title": "a"}])
        assert second.get("a")["title"] == "a" and len(second) == 1
    finally:
        second.close()
        drop(first)
