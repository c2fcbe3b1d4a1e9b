"""Predictable stand-ins: for artifacts.Embedder (service and index tests) and for the e5 teacher (training tests).

Each title word (and each std value) is hashed into one of `dim` buckets; the bag is L2-normalised. So items that
share words are near, items that share none score 0, and a test can work out any expected ranking by hand.
"""

from __future__ import annotations

import zlib
from typing import Any, Sequence

import numpy as np

from itemtower.catalog.schema import Schema

# A small K-Fashion-like schema: closed vocabularies (unknown values are warnings) and one open field.
SMALL_SCHEMA = Schema(
    name="kfashion-small",
    std_fields={
        "category": ("01outer_01coat", "01outer_02jacket", "02top_02t-shirt", "04bottom_01pants"),
        "color": ("Black", "White", "Red", "Blue"),
        "gender": ("male", "female", "both"),
        "season": ("spring&fall", "summer", "winter"),
        "brand": None,
    },
    re_fields=("color", "specification.metadata"),
)


def _bucket(token: str, dim: int) -> int:
    # crc32, not hash(): Python salts str hashes per process, and the tests need the same vectors every run.
    return zlib.crc32(token.encode("utf-8")) % dim


class FakeEmbedder:
    """Deterministic bag-of-words embedder with the Embedder surface the service uses."""

    def __init__(self, dim: int = 64, schema: Schema = SMALL_SCHEMA) -> None:
        self.dim = dim
        self.schema = schema
        self.manifest = {"format": "fake", "serves": "h", "dim": dim, "schema": schema.to_dict()}
        self.calls: list[list[dict[str, Any]]] = []  # every batch it was given, to check what the service passes

    def tokens(self, item: dict[str, Any]) -> list[str]:
        words = (item.get("title") or "").lower().split()
        for field, values in (item.get("std") or {}).items():
            words += [f"{field}={v}" for v in values]
        return words

    def embed(self, items: Sequence[dict[str, Any]], batch_size: int = 256) -> np.ndarray:
        self.calls.append([dict(it) for it in items])
        out = np.zeros((len(items), self.dim), dtype=np.float32)  # (N, D)
        for i, item in enumerate(items):
            for tok in self.tokens(item):
                out[i, _bucket(tok, self.dim)] += 1.0
            if not out[i].any():
                out[i, 0] = 1.0  # an empty item still gets a unit vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def catalog() -> list[dict[str, Any]]:
    """Six normalized items: two near-duplicate black jackets, a white variant, a coat, pants and a t-shirt."""
    def it(id, title, category, color, gender, season, **extra):
        return {"id": id, "title": title,
                "std": {"category": [category], "color": [color], "gender": [gender], "season": [season]},
                "re": {"color": [color.lower()]}, **extra}

    return [
        it("j1", "black fleece jacket", "01outer_02jacket", "Black", "male", "winter", group="g1"),
        it("j2", "black fleece jacket zip", "01outer_02jacket", "Black", "male", "winter", group="g1"),
        it("j3", "white fleece jacket", "01outer_02jacket", "White", "female", "winter", price=59000),
        it("c1", "long wool coat", "01outer_01coat", "Black", "female", "winter"),
        it("p1", "wide cotton pants", "04bottom_01pants", "Blue", "both", "summer"),
        it("t1", "red cotton t-shirt", "02top_02t-shirt", "Red", "both", "summer"),
    ]


def fake_e5_encoder(cache_dir=None, progress=True, log=print, name="e5"):
    """Stands in for text_encoders.e5_encoder in training tests: a fixed random vector per text (from a hash), so
    train's distillation runs in milliseconds. The real encoder has its own tests (test_distill.py,
    test_text_encoders.py)."""
    def encode(texts):
        return np.stack([np.random.default_rng(zlib.crc32(t.encode("utf-8"))).normal(size=32) for t in texts]
                        ).astype(np.float32) if texts else np.zeros((0, 32), np.float32)

    return encode
