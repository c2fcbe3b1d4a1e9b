"""Shared fixtures: a tiny synthetic catalog and a tiny model trained once per test session."""

from __future__ import annotations

import random

import pytest
from fakes import fake_e5_encoder

from itemtower.catalog.schema import KFASHION

WORDS = ("와이드 데님 팬츠 오버핏 쿨링 반팔 티셔츠 셔츠 니트 가디건 린넨 후드 "
         "classic slim wool cotton linen wide crop hoodie").split()


def make_items(n: int = 300, seed: int = 0) -> list[dict]:
    """Items in normalized form whose titles share words with their category, in groups of two."""
    rng = random.Random(seed)
    cats = list(KFASHION.std_fields["category"])
    cols = list(KFASHION.std_fields["color"])
    items = []
    for i in range(n):
        c, col = cats[(i // 2) % len(cats)], rng.choice(cols)
        words = rng.sample(WORDS, 3)
        items.append({
            "id": f"it{i}", "title": f"brand{i // 2} {' '.join(words)} {col}",
            "std": {"category": [c], "color": [col], "season": [rng.choice(["summer", "winter"])]},
            "re": {"color": [col.lower()], "specification.metadata": [" ".join(rng.sample(WORDS, 2))]},
            "group": f"g{i // 2}",
        })
    return items


@pytest.fixture(scope="session", autouse=True)
def _no_real_e5_in_training():
    """Session-wide (session fixtures such as tiny_model train before any function-scoped patch would apply)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("itemtower.training.data.e5_encoder", fake_e5_encoder)  # tests/fakes.py
        yield


@pytest.fixture(scope="session", autouse=True)
def _embed_in_fp32():
    """The suite checks the embedding function itself, in fp32: identities across paths (streamed = in memory,
    shards = one run, a batch = items one at a time, the fixtures' vectors of older code) hold to 1e-5 there,
    while bf16 rounds each item's vector by ~1e-3 depending on its batch. The default ("auto": bf16 where the
    CPU has bf16 kernels) is tested in tests/test_precision.py, and the real-server tests run it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("itemtower.artifacts.embedder.Embedder.precision", "fp32")
        yield


@pytest.fixture(scope="session")
def tiny_items() -> list[dict]:
    return make_items()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_items):
    """A model trained for a few steps on the tiny catalog: (model_dir, items)."""
    from itemtower.model import TowerConfig
    from itemtower.training import TrainConfig, train

    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig(out=str(out), epochs=2, batch_size=32, min_frequency=1, vocab_size=500, progress=False,
                      seed=0, tower=TowerConfig(d_model=32, n_heads=2))
    train(cfg, tiny_items, KFASHION, log=lambda s: None)
    return out, tiny_items
