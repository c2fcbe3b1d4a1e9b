"""precision "auto" | "fp32" | "bf16" (model/device.use_bf16): the rule, the embedder and training under it, the
losses kept in fp32 under autocast, and the clear errors (issue 13, BENCHMARKS.md 14g)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from itemtower.artifacts import Embedder
from itemtower.catalog import read_catalog
from itemtower.model import device as devmod
from itemtower.model.device import bf16_supported, use_bf16
from itemtower.model.losses import ContrastiveLoss, SimilarityDistillLoss

FIXTURES = Path(__file__).parent / "fixtures"
CPU = torch.device("cpu")
HAS_BF16 = bf16_supported(CPU)


def test_the_rule():
    assert use_bf16("fp32", CPU) is False
    assert use_bf16("auto", CPU) is HAS_BF16
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        use_bf16("fp16", CPU)


def test_bf16_where_the_device_has_no_kernels_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(devmod, "bf16_supported", lambda device: False)
    assert use_bf16("auto", CPU) is False  # auto falls back to fp32
    with pytest.raises(ValueError, match="no bf16 matmul kernels.*--precision fp32 or auto"):
        use_bf16("bf16", CPU)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 kernels: auto is fp32 (test_the_rule)")
def test_auto_embeds_in_bf16_close_to_fp32():
    items = read_catalog(FIXTURES / "model_v0_catalog.jsonl").items
    emb = Embedder.load(FIXTURES / "model_v0")
    emb.precision = "fp32"
    fp32 = emb.embed(items)
    emb.precision = "auto"
    assert emb.bf16 is True
    auto = emb.embed(items)
    assert auto.dtype == np.float32 and not np.array_equal(auto, fp32)
    assert float((auto * fp32).sum(1).min()) > 0.99
    np.testing.assert_allclose(np.linalg.norm(auto, axis=1), 1.0, atol=1e-5)
    # the neighbours are the ones fp32 gives (the tiny fixture model: top 5 of each item)
    top = lambda v: np.argsort(-(v @ v.T), axis=1)[:, 1:6]  # noqa: E731
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top(auto), top(fp32))])
    assert overlap > 0.9


@pytest.mark.skipif(not HAS_BF16, reason="autocast to bf16 on CPU without kernels is emulated")
def test_losses_stay_fp32_under_autocast():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    labels = torch.arange(16)
    teacher = torch.randn(16, 12, generator=g)
    b1, b2 = z1.bfloat16(), z2.bfloat16()  # what a tower under autocast hands the loss
    want_c = ContrastiveLoss(0.05)(b1.float(), b2.float(), labels)
    want_d = SimilarityDistillLoss()(b1.float(), teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_c = ContrastiveLoss(0.05)(b1, b2, labels)
        got_d = SimilarityDistillLoss()(b1, teacher)
    assert got_c.dtype == torch.float32 and got_d.dtype == torch.float32
    assert abs(float(got_c) - float(want_c)) < 1e-5 and abs(float(got_d) - float(want_d)) < 1e-5


def test_training_records_its_precision(tmp_path, tiny_items):
    from itemtower.catalog.schema import KFASHION
    from itemtower.model import TowerConfig
    from itemtower.training import TrainConfig, train

    for precision in ("auto", "fp32"):
        cfg = TrainConfig(out=str(tmp_path / precision), epochs=1, batch_size=32, min_frequency=1, vocab_size=300,
                          progress=False, seed=0, distill_items=0, precision=precision,
                          tower=TowerConfig(d_model=32, n_heads=2))
        out = train(cfg, tiny_items[:120], KFASHION, log=lambda s: None)
        training = json.loads((out / "manifest.json").read_text())["training"]
        assert training["precision"] == ("bf16" if precision == "auto" and HAS_BF16 else "fp32")
        hist = json.loads((out / "history.json").read_text())
        assert np.isfinite(hist["loss"]).all()


def test_embed_command_names_a_bad_precision(tmp_path):
    from typer.testing import CliRunner

    from itemtower.cli import app

    res = CliRunner().invoke(app, ["embed", "--model", str(FIXTURES / "model_v0"), "--catalog",
                                   str(FIXTURES / "model_v0_catalog.jsonl"), "--out", str(tmp_path / "e.npz"),
                                   "--precision", "fp16"])
    assert res.exit_code != 0 and "precision must be one of auto, fp32, bf16" in res.output
    assert not (tmp_path / "e.npz").exists()


@pytest.mark.parametrize("setting", ["auto", "fp32"])
def test_the_service_embeds_in_ITEMTOWER_PRECISION_and_says_so(tmp_path, setting):
    import shutil

    from fastapi.testclient import TestClient

    from itemtower.serve.app import create_app
    from itemtower.serve.settings import Settings

    model = tmp_path / "model"
    shutil.copytree(FIXTURES / "model_v0", model)
    with TestClient(create_app(Settings(model_dir=model, precision=setting))) as client:
        serving = client.get("/info").json()["serving"]
        r = client.post("/embed", json={"items": [{"id": "x", "title": "linen shirt"}]})
    assert r.status_code == 200, r.text
    assert serving == {"precision": "bf16" if setting == "auto" and HAS_BF16 else "fp32"}


def test_the_service_reads_ITEMTOWER_PRECISION(monkeypatch):
    from itemtower.serve.settings import Settings

    assert Settings().precision == "auto"
    monkeypatch.setenv("ITEMTOWER_PRECISION", "fp16")
    with pytest.raises(ValueError, match="precision"):
        Settings()


def test_training_refuses_bf16_without_kernels_before_reading_anything(tmp_path, monkeypatch):
    from itemtower.training import TrainConfig, train

    monkeypatch.setattr(devmod, "bf16_supported", lambda device: False)
    cfg = TrainConfig(out=str(tmp_path / "m"), catalog=str(tmp_path / "missing.jsonl"), precision="bf16",
                      progress=False)
    with pytest.raises(ValueError, match="no bf16 matmul kernels"):  # not the missing catalog: checked first
        train(cfg)
