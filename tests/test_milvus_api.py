"""The service with the Milvus backend (ITEMTOWER_INDEX_BACKEND=milvus), against FakeEmbedder (tests/fakes.py).

The same requests go to an app over FaissIndex and to an app over MilvusIndex (a collection on milvus-lite's
server, tests/milvus_support.py) holding the same six items, and the answers must agree: the core routes (PUT,
GET and DELETE of items, batch PUT, similar, search, filters, recommend, variants, per_group, offset) behave the
same on both backends. Then what is Milvus's own: /info, opening the store from the settings, and the errors.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient
from milvus_support import drop, free_port, fresh_collection, milvus_uri  # noqa: F401  (milvus_uri: a fixture)

from fakes import FakeEmbedder, catalog
from itemtower.index import FaissIndex
from itemtower.index.milvus_store import MilvusIndex, MilvusUnavailable
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings

NEW = {"title": "blue denim jacket", "std": {"category": "01outer_02jacket", "color": "Blue", "gender": "both"},
       "re": {"color": ["blue"]}, "group": "g1", "sku": "X-1"}


def _filled(index, embedder):
    items = catalog()
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    return index


@pytest.fixture
def both(milvus_uri, tmp_path):
    """(faiss client, milvus client, the MilvusIndex): two apps over the same six items."""
    embedder = FakeEmbedder()
    mindex = _filled(MilvusIndex.connect(milvus_uri, embedder.dim, collection=fresh_collection()), embedder)
    fapp = create_app(Settings(model_dir=tmp_path / "unused"), embedder=embedder,
                      index=_filled(FaissIndex(embedder.dim), embedder))
    mapp = create_app(Settings(model_dir=tmp_path / "unused"), embedder=FakeEmbedder(), index=mindex)
    with TestClient(fapp) as fc, TestClient(mapp) as mc:
        yield fc, mc, mindex
    drop(mindex)


def ranked(resp) -> list[tuple[str, float]]:
    """(id, score) best first, ties in id order (the backends may order equal scores differently)."""
    assert resp.status_code == 200, resp.text
    return sorted(((it["id"], round(it["score"], 4)) for it in resp.json()["items"]), key=lambda t: (-t[1], t[0]))


def same(fc, mc, method: str, url: str, **kw) -> list[tuple[str, float]]:
    """Send one request to both apps; they must answer alike. Returns the ranking (or [] for non-lists)."""
    rf, rm = fc.request(method, url, **kw), mc.request(method, url, **kw)
    assert rf.status_code == rm.status_code, (url, rf.text, rm.text)
    body = rf.json() if rf.status_code in (200, 201) else {}
    if isinstance(body.get("items"), list) and all("score" in it for it in body["items"]):
        assert ranked(rf) == ranked(rm), url
        return ranked(rm)
    if rf.status_code in (200, 201):
        assert rf.json() == rm.json(), url
    return []


def test_similar_search_and_filters_agree(both):
    """similar (with filters, k, offset, per_group), search and recommend: the same answers on both backends."""
    fc, mc, _ = both
    for item_id in ("j1", "j3", "c1", "p1"):
        assert len(same(fc, mc, "GET", f"/items/{item_id}/similar", params={"k": 10})) == 5
    assert [i for i, _ in same(fc, mc, "GET", "/items/j1/similar", params={"color": "White"})] == ["j3"]
    assert {i for i, _ in same(fc, mc, "GET", "/items/j1/similar", params={"season": "summer"})} == {"p1", "t1"}
    assert same(fc, mc, "GET", "/items/j1/similar", params={"season": "summer", "color": "Red"})[0][0] == "t1"
    assert same(fc, mc, "GET", "/items/j1/similar", params={"color": "Blue", "gender": "female"}) == []
    same(fc, mc, "GET", "/items/j1/similar", params={"k": 2, "offset": 1})
    same(fc, mc, "GET", "/items/j1/similar", params={"per_group": 1, "k": 10})
    same(fc, mc, "GET", "/items/j1/similar", params={"colour": "Black"})  # a 422 on both
    same(fc, mc, "GET", "/items/nope/similar")  # a 404 on both
    assert same(fc, mc, "POST", "/search", json={"item": {"title": "black fleece"}, "k": 10})
    same(fc, mc, "POST", "/search", json={"item": {"title": "fleece jacket"}, "filters": {"gender": "female"}})
    assert same(fc, mc, "POST", "/recommend", json={"positive": ["j1", "t1"], "negative": ["c1"], "k": 10})
    same(fc, mc, "POST", "/recommend", json={"positive": ["j1"], "filters": {"season": "summer"}})
    same(fc, mc, "POST", "/recommend", json={"positive": ["j1", "nope"]})  # 404 naming it
    same(fc, mc, "GET", "/items/j1/variants")


def test_put_get_delete_agree(both):
    """PUT (new, then replace), batch PUT, GET and DELETE change both backends alike, and searches see it."""
    fc, mc, mindex = both
    for client in (fc, mc):
        r = client.put("/items/n1", json=NEW)
        assert r.status_code == 201 and r.json()["created"] is True
        assert client.put("/items/n1", json={**NEW, "title": "blue denim jacket v2"}).json()["created"] is False
    same(fc, mc, "GET", "/items/n1")
    assert mc.get("/items/n1").json()["title"] == "blue denim jacket v2"
    assert mindex.get("n1")["sku"] == "X-1" and mindex.group_ids("g1") == ["j1", "j2", "n1"]
    same(fc, mc, "GET", "/items/j1/similar", params={"k": 10})
    same(fc, mc, "GET", "/items/j1/variants")
    batch = {"items": [{"id": "b1", "title": "red wool coat"}, {"id": "b2", "title": "blue cotton pants"}]}
    same(fc, mc, "PUT", "/items", json=batch)
    same(fc, mc, "POST", "/search", json={"item": {"title": "wool coat"}, "k": 10})
    for client in (fc, mc):
        assert client.delete("/items/n1").status_code == 204
        assert client.delete("/items/n1").status_code == 404
        assert client.get("/items/n1").status_code == 404
        assert client.get("/health").json()["n_items"] == 8
    assert "n1" not in mindex and len(mindex) == 8
    same(fc, mc, "GET", "/items/j1/similar", params={"k": 10})


def test_info_names_the_backend(both):
    """/info's "index" says which backend holds the index and that Milvus, not a log, makes writes durable."""
    fc, mc, mindex = both
    assert fc.get("/info").json()["index"]["backend"] == "faiss"
    info = mc.get("/info").json()
    assert info["format"] == "fake"
    assert info["index"]["backend"] == "milvus" and info["index"]["collection"] == mindex.collection
    assert info["index"]["items"] == 6 and "write-ahead log" in info["index"]["durability"]


def test_the_app_opens_milvus_from_its_settings(milvus_uri, tmp_path):
    """ITEMTOWER_INDEX_BACKEND=milvus + ITEMTOWER_MILVUS_URI: the app's writes land in that collection, where
    another client reads them; the app closes its client at shutdown."""
    name = fresh_collection()
    settings = Settings(model_dir=tmp_path / "unused", index_backend="milvus", milvus_uri=milvus_uri,
                        milvus_collection=name, milvus_index_type="FLAT")
    with TestClient(create_app(settings, embedder=FakeEmbedder())) as client:
        assert client.put("/items/n1", json=NEW).status_code == 201
        assert client.get("/info").json()["index"]["index_type"] == "FLAT"
    other = MilvusIndex.connect(milvus_uri, 64, collection=name)
    try:
        assert other.get("n1")["title"] == NEW["title"]
        np.testing.assert_allclose(np.linalg.norm(other.vector("n1")), 1.0, rtol=1e-5)
    finally:
        drop(other)


def test_unreachable_milvus_names_the_uri(tmp_path):
    """Nothing at ITEMTOWER_MILVUS_URI: start-up stops with a message naming the URI and what to do."""
    uri = f"http://127.0.0.1:{free_port()}"
    settings = Settings(model_dir=tmp_path, index_backend="milvus", milvus_uri=uri)
    with pytest.raises(MilvusUnavailable, match=f"cannot connect to Milvus at {uri}.*ITEMTOWER_MILVUS_URI"):
        with TestClient(create_app(settings, embedder=FakeEmbedder())):
            pass


def test_wrong_dimension_is_refused(milvus_uri):
    """A collection built for another model (another dimension) is refused, saying how to rebuild it."""
    name = fresh_collection()
    first = MilvusIndex.connect(milvus_uri, 8, collection=name)
    try:
        with pytest.raises(ValueError, match="dimension 8; this model's have 64.*itemtower index"):
            MilvusIndex.connect(milvus_uri, 64, collection=name)
    finally:
        drop(first)


def test_a_milvus_lite_file_is_one_process(tmp_path):
    """A milvus-lite file open here cannot be opened by another process: the message says how to share it."""
    path = str(tmp_path / "index" / "milvus.db")
    index = MilvusIndex.connect(path, 8)
    code = ("from itemtower.index.milvus_store import MilvusIndex, MilvusUnavailable\n"
            f"try:\n    MilvusIndex.connect({path!r}, 8)\nexcept MilvusUnavailable as e:\n    print(e)\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    finally:
        index.close()
    assert f"the milvus-lite file {path} is open in another process" in out and "milvus-lite server" in out
    reopened = MilvusIndex.connect(path, 8)  # closed here: free again
    reopened.close()
