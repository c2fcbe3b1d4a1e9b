"""fp32 against bf16 autocast on this CPU, paired (issue 13): the training step and the model-only forward.

    nice -n 10 .venv/bin/python benchmarks/speed_bf16.py --train-steps 8 --items 3000 --reps 3

The model is built as benchmarks/speed.py builds it (Myntra, default architecture, untrained weights, in a
temporary folder). Training: two towers from the same seed, one per precision, taking turns step by step on the
same batch (order flipped every step; the first round warms up). Forward: batch by batch, alternating, at batch
256 and 64. The table gives each variant's median and the median of its paired ratio to fp32 (speed-up > 1 =
faster). Results: runs/bench/speed_bf16.json.
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


def _train_paired(items, featurizer, encoded, steps: int) -> list[list[float]]:
    from itemtower.training.config import TrainConfig
    from itemtower.training.data import build_data
    from itemtower.training.loop import adamw
    from itemtower.training.task import TrainTask, new_tower

    cfg = TrainConfig(progress=False)
    data = build_data(items, featurizer, encoded, cfg, lambda s: None)
    teacher = sp.fake_teacher(data.train_idx, cfg)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        task = TrainTask(new_tower(cfg, featurizer), cfg, teacher)
        params = task.trainable()
        runs.append((task.train(), adamw(params, cfg), params))
    it = iter(data.loader)
    rows = []
    for k in range(steps + 1):
        batch = next(it)
        row = [0.0, 0.0]
        for v in ((0, 1) if k % 2 == 0 else (1, 0)):
            task, opt, params = runs[v]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v == 1):
                row[v] = sp.one_step(task, opt, params, cfg, data, batch)
        if k:
            rows.append(row)
        print(f"step {k}: fp32 {row[0]:.2f} s, bf16 {row[1]:.2f} s, load {sp.load()}", flush=True)
    return rows


def _forward_paired(tower, batches, reps: int) -> list[list[float]]:
    out = []
    for _ in range(reps):
        tot = [0.0, 0.0]
        for k, b in enumerate(batches):
            for v in ((0, 1) if k % 2 == 0 else (1, 0)):
                t = time.perf_counter()
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=v == 1):
                    tower(*b)
                tot[v] += time.perf_counter() - t
        out.append(tot)
    return out


def _summary(per_rep: list[list[float]], seconds: bool) -> dict:
    f, b = [r[0] for r in per_rep], [r[1] for r in per_rep]
    return {"fp32_median": statistics.median(f), "bf16_median": statistics.median(b),
            "speedup_median": statistics.median([x / y for x, y in zip(f, b)] if seconds else
                                                [y / x for x, y in zip(f, b)]),
            "fp32": f, "bf16": b}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "speed_bf16.json")
    args = ap.parse_args()
    from itemtower.artifacts import Embedder
    from itemtower.features.dataset import collate_items

    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": torch.get_num_threads(),
                 "load_start": sp.load(), "limit": sp.matmul_limit()}
    with tempfile.TemporaryDirectory(prefix="itemtower-bf16-") as tmp:
        items, _ = _myntra(Path(tmp))
        model_dir, featurizer, encoded, _ = sp.build_model(items, Path(tmp) / "model", lambda s: None)
        tower = Embedder.load(model_dir).tower
        enc = encoded[: args.items]
        order = np.argsort(sp.text_lengths(enc, featurizer.max_text_tokens), kind="stable")
        for bs in (256, 64):
            batches = [collate_items([enc[i] for i in order[s:s + bs]], featurizer.max_text_tokens)
                       for s in range(0, len(enc), bs)]
            reps = [[len(enc) / x for x in row] for row in _forward_paired(tower, batches, args.reps)]
            res[f"forward_b{bs}"] = _summary(reps, seconds=False)
            print(f"forward batch {bs}: items/s {res[f'forward_b{bs}']}", flush=True)
        if args.train_steps:
            res["train"] = _summary(_train_paired(items, featurizer, encoded, args.train_steps), seconds=True)
            print(f"train: {res['train']}", flush=True)
    res["load_end"] = sp.load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
