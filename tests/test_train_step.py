"""The training step's speed changes (issue 13) change no update: AdamW's foreach implementation (training/loop.py
adamw) against the for-loop one, and a resumed run keeps foreach."""

from __future__ import annotations

import torch

from itemtower.training.config import TrainConfig
from itemtower.training.loop import adamw


def test_foreach_adamw_updates_as_the_for_loop_does():
    cfg = TrainConfig()
    torch.manual_seed(0)
    shapes = [(50, 8), (8,), (8, 8), (1,)]
    start = [torch.randn(s) for s in shapes]
    runs = []
    for make in (lambda p: adamw(p, cfg),
                 lambda p: torch.optim.AdamW(p, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)):
        params = [torch.nn.Parameter(t.clone()) for t in start]
        opt = make(params)
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            opt.zero_grad(set_to_none=True)
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        runs.append(params)
    assert runs[0][0].data.ne(start[0]).any()
    for a, b in zip(*runs):
        torch.testing.assert_close(a.data, b.data, atol=1e-6, rtol=1e-6)
    assert adamw([torch.nn.Parameter(torch.zeros(1))], cfg).param_groups[0]["foreach"] is True


def test_resumed_run_keeps_foreach(tiny_items, tmp_path):
    """resume.pt's optimizer groups override the new optimizer's settings; the loop sets foreach back."""
    from itemtower.model import TowerConfig
    from itemtower.training import train

    seen = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **kw):
        seen.append(self.param_groups[0]["foreach"])
        return orig(self, *a, **kw)

    cfg = TrainConfig(out=str(tmp_path / "m"), epochs=1, batch_size=32, min_frequency=1, vocab_size=300,
                      progress=False, seed=0, distill_items=0, max_minutes=None, tower=TowerConfig(d_model=16, n_heads=2))
    train(cfg, items=tiny_items[:100])
    ckpt = torch.load(tmp_path / "m" / "resume.pt", weights_only=False)
    for g in ckpt["optimizer"]["param_groups"]:
        g["foreach"] = None  # as a resume.pt from before this change
    torch.save(ckpt, tmp_path / "m" / "resume.pt")
    torch.optim.AdamW.step = spy
    try:
        from dataclasses import replace

        train(replace(cfg, epochs=2, resume=True), items=tiny_items[:100])
    finally:
        torch.optim.AdamW.step = orig
    assert seen and all(f is True for f in seen)
