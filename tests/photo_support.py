"""A small catalog with photos made with Pillow, and a photo tower trained on it (real EfficientNet-Lite0):
shared by tests/test_photo_tower.py and tests/test_serve_photos.py. Nothing reads ../shared."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from itemtower.catalog import write_catalog
from itemtower.catalog.schema import infer_schema

COLOURS = [(200, 30, 40), (40, 90, 190), (40, 140, 60), (245, 215, 40), (30, 30, 30), (150, 60, 160)]


def photo(path: Path, colour, shape: str = "rect", fmt: str | None = None) -> Path:
    """A garment-like shape in `colour` on white, 224 x 224."""
    im = Image.new("RGB", (224, 224), (255, 255, 255))
    d = ImageDraw.Draw(im)
    box = (56, 45, 168, 180)
    d.ellipse(box, fill=colour) if shape == "ellipse" else d.rectangle(box, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


def make_shop(d: Path) -> tuple[Path, list[dict]]:
    """40 items in d/shop.jsonl: 24 with one of 6 photos (paths relative to d), 16 without; two kinds."""
    files = [photo(d / "img" / f"p{i}.png", c, "ellipse" if i % 2 else "rect").relative_to(d).as_posix()
             for i, c in enumerate(COLOURS)]
    rows = []
    for i in range(40):
        kind = ["shirt", "dress"][i % 2]
        row = {"id": f"i{i}", "title": f"{kind} model {i % 7} cotton", "std": {"kind": [kind]}}
        if i < 24:
            row["image"] = files[i % 6]
        rows.append(row)
    cat = d / "shop.jsonl"
    write_catalog(cat, rows)
    return cat, rows


def train_photo_model(cat: Path, rows: list[dict], d: Path) -> tuple[Path, Path, list[str]]:
    """One epoch of a tiny photo tower: (model dir, feature cache dir, training log)."""
    from itemtower.model import TowerConfig
    from itemtower.training import TrainConfig, train

    cfg = TrainConfig(catalog=str(cat), out=str(d / "m"), epochs=1, batch_size=16, min_frequency=1,
                      vocab_size=200, progress=False, distill_items=0, max_minutes=None, auto_sem_scale=False,
                      image_cache=str(d / "cache"), tower=TowerConfig(d_model=16, n_heads=2, sem_dim=8))
    logs: list[str] = []
    train(cfg, rows, infer_schema(rows), log=logs.append)
    return d / "m", d / "cache", logs
