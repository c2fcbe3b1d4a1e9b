"""Issue 9: the budget decides the run (schedule ends at the deadline), the e5 distillation reaches only h's
semantic slice, and models saved before the slice existed load and embed as before."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from itemtower.model import ItemTower, SimilarityDistillLoss, TowerConfig, TowerSizes
from itemtower.catalog.schema import KFASHION
from itemtower.training import TrainConfig, train

TINY = dict(batch_size=32, min_frequency=1, vocab_size=300, progress=False)
TOWER = TowerConfig(d_model=16, n_heads=2)


class FakeClock:
    """perf_counter stand-in: every call moves 0.05 s on, so a 'minute' of training is a fixed number of steps
    whatever the machine's load (no timed assertion)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.05
        return self.t


def test_budget_decides_the_epochs_and_the_schedule_ends_at_the_deadline(tmp_path, tiny_items, monkeypatch):
    import itemtower.training.loop as train_mod

    from types import SimpleNamespace

    monkeypatch.setattr(train_mod, "time", SimpleNamespace(perf_counter=FakeClock()))  # train's clock only
    cfg = TrainConfig(out=str(tmp_path), max_minutes=0.5, patience=1000, lr=1e-3, distill_items=0, tower=TOWER,
                      **TINY)
    assert cfg.epochs is None and cfg.epoch_cap() is None
    logs = []
    train(cfg, tiny_items, KFASHION, log=logs.append)
    training = json.loads((tmp_path / "manifest.json").read_text())["training"]
    assert training["stopped_by"] == "time budget"
    assert training["epochs_done"] > 10  # the old 10-epoch default would have ended it sooner
    lr = json.loads((tmp_path / "history.json").read_text())["lr"]
    peak = int(np.argmax(lr))
    assert lr[peak] == pytest.approx(1e-3, rel=0.05) and 0 < peak < len(lr) // 5  # warm-up, then the peak
    assert all(b <= a + 1e-12 for a, b in zip(lr[peak:], lr[peak + 1:]))  # decays from there on
    assert lr[-1] <= 1e-3 * 0.06  # and reaches the floor (5%) at the deadline, not before the run stops
    assert lr[len(lr) * 3 // 5] > 1e-3 * 0.2  # not front-loaded: still high past half way
    assert any("training loop:" in s for s in logs)


def test_epoch_cap_rules():
    assert TrainConfig().epoch_cap() is None  # default: the 10-minute budget decides
    assert TrainConfig(max_minutes=None).epoch_cap() == 10  # neither budget nor cap: the old 10
    assert TrainConfig(epochs=4).epoch_cap() == 4
    assert TrainConfig(fast=True).epoch_cap() == 3 and TrainConfig(fast=True, epochs=2).epoch_cap() == 2
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="max_minutes"):
        TrainConfig(max_minutes=0)


def _tower(sem_dim: int = 8, sem_scale: float = 1.0) -> ItemTower:
    torch.manual_seed(0)
    return ItemTower(TowerConfig(d_model=16, n_heads=2, sem_dim=sem_dim, sem_scale=sem_scale),
                     TowerSizes(n_fields=3, n_values=20, vocab_size=50, n_types=3, max_len=12))


def _batch(b: int = 6):
    g = torch.Generator().manual_seed(1)
    t_std = torch.randint(2, 20, (b, 3, 2), generator=g)
    ids = torch.randint(1, 50, (b, 12), generator=g)
    types = torch.ones(b, 12, dtype=torch.long)
    types[:, 6:] = 2  # second half: an RE field, which the slice does not read
    types[:, 10:] = 0
    return t_std, torch.stack([ids, types], 1)


def test_sliced_distillation_reaches_only_the_slice():
    tower = _tower()
    t_std, t_re = _batch()
    loss = SimilarityDistillLoss()(tower.semantic(t_std, t_re), torch.randn(6, 5))
    loss.backward()
    touched = {n for n, p in tower.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert touched and all(n.startswith(("body.sem.", "norm.sem.")) for n in touched), touched
    assert {"body.sem.tok_emb.weight", "body.sem.value_emb.weight"} <= touched
    # the RE tokens (type 2) are not read by the slice: their embedding rows get no gradient
    re_only = set(t_re[:, 0][t_re[:, 1] == 2].tolist()) - set(t_re[:, 0][t_re[:, 1] == 1].tolist())
    assert re_only and tower.body.sem.tok_emb.weight.grad[sorted(re_only)].abs().sum() == 0


def test_h_is_main_then_scaled_slice():
    t_std, t_re = _batch()
    tower = _tower(sem_dim=8, sem_scale=2.0).eval()
    with torch.no_grad():
        h, sem = tower(t_std, t_re), tower.semantic(t_std, t_re)
    assert h.shape == (6, 2 * 16 + 8) and tower.cfg.h_dim == 40 and tower.cfg.main_dim == 32
    torch.testing.assert_close(h[:, 32:], 2.0 * sem)
    no_slice = _tower(sem_dim=0)
    assert isinstance(no_slice.norm, torch.nn.LayerNorm) and no_slice.body.sem is None
    with pytest.raises(ValueError, match="semantic slice"):
        no_slice.semantic(t_std, t_re)


def test_a_manifest_from_before_the_slice_loads_and_embeds_identically(tmp_path, tiny_items):
    """Models saved before issue 9 have no sem_dim / sem_scale in their manifest: they rebuild without a slice,
    with the same pth keys, and embed exactly as the tower that saved them."""
    from itemtower.artifacts import Embedder

    cfg = TrainConfig(out=str(tmp_path), epochs=1, distill_items=0, tower=replace(TOWER, sem_dim=0), **TINY)
    train(cfg, tiny_items, KFASHION, log=lambda s: None)
    before = Embedder.load(tmp_path).embed(tiny_items[:20])
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    for key in ("sem_dim", "sem_scale"):
        manifest["model"].pop(key)
    path.write_text(json.dumps(manifest))
    emb = Embedder.load(tmp_path)
    assert emb.tower.cfg.sem_dim == 0 and emb.dim == 32
    assert not any("sem" in k for k in torch.load(tmp_path / "tower_body.pth", weights_only=True))
    assert set(torch.load(tmp_path / "tower_norm.pth", weights_only=True)) == {"weight", "bias"}
    np.testing.assert_array_equal(emb.embed(tiny_items[:20]), before)


def test_default_training_distils_into_the_slice(tmp_path, tiny_items):
    """The defaults train a slice and distil into it (the stand-in e5 of conftest); the served h carries it."""
    from itemtower.artifacts import Embedder

    cfg = TrainConfig(out=str(tmp_path), epochs=2, distill_batch=32, tower=TOWER, **TINY)
    assert cfg.distill_items > 0 and cfg.tower.sem_dim > 0
    train(cfg, tiny_items, KFASHION, log=lambda s: None)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert len(hist["distill_loss"]) == len(hist["loss"]) > 0
    emb = Embedder.load(tmp_path)
    assert emb.dim == 2 * 16 + cfg.tower.sem_dim
    v = emb.embed(tiny_items[:5])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
