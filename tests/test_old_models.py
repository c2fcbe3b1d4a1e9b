"""Behaviour unchanged across issue 11's restructuring, against a model the code before it trained and saved
(tests/fixtures/model_v0: manifest format 1, tower knobs flat in train_config.json, proj_dim in the model config;
made by benchmarks/same_training.py at commit 3e60046 with the stand-in teacher: `run --demo 120 --epochs 2
--fake-teacher`). model_v0_expected.npz holds what that code computed: the loss of every step and the
embeddings of the catalog."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from itemtower.catalog import read_catalog
from itemtower.schema import infer_schema

FIXTURES = Path(__file__).parent / "fixtures"
MODEL, CATALOG = FIXTURES / "model_v0", FIXTURES / "model_v0_catalog.jsonl"


def _expected():
    return np.load(FIXTURES / "model_v0_expected.npz")


def test_a_model_saved_before_issue_11_loads_and_embeds_identically(tmp_path):
    """The old layout (sizes and proj_dim inside "model", format itemtower/1) rebuilds the same tower, which
    embeds the catalog exactly as the code that trained it did."""
    from itemtower.artifacts import Embedder

    manifest = json.loads((MODEL / "manifest.json").read_text())
    assert manifest["format"] == "itemtower/1" and "proj_dim" in manifest["model"] and "sizes" not in manifest
    items = read_catalog(CATALOG).items
    emb = Embedder.load(MODEL)
    assert emb.tower.sizes.vocab_size == manifest["model"]["vocab_size"] and emb.dim == manifest["dim"]
    np.testing.assert_allclose(emb.embed(items), _expected()["embeddings"], atol=1e-6, rtol=0)


def test_training_gives_the_numbers_the_code_before_gave(tmp_path):
    """Same items, same (old, flat) config, same seed, fixed epochs: the same loss at every step and the same
    embeddings as the code before issue 11 (the stand-in teacher of conftest, as when the fixture was made)."""
    from itemtower.artifacts import Embedder
    from itemtower.train import TrainConfig, train_items

    old = json.loads((MODEL / "train_config.json").read_text())
    cfg = TrainConfig.from_dict({**old, "out": str(tmp_path / "m")})
    items = read_catalog(CATALOG).items
    train_items(items, infer_schema(items), cfg, log=lambda s: None)
    hist = json.loads((tmp_path / "m" / "history.json").read_text())
    exp = _expected()
    np.testing.assert_allclose(hist["loss"], exp["loss"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(hist["distill_loss"], exp["distill"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(Embedder.load(tmp_path / "m").embed(items), exp["embeddings"], atol=1e-5, rtol=0)


def test_an_unknown_manifest_format_is_a_clear_error(tmp_path):
    """A manifest whose format this version does not read names the format and what to do."""
    import pytest

    from itemtower.artifacts import Embedder, ModelLoadError

    d = tmp_path / "m"
    shutil.copytree(MODEL, d)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["format"] = "itemtower/99"
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="itemtower/99.*newer itemtower"):
        Embedder.load(d)
