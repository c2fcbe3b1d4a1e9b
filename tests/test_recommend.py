"""POST /recommend, per_group, GET /items/{id}/variants and offset, on the six-item fake catalog (tests/fakes.py),
with every expected ranking recomputed by hand from the index's own vectors."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fakes import FakeEmbedder, catalog
from itemtower.index import FaissIndex
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings


@pytest.fixture
def parts(tmp_path):
    embedder = FakeEmbedder()
    items = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    app = create_app(Settings(model_dir=tmp_path / "unused"), embedder=embedder, index=index)
    with TestClient(app) as client:
        yield client, index


def ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [it["id"] for it in resp.json()["items"]]


def by_hand(index: FaissIndex, q: np.ndarray, exclude: set[str]) -> list[str]:
    """Every other item, best first by inner product with q (ties by id, as the index is exact here)."""
    scored = [(float(np.dot(q, index.vector(i))), i) for i in index.ids() if i not in exclude]
    return [i for _, i in sorted(scored, key=lambda t: (-t[0], t[1]))]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_recommend_positives_only_is_similar_by_id(parts):
    """One positive and no negative ranks like /items/{id}/similar."""
    client, _ = parts
    rec = client.post("/recommend", json={"positive": ["j1"], "k": 5})
    assert ids(rec) == ids(client.get("/items/j1/similar?k=5"))


def test_recommend_moves_away_from_negatives(parts):
    """unit(mean(pos)) - 0.5 unit(mean(neg)), by hand; positives and negatives are never returned."""
    client, index = parts
    q = unit(index.vector("j1") + index.vector("t1")) - 0.5 * unit(index.vector("c1"))
    want = by_hand(index, unit(q), exclude={"j1", "t1", "c1"})
    got = ids(client.post("/recommend", json={"positive": ["j1", "t1"], "negative": ["c1"], "k": 3}))
    assert got == want[:3]
    scores = [it["score"] for it in client.post("/recommend", json={"positive": ["j1", "t1"], "negative": ["c1"],
                                                                    "k": 3}).json()["items"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_filters_and_unknown_ids(parts):
    """Filters apply as in /search; an unknown id is a 404 that names it."""
    client, _ = parts
    got = ids(client.post("/recommend", json={"positive": ["j1"], "filters": {"season": "summer"}}))
    assert set(got) == {"p1", "t1"}
    r = client.post("/recommend", json={"positive": ["j1", "nope"]})
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]
    assert r.json()["errors"][0]["value"] == "nope"
    assert client.post("/recommend", json={"positive": []}).status_code == 422


def test_per_group_keeps_one_of_a_group(parts):
    """j1 and j2 share group g1: with per_group=1 only the better of them is listed; items with no group are
    groups of their own."""
    client, _ = parts
    plain = ids(client.get("/items/j3/similar?k=5"))
    assert {"j1", "j2"} <= set(plain)
    capped = ids(client.get("/items/j3/similar?k=5&per_group=1"))
    assert len(capped) == 4  # five others, two of them in one group
    assert len({"j1", "j2"} & set(capped)) == 1
    assert capped == [i for i in plain if i != ({"j1", "j2"} - set(capped)).pop()][:4]
    body = {"item": {"title": "black fleece jacket"}, "k": 5, "per_group": 1}
    assert len({"j1", "j2"} & set(ids(client.post("/search", json=body)))) == 1


def test_per_group_by_a_std_field(parts):
    """group_by=season: at most one item per season value (winter, summer)."""
    client, index = parts
    got = ids(client.get("/items/j1/similar?k=5&per_group=1&group_by=season"))
    seasons = [index.get(i)["std"]["season"][0] for i in got]
    assert sorted(seasons) == ["summer", "winter"]
    r = client.get("/items/j1/similar?per_group=1&group_by=nonsense")
    assert r.status_code == 422 and "nonsense" in r.json()["detail"]


def test_offset_pages_through_the_ranking(parts):
    """Page 2 (offset=2, k=2) is items 3-4 of the k=4 ranking, for similar and for search."""
    client, _ = parts
    full = ids(client.get("/items/j1/similar?k=4"))
    assert ids(client.get("/items/j1/similar?k=2")) + ids(client.get("/items/j1/similar?k=2&offset=2")) == full
    body = {"item": {"title": "cotton"}, "k": 4}
    full = ids(client.post("/search", json=body))
    assert ids(client.post("/search", json={**body, "k": 2, "offset": 2})) == full[2:4]
    assert ids(client.get("/items/j1/similar?k=5&offset=10")) == []
    assert client.get("/items/j1/similar?offset=-1").status_code == 422


def test_variants_are_the_rest_of_the_group(parts):
    """j1's variants: j2 (group g1), scored by similarity to j1; an item without a group has none; 404 unknown."""
    client, index = parts
    r = client.get("/items/j1/variants")
    assert ids(r) == ["j2"]
    assert r.json()["items"][0]["score"] == pytest.approx(float(np.dot(index.vector("j1"), index.vector("j2"))))
    assert ids(client.get("/items/j3/variants")) == []
    assert client.get("/items/nope/variants").status_code == 404
    client.put("/items/j4", json={"title": "black fleece jacket hood", "group": "g1"})
    assert ids(client.get("/items/j1/variants")) == by_hand(index, index.vector("j1"), {"j1", "c1", "p1", "t1",
                                                                                          "j3"})
    client.delete("/items/j2")
    assert ids(client.get("/items/j1/variants")) == ["j4"]


def test_similar_response_matches_the_declared_model(parts):
    """The hand-built JSON body of /similar is what SimilarResponse describes (the item as stored, plus score)."""
    from itemtower.serve.schemas import SimilarResponse

    client, index = parts
    body = client.get("/items/j1/similar?k=5").json()
    SimilarResponse.model_validate(body)
    first = body["items"][0]
    assert {k: v for k, v in first.items() if k != "score"} == index.get(first["id"])
