"""A against B in one run, interleaved (issue 13, BENCHMARKS.md 14e): the cross-attention's two forms
(model/attention.py: "mha" = nn.MultiheadAttention's forward, "input" = keys/values never projected) for the
model-only forward and the training step, and AdamW's implementations (for-loop, foreach, fused) for the step.

    nice -n 10 .venv/bin/python benchmarks/speed_ab.py --items 3000 --reps 5 --train-steps 6
    nice -n 10 .venv/bin/python benchmarks/speed_ab.py --block-only --reps 15 --out runs/bench/speed_ab_block.json

Paired and interleaved at the finest grain (the machine is shared and drifts by 2-3x within minutes): the model's
forms alternate batch by batch, the training variants take turns step by step on the same batch. The table gives
each variant's median (items/s over reps; seconds over steps) and the median of its paired ratio to the first.
The model is built as benchmarks/speed.py builds it (Myntra, default architecture, untrained weights, in a
temporary folder). Results: runs/bench/speed_ab.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_parts as sp  # noqa: E402
from speed import ROOT, _myntra  # noqa: E402

MODEL_VARIANTS = ["mha", "input"]
TRAIN_VARIANTS = [("mha", "for-loop"), ("input", "for-loop"), ("input", "foreach"), ("input", "fused")]


def _set_form(tower, form: str) -> None:
    for blk in tower.body.blocks:
        blk.form = form


def _optimizer(params, cfg, kind: str):
    extra = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)


def _block_paired(reps: int, B: int = 256, Fq: int = 20, S: int = 108, D: int = 256, H: int = 4) -> dict:
    """The cross-attention block alone (model/attention.py) on random inputs of the Myntra shape (B items, F STD
    queries, S = 1 + mean text length, the default d_model and heads), forms alternating call by call: forward
    (inference_mode) and forward + backward, seconds per call, median of `reps` pairs."""
    from itemtower.model import TowerConfig
    from itemtower.model.attention import CrossBlock

    torch.manual_seed(0)
    blk = CrossBlock(TowerConfig(d_model=D, n_heads=H)).train()
    q, kv = torch.randn(B, Fq, D, requires_grad=True), torch.randn(B, S, D, requires_grad=True)
    pad = torch.rand(B, S) < 0.1
    pad[:, 0] = False
    out: dict = {"shape": {"B": B, "F": Fq, "S": S, "D": D, "H": H}}
    for name, grad in (("forward", False), ("forward_backward", True)):
        pairs = []
        for k in range(reps + 1):
            row = [0.0, 0.0]
            for v in ((0, 1) if k % 2 == 0 else (1, 0)):
                blk.form = MODEL_VARIANTS[v]
                t = time.perf_counter()
                if grad:
                    blk(q, kv, pad)[0].sum().backward()
                else:
                    with torch.inference_mode():
                        blk(q, kv, pad)
                row[v] = time.perf_counter() - t
            if k:  # the first pair warms up
                pairs.append(row)
        out[name] = _summarise(MODEL_VARIANTS, pairs, higher_is_better=False)
        print(f"block {name}: " + ", ".join(f"{r['variant']} {r['median'] * 1000:.0f} ms" for r in out[name])
              + f", ratio {out[name][1]['ratio_vs_first_median']:.2f}", flush=True)
    return out


def _model_paired(tower, batches, reps: int) -> list[list[float]]:
    """Per rep, seconds of the forward over all batches for each form, the forms alternating batch by batch (the
    order flipped every batch): whatever the machine does during a batch, both forms see it."""
    out = []
    for _ in range(reps):
        tot = [0.0] * len(MODEL_VARIANTS)
        for k, b in enumerate(batches):
            order = range(len(MODEL_VARIANTS)) if k % 2 == 0 else reversed(range(len(MODEL_VARIANTS)))
            for v in order:
                _set_form(tower, MODEL_VARIANTS[v])
                t = time.perf_counter()
                with torch.inference_mode():
                    tower(*b)
                tot[v] += time.perf_counter() - t
        out.append(tot)
    return out


def _train_paired(items, featurizer, encoded, steps: int) -> list[list[float]]:
    """Per step, seconds of one default training step for each variant (form, AdamW kind), the variants taking
    turns step by step on the same batch (order rotated every step); each variant its own tower (same seed) and
    optimizer. The first round warms up and is dropped."""
    from itemtower.training.config import TrainConfig
    from itemtower.training.data import build_data
    from itemtower.training.task import TrainTask, new_tower

    cfg = TrainConfig(progress=False)
    data = build_data(items, featurizer, encoded, cfg, lambda s: None)
    teacher = sp.fake_teacher(data.train_idx, cfg)
    runs = []
    for form, kind in TRAIN_VARIANTS:
        torch.manual_seed(0)
        task = TrainTask(new_tower(cfg, featurizer), cfg, teacher)
        _set_form(task.tower, form)
        params = task.trainable()
        runs.append((task.train(), _optimizer(params, cfg, kind), params))
    it = iter(data.loader)
    rows = []
    for k in range(steps + 1):
        batch = next(it)
        row = [0.0] * len(runs)
        for j in range(len(runs)):
            v = (j + k) % len(runs)
            task, opt, params = runs[v]
            row[v] = sp.one_step(task, opt, params, cfg, data, batch)
        if k:
            rows.append(row)
        print(f"step {k}: {[round(x, 2) for x in row]} load {sp.load()}", flush=True)
    return rows


def _summarise(names: list[str], per_rep: list[list[float]], higher_is_better: bool) -> list[dict]:
    rows = []
    for k, name in enumerate(names):
        vals = [rep[k] for rep in per_rep]
        ratios = [rep[k] / rep[0] if higher_is_better else rep[0] / rep[k] for rep in per_rep]
        rows.append({"variant": name, "median": statistics.median(vals), "values": vals,
                     "ratio_vs_first_median": statistics.median(ratios), "ratios": ratios})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=3000, help="model-only over the first N encoded items")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=6, help="timed steps per variant (0: skip)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "speed_ab.json")
    ap.add_argument("--block-only", action="store_true", help="only the attention block on random inputs (seconds)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.block_only:
        res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": torch.get_num_threads(),
               "load_start": sp.load(), "block": _block_paired(args.reps)}
        res["load_end"] = sp.load()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2))
        return
    from itemtower.artifacts import Embedder

    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": torch.get_num_threads(),
                 "load_start": sp.load()}
    with tempfile.TemporaryDirectory(prefix="itemtower-speedab-") as tmp:
        items, _ = _myntra(Path(tmp))
        model_dir, featurizer, encoded, _ = sp.build_model(items, Path(tmp) / "model", lambda s: None)
        emb = Embedder.load(model_dir)
        enc = encoded[: args.items]
        from itemtower.features.dataset import collate_items

        lens = sp.text_lengths(enc, featurizer.max_text_tokens)
        order = np.argsort(lens, kind="stable")
        batches = [collate_items([enc[i] for i in order[s:s + 256]], featurizer.max_text_tokens)
                   for s in range(0, len(enc), 256)]
        model_reps = _model_paired(emb.tower, batches, args.reps)
        for rep, row in enumerate(model_reps):
            print(f"rep {rep} model items/s {[round(len(enc) / x) for x in row]}", flush=True)
        res["model"] = _summarise(MODEL_VARIANTS, [[len(enc) / x for x in row] for row in model_reps], True)
        res["model_items"] = len(enc)
        if args.train_steps:
            rows = _train_paired(items, featurizer, encoded, args.train_steps)
            res["train"] = _summarise([f"{f} + AdamW {o}" for f, o in TRAIN_VARIANTS], rows, False)
    res["load_end"] = sp.load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    for part in ("model", "train"):
        for r in res.get(part, []):
            print(f"{part}: {r['variant']}: median {r['median']:.3f}, ratio vs first {r['ratio_vs_first_median']:.2f}")


if __name__ == "__main__":
    main()
