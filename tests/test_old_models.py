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
from itemtower.catalog.schema import infer_schema

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
    from itemtower.training import TrainConfig, train

    old = json.loads((MODEL / "train_config.json").read_text())
    # auto_sem_scale (issue 9, after the fixture) changes only the served slice weight, precision "auto" (issue 13)
    # bf16 rounding where the CPU has it: both off, to compare like with like
    cfg = TrainConfig.from_dict({**old, "out": str(tmp_path / "m"), "auto_sem_scale": False, "precision": "fp32"})
    items = read_catalog(CATALOG).items
    train(cfg, items, infer_schema(items), log=lambda s: None)
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


def test_evaluate_reads_an_old_manifest_with_a_removed_knob(tmp_path):
    """evaluate reads the training config of an older model leniently: a key this version no longer has is a
    warning, not an error, and the views come from that config (old manifests have no "views" entry)."""
    import pytest

    from itemtower.evaluation.evaluate import evaluate

    d = tmp_path / "m"
    shutil.copytree(MODEL, d)
    manifest = json.loads((d / "manifest.json").read_text())
    assert "views" not in manifest
    manifest["training"]["config"]["a_removed_knob"] = 1
    manifest["training"]["config"]["views"]["re_drop_p"] = 0.9  # must be the views evaluation uses
    (d / "manifest.json").write_text(json.dumps(manifest))
    items = read_catalog(CATALOG).items
    with pytest.warns(UserWarning, match="a_removed_knob"):
        rep = evaluate(d, items, with_baselines=False, log=lambda s: None, n_view_items=50)
    assert rep["n_items"] == len(items) and rep["z"]["available"] is False  # no resume.pt in the fixture
    from itemtower.artifacts import checkpoint

    with pytest.warns(UserWarning):
        assert checkpoint.views_config(manifest).re_drop_p == 0.9


def test_a_new_manifest_stores_sizes_views_and_no_head(tiny_model):
    """Format 2: the tower's knobs under "model" (no proj_dim), the fitted sizes under "sizes", the training
    views under "views"."""
    model_dir, _ = tiny_model
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["format"] == "itemtower/2" and "proj_dim" not in manifest["model"]
    assert set(manifest["sizes"]) == {"n_fields", "n_values", "vocab_size", "n_types", "max_len"}
    assert manifest["views"]["colour_drop_p"] == manifest["training"]["config"]["views"]["colour_drop_p"]
    assert manifest["training"]["config"]["tower"]["d_model"] == manifest["model"]["d_model"]
