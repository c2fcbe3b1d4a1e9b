"""The VectorIndex protocol, for both backends (FaissIndex, and MilvusIndex on a milvus-lite server): inner
product over string ids, with filters, upsert/delete; and FaissIndex's save/load round trip.

One-hot (and near one-hot) vectors make every expected ranking checkable by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from milvus_support import drop, fresh_collection, milvus_uri  # noqa: F401  (milvus_uri: a session fixture)

from itemtower.index import FaissIndex, VectorIndex


def onehot(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def item(id: str, color: str = "Black", gender: str = "male", **extra) -> dict:
    return {"id": id, "title": f"item {id}", "std": {"color": [color], "gender": [gender]}, **extra}


@pytest.fixture(params=["faiss", "milvus"])
def new_index(request):
    """Makes empty indexes (dim -> index) of the backend under test; Milvus ones each in their own collection."""
    if request.param == "faiss":
        yield FaissIndex
        return
    from itemtower.index.milvus_store import MilvusIndex

    uri, made = request.getfixturevalue("milvus_uri"), []

    def make(dim: int) -> MilvusIndex:
        made.append(MilvusIndex.connect(uri, dim, collection=fresh_collection()))
        return made[-1]

    yield make
    for idx in made:
        drop(idx)


faiss_only = pytest.mark.parametrize("new_index", ["faiss"], indirect=True)  # FaissIndex's on-disk format


@pytest.fixture
def index(new_index):
    # a..d lie along dims 0..3; the query below (dims 0..3 decreasing) ranks them a > b > c > d.
    idx = new_index(8)
    idx.upsert(
        ["a", "b", "c", "d"],
        np.stack([onehot(0), onehot(1), onehot(2), onehot(3)]),
        [item("a"), item("b", color="White"), item("c", gender="female"), item("d", color="White", gender="female")],
    )
    return idx


def query() -> np.ndarray:
    q = np.zeros(8, dtype=np.float32)
    q[:4] = [0.8, 0.6, 0.4, 0.2]
    return q


def test_protocol(new_index):
    """Both backends satisfy the VectorIndex protocol the service relies on."""
    assert isinstance(new_index(4), VectorIndex)


def test_search_ranks_by_inner_product(index):
    """Results come best first, with inner-product scores."""
    hits = index.search(query(), k=3)
    assert [h[0] for h in hits] == ["a", "b", "c"]
    assert [round(h[1], 5) for h in hits] == [0.8, 0.6, 0.4]


def test_k_larger_than_index(index):
    """Asking for more than there is returns everything, no padding."""
    assert [h[0] for h in index.search(query(), k=50)] == ["a", "b", "c", "d"]


def test_empty_index_and_k_zero(new_index):
    """An empty index and k=0 return nothing rather than failing."""
    idx = new_index(8)
    assert idx.search(query(), k=5) == []
    idx.upsert(["a"], onehot(0)[None], [item("a")])
    assert idx.search(query(), k=0) == []


def test_get_vector_len_ids(index):
    """get/vector/len/ids reflect what was upserted; unknown ids give None."""
    assert len(index) == 4
    assert list(index.ids()) == ["a", "b", "c", "d"]
    assert index.get("b")["std"]["color"] == ["White"]
    np.testing.assert_array_equal(index.vector("c"), onehot(2))
    assert index.get("zzz") is None and index.vector("zzz") is None


def test_get_returns_a_copy(index):
    """Mutating what get() returned does not change the index."""
    index.get("a")["title"] = "changed"
    assert index.get("a")["title"] == "item a"


def test_upsert_replaces(index):
    """Upserting an existing id replaces its vector and item, without a duplicate."""
    index.upsert(["d"], onehot(0)[None] * 2, [item("d", color="Red")])
    assert len(index) == 4
    hits = index.search(query(), k=2)
    assert hits[0][0] == "d" and hits[0][1] == pytest.approx(1.6)
    assert index.get("d")["std"]["color"] == ["Red"]
    assert [h[0] for h in index.search(query(), k=10)].count("d") == 1


def test_upsert_sets_the_id_and_validates(index):
    """The stored item carries the id it was upserted under; shape, count and duplicate errors are refused."""
    index.upsert(["x"], onehot(5)[None], [{"title": "no id"}])
    assert index.get("x")["id"] == "x"
    with pytest.raises(ValueError, match="shape"):
        index.upsert(["y"], np.ones((1, 3), np.float32), [{}])
    with pytest.raises(ValueError, match="must match"):
        index.upsert(["y", "z"], np.ones((1, 8), np.float32), [{}])
    with pytest.raises(ValueError, match="duplicate"):
        index.upsert(["y", "y"], np.ones((2, 8), np.float32), [{}, {}])
    with pytest.raises(ValueError, match="NaN"):
        index.upsert(["y"], np.full((1, 8), np.nan, np.float32), [{}])
    assert "y" not in index


def test_delete(index):
    """Deleting removes the item from search, get and len; an unknown id returns False."""
    assert index.delete("a") is True
    assert index.delete("a") is False
    assert len(index) == 3 and index.get("a") is None
    assert [h[0] for h in index.search(query(), k=10)] == ["b", "c", "d"]


def test_exclude(index):
    """Excluded ids never appear, and k is still filled from the rest."""
    assert [h[0] for h in index.search(query(), k=2, exclude={"a"})] == ["b", "c"]


def test_filters(index):
    """A filter keeps items whose std field list holds the value; several filters combine with AND."""
    assert [h[0] for h in index.search(query(), k=10, filters={"color": "White"})] == ["b", "d"]
    assert [h[0] for h in index.search(query(), k=10, filters={"color": "White", "gender": "female"})] == ["d"]
    assert index.search(query(), k=10, filters={"color": "Purple"}) == []
    assert index.search(query(), k=10, filters={"no_such_field": "x"}) == []


def test_filter_on_multi_valued_field(new_index):
    """A multi-valued std field matches any of its values."""
    idx = new_index(8)
    idx.upsert(["m"], onehot(0)[None], [{"std": {"fiber": ["Cotton", "Polyester"]}}])
    assert idx.search(onehot(0), k=1, filters={"fiber": "Polyester"})[0][0] == "m"


def test_rare_filter_is_exact(new_index):
    """A filter that matches 2 of 5,000 items, both ranked last, still returns exactly those two."""
    rng = np.random.default_rng(0)
    n, dim = 5000, 16
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    q = vecs[0]
    order = np.argsort(-(vecs @ q))  # best first
    rare = {int(order[-1]), int(order[-2])}
    items = [item(str(i), color="Purple" if i in rare else "Black") for i in range(n)]
    idx = new_index(dim)
    idx.upsert([str(i) for i in range(n)], vecs, items)
    hits = idx.search(q, k=10, filters={"color": "Purple"})
    assert [h[0] for h in hits] == [str(order[-2]), str(order[-1])]
    # and the unfiltered top 10 is the brute-force top 10
    assert [h[0] for h in idx.search(q, k=10)] == [str(i) for i in order[:10]]


@faiss_only
def test_save_load_round_trip(index, tmp_path):
    """A saved index loads back with the same ids, items, vectors and search results, and keeps accepting upserts."""
    index.delete("b")  # a gap in the internal ids must survive the round trip
    index.upsert(["e"], onehot(4)[None], [item("e", extra_key={"kept": "verbatim"}, title="코트")])
    index.save(tmp_path / "ix")
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == ["ids.json", "index.faiss", "items.jsonl"]
    loaded = FaissIndex.load(tmp_path / "ix")
    assert list(loaded.ids()) == list(index.ids())
    assert loaded.get("e") == index.get("e") and loaded.get("e")["title"] == "코트"
    np.testing.assert_array_equal(loaded.vector("e"), onehot(4))
    assert loaded.search(query(), k=10) == index.search(query(), k=10)
    loaded.upsert(["f"], onehot(6)[None], [item("f")])
    assert len(loaded) == len(index) + 1 and loaded.vector("a") is not None


@faiss_only
def test_save_overwrites_previous_save(index, tmp_path):
    """Saving twice into one directory leaves the latest state and no temporary files."""
    index.save(tmp_path)
    index.delete("a")
    index.save(tmp_path)
    assert len(FaissIndex.load(tmp_path)) == 3
    assert not list(tmp_path.glob("*.tmp"))


@faiss_only
def test_load_missing_dir_and_file(index, tmp_path):
    """A missing directory or file is a FileNotFoundError naming it."""
    with pytest.raises(FileNotFoundError, match="no index directory"):
        FaissIndex.load(tmp_path / "nope")
    index.save(tmp_path)
    (tmp_path / "items.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="items.jsonl"):
        FaissIndex.load(tmp_path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("index.faiss", b"garbage", "index.faiss: not a readable FAISS index"),
        ("ids.json", b"{not json", "ids.json: not valid JSON"),
        ("ids.json", b'{"format": "other"}', "ids.json: not an itemtower index"),
        ("items.jsonl", b'{"id": "a"}\n[1, 2\n', "items.jsonl: line 2: not valid JSON"),
    ],
)
@faiss_only
def test_load_broken_file(index, tmp_path, name, content, message):
    """A broken file is a ValueError naming the file (and the line, for items.jsonl)."""
    index.save(tmp_path)
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        FaissIndex.load(tmp_path)


@faiss_only
def test_load_inconsistent_files(index, tmp_path):
    """Files from two different saves are detected, not silently mixed."""
    index.save(tmp_path / "one")
    index.delete("a")
    index.save(tmp_path / "two")
    (tmp_path / "two" / "ids.json").write_bytes((tmp_path / "one" / "ids.json").read_bytes())
    with pytest.raises(ValueError, match="different saves"):
        FaissIndex.load(tmp_path / "two")
    meta = json.loads((tmp_path / "one" / "ids.json").read_text())
    meta["ids"] = ["x", "b", "c", "d"]
    (tmp_path / "one" / "ids.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="item 1 has id 'a'"):
        FaissIndex.load(tmp_path / "one")
