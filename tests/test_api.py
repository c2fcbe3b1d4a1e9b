"""The HTTP service, route by route, against FakeEmbedder (tests/fakes.py): no model, no torch."""

from __future__ import annotations

import logging
import runpy
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fakes import SMALL_SCHEMA, FakeEmbedder, _bucket, catalog
from itemtower.index import FaissIndex
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings

NEW_ITEM = {
    "title": "blue denim jacket",
    "std": {"category": "01outer_02jacket", "color": "Blue", "gender": "both"},
    "re": {"color": ["blue"]},
    "sku": "X-1",
}


def filled_index(embedder: FakeEmbedder) -> FaissIndex:
    items = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    return index


def make_client(tmp_path: Path, **settings) -> tuple[TestClient, FakeEmbedder, FaissIndex]:
    embedder = FakeEmbedder()
    index = filled_index(embedder)
    app = create_app(Settings(model_dir=tmp_path / "unused", **settings), embedder=embedder, index=index)
    return TestClient(app), embedder, index


@pytest.fixture
def client(tmp_path):
    c, _, _ = make_client(tmp_path)
    with c:
        yield c


@pytest.fixture
def parts(tmp_path):
    c, embedder, index = make_client(tmp_path)
    with c:
        yield c, embedder, index


def ids(resp) -> list[str]:
    return [it["id"] for it in resp.json()["items"]]


# ---------------------------------------------------------------------------------------------------- service


def test_health(client):
    """With a model and an index, /health is ok and counts the items."""
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    lists = body.pop("neighbours")  # the similar-by-id lists; the filler may still be running
    assert body == {"status": "ok", "model_loaded": True, "n_items": 6, "message": None, "warnings": []}
    assert lists["depth"] == 30 and 0 <= lists["items"] <= 6


def test_info_is_the_manifest(client):
    """/info returns the embedder's manifest."""
    assert client.get("/info").json()["format"] == "fake"


def test_metrics_count_requests_per_route(client):
    """/metrics reports counts and latencies labelled by route template, not by raw path, and the index size."""
    client.get("/items/j1/similar")
    client.get("/items/j2/similar")
    client.get("/items/nope")
    text = client.get("/metrics").text
    assert 'itemtower_requests_total{method="GET",route="/items/{item_id}/similar",status="200"} 2.0' in text
    assert 'itemtower_requests_total{method="GET",route="/items/{item_id}",status="404"} 1.0' in text
    assert 'itemtower_request_duration_seconds_count{method="GET",route="/items/{item_id}/similar"} 2.0' in text
    assert "itemtower_index_items 6.0" in text
    assert "/items/j1" not in text


def test_two_apps_in_one_process_keep_separate_metrics(tmp_path):
    """Each app has its own registry: building a second app neither fails nor shares counts."""
    a, _, _ = make_client(tmp_path)
    b, _, _ = make_client(tmp_path)
    with a, b:
        a.get("/health")
        assert 'route="/health"' not in b.get("/metrics").text


def test_openapi_and_docs(client):
    """Swagger renders, and the request models carry examples."""
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ("/health", "/info", "/embed", "/search", "/items/{item_id}", "/items/{item_id}/similar", "/metrics"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert schemas["EmbedRequest"]["examples"][0]["items"][0]["title"]
    assert schemas["SearchRequest"]["examples"][0]["filters"] == {"gender": "male"}
    assert schemas["ItemIn"]["examples"]
    put = spec["paths"]["/items/{item_id}"]["put"]
    assert {"200", "201", "401", "422"} <= set(put["responses"])


# ---------------------------------------------------------------------------------------------------- /embed


def test_embed_returns_one_unit_vector_per_item_in_order(parts):
    """Vectors come back in request order, L2-normalised, computed from normalized items."""
    client, embedder, _ = parts
    embedder.calls.clear()  # the fixture's index build was a call too
    body = {"items": [{"title": "black fleece jacket"}, {"std": {"color": "Red"}}, NEW_ITEM]}
    r = client.post("/embed", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["dim"] == 64 and len(data["embeddings"]) == 3 and data["warnings"] == []
    vecs = np.array(data["embeddings"], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    # Worked out by hand from the fake's rule (one bucket per title word / std value, then L2): the route must
    # hand the model the normalized items, in order, and return its rows unchanged.
    def bag(tokens):
        v = np.zeros(64, np.float32)
        for t in tokens:
            v[_bucket(t, 64)] += 1.0
        return v / np.linalg.norm(v)

    expected = np.stack([
        bag(["black", "fleece", "jacket"]),
        bag(["color=Red"]),
        bag(["blue", "denim", "jacket", "category=01outer_02jacket", "color=Blue", "gender=both"]),
    ])
    np.testing.assert_allclose(vecs, expected, rtol=1e-5)
    assert embedder.calls[0][1] == {"std": {"color": ["Red"]}}  # a single std value arrives as a list


def test_embed_unknown_value_is_a_warning(client):
    """An unknown std value is embedded (as UNK in a real model) and reported in warnings with its item index."""
    r = client.post("/embed", json={"items": [{"title": "a"}, {"title": "b", "std": {"color": "Blak"}}]})
    assert r.status_code == 200
    [w] = r.json()["warnings"]
    assert w["item"] == 1 and w["field"] == "std.color" and w["value"] == "Blak" and "allowed" in w["message"]


def test_embed_wrong_type_names_item_and_field(client):
    """A std value that is neither a string nor a list of strings is a 422 naming the item index and the field."""
    r = client.post("/embed", json={"items": [{"title": "ok"}, {"title": "x", "std": {"color": 5}}]})
    assert r.status_code == 422
    body = r.json()
    assert "item 1" in body["detail"] and "std.color" in body["detail"]
    [e] = body["errors"]
    assert e["item"] == 1 and e["field"] == "std.color" and e["value"] == 5
    assert "expected str or list[str]" in e["message"]


def test_embed_schema_error_from_check_item(client):
    """Errors found by catalog.check_item (an empty string value) are 422s too, in the same shape."""
    r = client.post("/embed", json={"items": [{"title": "x", "std": {"color": ["Black", " "]}}]})
    assert r.status_code == 422
    assert r.json()["errors"][0] == {"item": 0, "field": "std.color", "value": ["Black", " "],
                                     "message": "empty string value", "severity": "error"}


def test_embed_batch_limit(tmp_path):
    """More items than max_batch is a 422 (the schema's maxItems; 413 is the body-bytes limit) that says how many
    are allowed."""
    c, _, _ = make_client(tmp_path, max_batch=2)
    with c:
        r = c.post("/embed", json={"items": [{"title": "a"}] * 3})
    assert r.status_code == 422 and "at most 2 items" in r.json()["detail"]
    assert r.json()["errors"][0]["field"] == "items"


def test_body_size_limit(tmp_path):
    """A body over max_body_bytes is refused with a 413 and a message, before it is parsed."""
    c, _, _ = make_client(tmp_path, max_body_bytes=2048)
    with c:
        r = c.post("/embed", json={"items": [{"title": "x" * 4000}]})
    assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]


def test_embed_empty_list(client):
    """An empty batch gives an empty answer, not an error."""
    assert client.post("/embed", json={"items": []}).json() == {"dim": 64, "embeddings": [], "warnings": []}


def test_malformed_json(client):
    """A body that is not JSON is a 422 that says so."""
    r = client.post("/embed", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]


# ---------------------------------------------------------------------------------------------------- /items


def test_get_item(client):
    """A stored item comes back normalized, extra keys included."""
    r = client.get("/items/j3")
    assert r.status_code == 200
    assert r.json()["price"] == 59000 and r.json()["std"]["color"] == ["White"]


def test_get_unknown_item(client):
    """An unknown id is a 404 naming it."""
    r = client.get("/items/nope")
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]


def test_similar(client):
    """The nearest items come first, the item itself is left out, k is honoured."""
    r = client.get("/items/j1/similar", params={"k": 2})
    assert r.status_code == 200
    assert ids(r) == ["j2", "j3"]
    top = r.json()["items"][0]
    assert top["title"] == "black fleece jacket zip" and 0 < top["score"] <= 1 and top["group"] == "g1"


def test_similar_with_filters(client):
    """Query parameters other than k filter on std fields; several filters must all hold."""
    assert ids(client.get("/items/j1/similar", params={"color": "White"})) == ["j3"]
    assert set(ids(client.get("/items/j1/similar", params={"season": "summer"}))) == {"p1", "t1"}
    assert ids(client.get("/items/j1/similar", params={"season": "summer", "color": "Red"})) == ["t1"]
    assert ids(client.get("/items/j1/similar", params={"color": "Purple"})) == []


def test_similar_unknown_filter_field(client):
    """A filter on a field the schema does not have is a 422 naming the field."""
    r = client.get("/items/j1/similar", params={"colour": "Black"})
    assert r.status_code == 422
    assert "'colour'" in r.json()["detail"] and "unknown std field" in r.json()["detail"]


def test_similar_filter_given_twice(client):
    """One value per filter field; a repeated field is a 422."""
    r = client.get("/items/j1/similar?color=Black&color=White")
    assert r.status_code == 422 and "given twice" in r.json()["detail"]


@pytest.mark.parametrize("k", [0, 101, -3])
def test_similar_k_out_of_range(client, k):
    """k must be between 1 and max_k (100)."""
    r = client.get("/items/j1/similar", params={"k": k})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "k"


def test_similar_k_not_a_number(client):
    """A k that is not an integer is a 422 naming k."""
    r = client.get("/items/j1/similar", params={"k": "ten"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "k"


def test_similar_unknown_id(client):
    """Similar items of an unknown id is a 404."""
    assert client.get("/items/nope/similar").status_code == 404


def test_put_new_item_then_replace(parts):
    """PUT adds (201) and the item is searchable at once; a second PUT replaces it (200)."""
    client, embedder, index = parts
    r = client.put("/items/n1", json=NEW_ITEM)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["item"]["id"] == "n1" and body["item"]["sku"] == "X-1"
    assert body["item"]["std"]["color"] == ["Blue"]
    assert "n1" in ids(client.get("/items/j1/similar", params={"k": 10}))
    np.testing.assert_allclose(index.vector("n1"), embedder.embed([index.get("n1")])[0], rtol=1e-5)

    r = client.put("/items/n1", json={**NEW_ITEM, "title": "blue denim jacket v2"})
    assert r.status_code == 200 and r.json()["created"] is False
    assert client.get("/items/n1").json()["title"] == "blue denim jacket v2"
    assert client.get("/health").json()["n_items"] == 7


def test_ids_with_slashes_are_addressable(client):
    """A catalog id like "men/tshirts/123" works on every /items route (PUT, GET, similar, explain, DELETE)."""
    r = client.put("/items/men/tshirts/123", json=NEW_ITEM)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "men/tshirts/123"
    assert client.get("/items/men/tshirts/123").json()["title"] == NEW_ITEM["title"]
    r = client.get("/items/men/tshirts/123/similar", params={"k": 3})
    assert r.status_code == 200 and "men/tshirts/123" not in ids(r) and len(ids(r)) == 3
    assert "men/tshirts/123" in ids(client.get("/items/j1/similar", params={"k": 10}))
    assert client.get("/items/men/tshirts/123/explain").status_code == 501  # found; the fake model has no attention
    assert client.delete("/items/men/tshirts/123").status_code == 204
    assert client.get("/items/men/tshirts/123/similar").status_code == 404


def test_put_accepts_a_bare_re_phrase_like_the_catalog(client):
    """re values may be one phrase or a list, as in a catalog file; the stored item holds a list."""
    r = client.put("/items/n3", json={"title": "a linen shirt", "re": {"color": "light blue"}})
    assert r.status_code == 201, r.text
    assert client.get("/items/n3").json()["re"]["color"] == ["light blue"]


def test_put_with_unknown_value_warns(client):
    """An unknown std value does not block a PUT; it comes back as a warning."""
    r = client.put("/items/n2", json={"title": "a coat", "std": {"color": "Teal"}})
    assert r.status_code == 201 and r.json()["warnings"][0]["field"] == "std.color"


def test_put_empty_title(client):
    """A PUT needs a full item: an empty title is a 422 naming the title field."""
    r = client.put("/items/n1", json={**NEW_ITEM, "title": "  "})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "title" and "title" in r.json()["detail"]
    assert client.get("/items/n1").status_code == 404


def test_put_missing_title(client):
    """A PUT without a title is a 422 naming the title field."""
    r = client.put("/items/n1", json={"std": {"color": "Black"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "title"


def test_put_wrong_std_type(client):
    """std that is not an object is a 422 naming std."""
    r = client.put("/items/n1", json={"title": "x", "std": ["Black"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "std"


def test_put_id_mismatch(client):
    """An id in the body that differs from the path is refused, not silently overridden."""
    r = client.put("/items/n1", json={**NEW_ITEM, "id": "other"})
    assert r.status_code == 422 and "'other'" in r.json()["detail"]


def test_delete(client):
    """DELETE removes the item (204); afterwards, and for an unknown id, it is a 404."""
    assert client.delete("/items/j2").status_code == 204
    assert client.get("/items/j2").status_code == 404
    assert "j2" not in ids(client.get("/items/j1/similar"))
    assert client.delete("/items/j2").status_code == 404


def test_api_key_required_for_writes(tmp_path):
    """With an API key set, PUT and DELETE need X-API-Key (401 without, 403 wrong); reads do not."""
    c, _, _ = make_client(tmp_path, api_key="s3cret")
    with c:
        assert c.put("/items/n1", json=NEW_ITEM).status_code == 401
        assert c.put("/items/n1", json=NEW_ITEM, headers={"X-API-Key": "wrong"}).status_code == 403
        assert c.delete("/items/j1").status_code == 401
        assert c.put("/items/n1", json=NEW_ITEM, headers={"X-API-Key": "s3cret"}).status_code == 201
        assert c.delete("/items/j1", headers={"X-API-Key": "s3cret"}).status_code == 204
        assert c.get("/items/n1").status_code == 200
        assert c.post("/search", json={"item": {"title": "jacket"}}).status_code == 200
        r = c.put("/items/n2", json=NEW_ITEM)
    assert "X-API-Key" in r.json()["detail"]


# ---------------------------------------------------------------------------------------------------- /search


def test_search_by_partial_item(client):
    """A title-only item finds the items that share its words."""
    r = client.post("/search", json={"item": {"title": "black fleece"}, "k": 3})
    assert r.status_code == 200
    assert ids(r)[:2] in (["j1", "j2"], ["j2", "j1"])


def test_search_with_filters(client):
    """Filters apply to /search as to /similar."""
    r = client.post("/search", json={"item": {"title": "fleece jacket"}, "filters": {"gender": "female"}})
    assert ids(r) == ["j3", "c1"]


def test_search_errors(client):
    """Bad filter fields, k and items are 422s naming what is wrong."""
    r = client.post("/search", json={"item": {"title": "x"}, "filters": {"size": "M"}})
    assert r.status_code == 422 and "filters.size" in r.json()["detail"]
    r = client.post("/search", json={"item": {"title": "x"}, "k": 1000})
    assert r.status_code == 422 and "k must be between 1 and 100" in r.json()["detail"]
    r = client.post("/search", json={"item": {"title": 7}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "item.title"
    r = client.post("/search", json={"k": 3})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "item"


# ---------------------------------------------------------------------------------------------------- no model


def test_no_model(tmp_path):
    """Without a model the service starts: /health says how to train one, model routes are 503 with that message."""
    app = create_app(Settings(model_dir=tmp_path / "missing"))
    with TestClient(app) as c:
        h = c.get("/health")
        assert h.status_code == 200
        body = h.json()
        assert body["status"] == "no_model" and body["model_loaded"] is False and body["n_items"] == 0
        assert f"no trained model at {tmp_path / 'missing'}" in body["message"]
        assert "itemtower train --catalog FILE --out DIR" in body["message"]
        assert "ITEMTOWER_MODEL=DIR" in body["message"]
        for method, path, kw in [("POST", "/embed", {"json": {"items": [{"title": "x"}]}}),
                                 ("GET", "/info", {}), ("GET", "/items/a", {}), ("GET", "/items/a/similar", {}),
                                 ("POST", "/search", {"json": {"item": {"title": "x"}}}),
                                 ("PUT", "/items/a", {"json": {"title": "x"}}), ("DELETE", "/items/a", {})]:
            r = c.request(method, path, **kw)
            assert r.status_code == 503, (method, path)
            assert r.json()["detail"] == body["message"]
        assert c.get("/metrics").status_code == 200


def test_main_module_builds_an_app(tmp_path, monkeypatch):
    """main.py builds the app from the environment (ITEMTOWER_MODEL)."""
    monkeypatch.setenv("ITEMTOWER_MODEL", str(tmp_path / "m"))
    ns = runpy.run_path(str(Path(__file__).resolve().parents[1] / "main.py"))
    assert isinstance(ns["app"], FastAPI)
    with TestClient(ns["app"]) as c:
        assert str(tmp_path / "m") in c.get("/health").json()["message"]


# ---------------------------------------------------------------------------------------------------- model from disk


@pytest.fixture
def disk_model(tmp_path, monkeypatch):
    """A model directory whose 'model' is a FakeEmbedder: exercises the lifespan's load/save path without torch."""
    import itemtower.artifacts as artifacts

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    monkeypatch.setattr(artifacts.Embedder, "load", classmethod(lambda cls, d: FakeEmbedder()))
    return model_dir


def test_model_without_index_then_saved_on_shutdown(disk_model):
    """A model without an index serves an empty one with a warning; items PUT are saved on shutdown and reloaded."""
    with TestClient(create_app(Settings(model_dir=disk_model))) as c:
        h = c.get("/health").json()
        assert h["status"] == "degraded" and h["n_items"] == 0 and "no index" in h["warnings"][0]
        assert c.put("/items/n1", json=NEW_ITEM).status_code == 201
    assert (disk_model / "index" / "ids.json").exists()
    with TestClient(create_app(Settings(model_dir=disk_model))) as c:
        h = c.get("/health").json()
        assert {k: h[k] for k in ("status", "model_loaded", "n_items", "message", "warnings")} == {
            "status": "ok", "model_loaded": True, "n_items": 1, "message": None, "warnings": []}
        assert c.get("/items/n1").json()["sku"] == "X-1"


def test_unchanged_index_is_not_rewritten(disk_model):
    """Read-only use does not touch the saved index."""
    FaissIndex(64).save(disk_model / "index")
    before = (disk_model / "index" / "ids.json").stat().st_mtime_ns
    with TestClient(create_app(Settings(model_dir=disk_model))) as c:
        c.get("/health")
    assert (disk_model / "index" / "ids.json").stat().st_mtime_ns == before


def test_broken_index_is_reported_and_kept(disk_model):
    """A broken index is named in /health, an empty one is served, and the broken files are not overwritten."""
    (disk_model / "index").mkdir()
    for name in ("ids.json", "items.jsonl", "index.faiss"):
        (disk_model / "index" / name).write_text("garbage")
    with TestClient(create_app(Settings(model_dir=disk_model))) as c:
        h = c.get("/health").json()
        assert h["status"] == "degraded" and "broken" in h["message"] and "ids.json" in h["message"]
        assert c.put("/items/n1", json=NEW_ITEM).status_code == 201
    assert (disk_model / "index" / "ids.json").read_text() == "garbage"


def test_model_dir_without_model(tmp_path):
    """An existing directory with no model in it gives the how-to-train message (the real Embedder is asked)."""
    pytest.importorskip("torch")
    (tmp_path / "empty").mkdir()
    with TestClient(create_app(Settings(model_dir=tmp_path / "empty"))) as c:
        body = c.get("/health").json()
    assert body["status"] == "no_model" and "no trained model at" in body["message"]


# ---------------------------------------------------------------------------------------------------- bugs


class BrokenEmbedder(FakeEmbedder):
    def embed(self, items, batch_size=256):
        raise RuntimeError("tensor shape mismatch")


def test_unexpected_error_is_logged_and_named(tmp_path, caplog):
    """A bug is a 500 that names the exception type and the route, and its traceback is logged."""
    app = create_app(Settings(model_dir=tmp_path), embedder=BrokenEmbedder())
    with caplog.at_level(logging.ERROR, logger="itemtower.serve"):
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.post("/embed", json={"items": [{"title": "x"}]})
    assert r.status_code == 500
    assert "RuntimeError" in r.json()["detail"] and "POST /embed" in r.json()["detail"]
    assert any("tensor shape mismatch" in (rec.exc_text or "") for rec in caplog.records)


def test_body_size_limit_without_content_length(tmp_path):
    """A chunked body (no Content-Length) over max_body_bytes is refused with the same 413 message."""
    c, _, _ = make_client(tmp_path, max_body_bytes=2048)
    payload = b'{"items": [{"title": "' + b"x" * 4000 + b'"}]}'

    def chunks():
        for i in range(0, len(payload), 512):
            yield payload[i:i + 512]

    with c:
        r = c.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]
