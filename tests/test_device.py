"""Device selection (model/device.py, issue 14's GPU path): the same rule for train, embed and the service; the
Embedder on a device gives the CPU's vectors. Tests marked `gpu` need CUDA: deselected by default (pyproject's
addopts), and skipped where torch sees no GPU even when selected (`-m gpu`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from itemtower.artifacts import Embedder
from itemtower.catalog import read_catalog
from itemtower.cli import app
from itemtower.model.device import resolve_device

FIXTURES = Path(__file__).parent / "fixtures"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def items():
    return read_catalog(FIXTURES / "model_v0_catalog.jsonl").items


def test_resolve_device_rule():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of cpu, cuda, auto"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_embedder_to_cpu_and_auto_keep_the_vectors(items):
    expected = np.load(FIXTURES / "model_v0_expected.npz")["embeddings"]
    emb = Embedder.load(FIXTURES / "model_v0")
    assert emb.to("cpu") is emb
    np.testing.assert_allclose(emb.embed(items), expected, atol=1e-5, rtol=0)
    if not torch.cuda.is_available():
        emb.to("auto")
        assert next(emb.tower.parameters()).device.type == "cpu"


def test_embed_command_device_flag(tmp_path):
    runner = CliRunner()
    args = ["embed", "--model", str(FIXTURES / "model_v0"), "--catalog", str(FIXTURES / "model_v0_catalog.jsonl"),
            "--out", str(tmp_path / "e.npz")]
    res = runner.invoke(app, args + ["--device", "tpu"])
    assert res.exit_code == 2 and "device must be one of" in res.output and not (tmp_path / "e.npz").exists()
    res = runner.invoke(app, args + ["--device", "auto"])
    assert res.exit_code == 0, res.output
    assert np.load(tmp_path / "e.npz")["embeddings"].shape == (120, Embedder.load(FIXTURES / "model_v0").dim)


@pytest.mark.gpu
@needs_cuda
def test_embedder_on_cuda_matches_cpu_and_bf16_is_close(items):
    cpu = Embedder.load(FIXTURES / "model_v0").embed(items)
    emb = Embedder.load(FIXTURES / "model_v0").to("cuda")
    np.testing.assert_allclose(emb.embed(items, batch_size=16), cpu, atol=1e-4, rtol=0)
    emb.bf16 = True
    assert float((emb.embed(items) * cpu).sum(1).min()) > 0.99


@pytest.mark.gpu
@needs_cuda
def test_training_on_cuda_runs_and_saves_a_cpu_loadable_model(tmp_path, tiny_items):
    from itemtower.model import TowerConfig
    from itemtower.training import TrainConfig, train

    cfg = TrainConfig(out=str(tmp_path / "m"), epochs=1, batch_size=32, min_frequency=1, vocab_size=500,
                      progress=False, seed=0, device="cuda", distill_items=0,
                      tower=TowerConfig(d_model=32, n_heads=2))
    out = train(cfg, items=tiny_items)
    vecs = Embedder.load(out).embed(tiny_items[:20])  # loads on CPU
    assert vecs.shape[0] == 20 and np.isfinite(vecs).all()


def test_service_device_setting(monkeypatch, tmp_path):
    """ITEMTOWER_DEVICE picks where the service's model runs; cuda without a GPU leaves the service up without
    a model, /health naming the reason; an unknown device is refused when the settings are read."""
    from fastapi.testclient import TestClient
    from pydantic import ValidationError

    from itemtower.serve.app import create_app
    from itemtower.serve.settings import Settings

    import shutil

    model = tmp_path / "model"
    shutil.copytree(FIXTURES / "model_v0", model)
    monkeypatch.setenv("ITEMTOWER_DEVICE", "auto")
    assert Settings(model_dir=model).device == "auto"
    with TestClient(create_app(Settings(model_dir=model))) as c:
        assert c.post("/embed", json={"items": [{"title": "black tee"}]}).status_code == 200
    monkeypatch.setenv("ITEMTOWER_DEVICE", "tpu")
    with pytest.raises(ValidationError):
        Settings(model_dir=model)
    if not torch.cuda.is_available():
        with TestClient(create_app(Settings(model_dir=model, device="cuda"))) as c:
            body = c.get("/health").json()
        assert body["model_loaded"] is False and "no CUDA device" in body["message"]
