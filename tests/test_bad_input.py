"""Bad input found by fuzzing (issue 10): values JSON cannot hold are refused at the door, the error body never
fails to encode, malformed bodies are 422s, 405s list the right methods, and the OpenAPI document says all that.

Against FakeEmbedder (tests/fakes.py), in-process; no model, no torch.
"""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from fakes import SMALL_SCHEMA, FakeEmbedder, catalog
from itemtower.index import FaissIndex
from itemtower.catalog.jsonsafe import MAX_DEPTH
from itemtower.serve.app import create_app
from itemtower.serve.schemas import ProblemOut
from itemtower.serve.settings import Settings

KEY = "secret-key"
AUTH = {"X-API-Key": KEY}
JSON = {"content-type": "application/json", **AUTH}


@pytest.fixture
def svc(tmp_path):
    """(client, embedder, index) with six items, an API key, max_k 20, max_batch 4."""
    embedder = FakeEmbedder()
    items = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    embedder.calls.clear()
    app = create_app(Settings(model_dir=tmp_path / "unused", api_key=KEY, max_k=20, max_batch=4),
                     embedder=embedder, index=index)
    with TestClient(app) as client:
        yield client, embedder, index


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Raw JSON texts (Python's parser accepts them all) and the field each 422 must name.
BAD_PUTS = [
    ('{"title": "x", "price": NaN}', "price"),
    ('{"title": "x", "price": Infinity}', "price"),
    ('{"title": "x", "price": -Infinity}', "price"),
    ('{"title": "x", "price": 1e999}', "price"),
    ('{"title": "a\\ud800b"}', "title"),
    ('{"title": "x", "std": {"color": "Bl\\udfffack"}}', "std.color"),
    ('{"title": "x", "meta": {"k\\ud800": 1}}', "meta"),
    ('{"title": "x", "extra": ' + _nested(300) + "}", "extra"),
]


@pytest.mark.parametrize("body,field", BAD_PUTS, ids=[f for _, f in BAD_PUTS])
def test_put_of_unstorable_value_is_a_422_naming_the_field_and_stores_nothing(svc, body, field):
    """NaN, +-Infinity, 1e999 (inf), lone surrogates (in a value or a key) and nesting 300 deep: a 422 whose
    errors name the field; nothing is stored, the model is never called, and the index still saves."""
    client, embedder, index = svc
    r = client.put("/items/new1", content=body.encode(), headers=JSON)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors and errors[0]["field"].startswith(field) and errors[0]["severity"] == "error"
    json.dumps(r.json(), allow_nan=False)  # the answer itself is plain JSON
    assert client.get("/items/new1").status_code == 404 and "new1" not in index
    assert embedder.calls == []


def test_embed_with_nan_or_overflow_is_a_422_not_a_500(svc):
    """POST /embed with NaN in a std value or 1e999 in an extra key: 422 naming item and field (was a 500: the
    422 handler could not encode the value)."""
    client, embedder, _ = svc
    body = b'{"items": [{"title": "ok"}, {"title": "x", "std": {"color": NaN}}, {"title": "y", "w": 1e999}]}'
    r = client.post("/embed", content=body, headers=JSON)
    assert r.status_code == 422
    found = {(e["item"], e["field"]) for e in r.json()["errors"]}
    assert found == {(1, "std.color"), (2, "w")}
    assert embedder.calls == []


def test_search_filters_and_k_with_bad_values_are_422(svc):
    """/search: a lone surrogate in a filter value, NaN as k: 422s that name the field."""
    client, _, _ = svc
    r = client.post("/search", content=b'{"item": {"title": "x"}, "filters": {"color": "\\ud800"}}', headers=JSON)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "filters.color"
    r = client.post("/search", content=b'{"item": {"title": "x"}, "k": NaN}', headers=JSON)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "k"


def test_the_guard_protects_routes_that_check_nothing(tmp_path):
    """A route that takes free JSON and echoes it (no check_item anywhere: a route someone adds later) still never
    sees NaN, 1e999 or a lone surrogate: the body guard answers 422 naming the field, so the route cannot 500 on
    writing the value back."""
    from fastapi import Body

    app = create_app(Settings(model_dir=tmp_path / "unused"), embedder=FakeEmbedder())

    @app.post("/echo")
    def echo(body: dict = Body(...)) -> dict:
        return body

    with TestClient(app) as client:
        assert client.post("/echo", json={"a": [1.5, "x"]}).json() == {"a": [1.5, "x"]}
        for raw, field in ((b'{"a": {"b": NaN}}', "a.b"), (b'{"w": 1e999}', "w"), (b'{"s": ["\\udc00"]}', "s.0")):
            r = client.post("/echo", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text


def test_nesting_limit_is_exact(svc):
    """An extra value nested MAX_DEPTH - 1 deep inside the item (MAX_DEPTH with the item) is fine; one more is not."""
    client, _, _ = svc
    ok = '{"title": "deep ok", "extra": ' + _nested(MAX_DEPTH - 1) + "}"
    assert client.put("/items/d1", content=ok.encode(), headers=JSON).status_code == 201
    bad = '{"title": "deep bad", "extra": ' + _nested(MAX_DEPTH) + "}"
    assert client.put("/items/d2", content=bad.encode(), headers=JSON).status_code == 422


def test_bad_writes_never_take_the_good_ones_down(svc, tmp_path):
    """Good and unstorable writes interleaved: every good one is stored, served and saved; the index saves and
    reloads with exactly the good ones."""
    client, _, index = svc
    for i in range(10):
        good = client.put(f"/items/g{i}", json={"title": f"good item {i}", "std": {"color": "Red"}}, headers=AUTH)
        assert good.status_code == 201
        bad = BAD_PUTS[i % len(BAD_PUTS)][0]
        assert client.put(f"/items/b{i}", content=bad.encode(), headers=JSON).status_code == 422
    assert client.get("/items/g3/similar", params={"k": 20}).status_code == 200
    assert client.post("/search", json={"item": {"title": "good item"}, "k": 20}).status_code == 200
    index.save(tmp_path / "snap")
    back = FaissIndex.load(tmp_path / "snap")
    assert {f"g{i}" for i in range(10)} <= set(back.ids()) and not any(f"b{i}" in back for i in range(10))


def test_unreadable_bodies_are_422_not_an_undocumented_400(svc):
    """Bytes that are not UTF-8, and JSON nested ~5,000 deep (the parser's RecursionError), were FastAPI's
    undocumented 400: now the 422 every malformed body gets, saying why."""
    client, _, _ = svc
    r = client.put("/items/x", content=b'{"title": "\xff\xfe"}', headers=JSON)
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]
    r = client.put("/items/x", content=('{"title": "x", "e": ' + _nested(5000) + "}").encode(), headers=JSON)
    assert r.status_code == 422 and "nested too deeply" in r.json()["detail"]
    r = client.put("/items/x", content=b'{"title": "x", "n": ' + b"1" * 5000 + b"}", headers=JSON)
    assert r.status_code == 422 and "4300 digits" in r.json()["detail"]  # Python's int-parsing limit
    r = client.post("/embed", content=b'{"items": [', headers=JSON)  # truncated JSON: FastAPI's own 422
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_problem_value_is_always_json_safe():
    """ProblemOut.value: kept when JSON can hold it, else a short ASCII repr (so a 422 can always be written)."""
    assert ProblemOut(field="a", value=["x", 1], message="m").value == ["x", 1]
    assert ProblemOut(field="a", value=float("nan"), message="m").value == "nan"
    assert ProblemOut(field="a", value=math.inf, message="m").value == "inf"
    v = ProblemOut(field="a", value="x\ud800", message="m").value
    assert v.encode("utf-8") and "ud800" in v
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    v = ProblemOut(field="a", value=deep, message="m").value
    assert isinstance(v, str) and len(v) <= 60
    from itemtower.serve.validation import ApiError

    assert ApiError(422, "no item 'a\ud800'").detail.encode("utf-8") == b"no item 'a\\ud800'"


def test_405_lists_the_methods_of_the_path_that_owns_it(svc):
    """PUT /items/x/similar is a 405 (not a PUT of the item 'x/similar'), Allow: GET; POST /items/x lists all
    three methods of /items/{id}, not GET alone; the body has the app's error shape."""
    client, _, index = svc
    r = client.put("/items/j1/similar", json={"title": "t"}, headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET" and "j1/similar" not in index
    assert isinstance(r.json()["detail"], str) and r.json()["errors"] == []
    assert client.delete("/items/j1/explain", headers=AUTH).status_code == 405
    r = client.post("/items/j1", json={})
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PUT"
    r = client.patch("/embed", json={})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert client.get("/items/j1/similar").status_code == 200  # the owners still answer their own methods


def test_explain_422_has_a_string_detail_as_documented(svc):
    """?top=999 on /explain: the body is ErrorResponse (detail a string), which is what the schema now says."""
    client, _, _ = svc
    r = client.get("/items/j1/explain", params={"top": 999})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    doc = client.get("/openapi.json").json()
    ref = doc["paths"]["/items/{item_id}/explain"]["get"]["responses"]["422"]["content"]["application/json"]
    assert ref["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


def test_openapi_states_the_error_body_and_the_limits(svc):
    """Every 4xx/5xx of every route is ErrorResponse (no FastAPI HTTPValidationError left); k has maximum max_k
    (query and /search body); /embed's items has maxItems max_batch; /search filters name the std fields."""
    client, _, _ = svc
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(doc)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if status[0] in "45":
                    assert resp["content"]["application/json"]["schema"] == \
                        {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    k = next(p for p in doc["paths"]["/items/{item_id}/similar"]["get"]["parameters"] if p["name"] == "k")
    assert k["schema"]["maximum"] == 20 and k["schema"]["minimum"] == 1
    schemas = doc["components"]["schemas"]
    assert schemas["SearchRequest"]["properties"]["k"]["maximum"] == 20
    assert schemas["EmbedRequest"]["properties"]["items"]["maxItems"] == 4
    assert schemas["SearchRequest"]["properties"]["filters"]["propertyNames"] == {"enum": list(SMALL_SCHEMA.std_fields)}
    # and the service does what the document says
    assert client.get("/items/j1/similar", params={"k": 21}).status_code == 422
    assert client.get("/items/j1/similar", params={"k": 20}).status_code == 200
    assert client.post("/embed", json={"items": [{"title": "a"}] * 5}).status_code == 422


def test_bad_writes_never_cost_the_good_ones_across_a_restart(tmp_path, monkeypatch):
    """The issue's failure: unstorable PUTs between good ones made the shutdown save fail, and 0 of 20 good writes
    survived. Against the durable store (a model directory, FakeEmbedder as its model): 20 good writes, each
    followed by an unstorable one; after a clean shutdown and a restart all 20 are there, and none of the bad."""
    import itemtower.artifacts as artifacts

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    monkeypatch.setattr(artifacts.Embedder, "load", classmethod(lambda cls, d: FakeEmbedder()))
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        for i in range(20):
            assert client.put(f"/items/g{i}", json={"title": f"good {i}"}).status_code == 201
            bad = BAD_PUTS[i % len(BAD_PUTS)][0]
            assert client.put(f"/items/b{i}", content=bad.encode(), headers=JSON).status_code == 422
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        health = client.get("/health").json()
        assert health["n_items"] == 20, health
        assert all(client.get(f"/items/g{i}").status_code == 200 for i in range(20))
        assert all(client.get(f"/items/b{i}").status_code == 404 for i in range(20))


def test_a_stored_score_key_never_shadows_the_similarity(svc):
    """An extra key named `score` (a rating, say) would sit next to the similarity in every similar/search answer
    (a JSON object with two "score" keys, one not a number): it is dropped, with a warning saying so."""
    client, _, _ = svc
    r = client.put("/items/s1", json={"title": "black fleece jacket", "score": "five stars", "rating": 5},
                   headers=AUTH)
    assert r.status_code == 201
    assert [w["field"] for w in r.json()["warnings"]] == ["score"] and "score" not in r.json()["item"]
    assert list(r.json()["item"])[0] == "id"
    r = client.post("/search", json={"item": {"title": "black fleece jacket"}, "k": 3})
    raw = r.text
    assert raw.count('"score"') == len(r.json()["items"]) == 3
    assert all(isinstance(it["score"], float) for it in r.json()["items"])
