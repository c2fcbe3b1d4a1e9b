"""The embed path's options, one at a time, on the same items in one run (issue 13, BENCHMARKS.md 14): model-only
items/s (speed_parts.model_only: length-sorted batches, inference_mode, median of --repeats) for torch threads,
batch size and bf16 autocast, each against the default (2 threads, batch 256, fp32) measured in the same run.

    nice -n 10 .venv/bin/python benchmarks/speed_options.py --items 3000

The model is built as benchmarks/speed.py builds it (Myntra, default architecture, in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_parts as sp  # noqa: E402
from speed import ROOT, _myntra  # noqa: E402

OPTIONS = [("default: 2 threads, batch 256, fp32", 2, 256, False), ("1 thread", 1, 256, False),
           ("batch 64", 2, 64, False), ("1 thread, batch 64", 1, 64, False), ("bf16 autocast", 2, 256, True),
           ("bf16, 1 thread", 1, 256, True), ("default again", 2, 256, False)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "speed_options.json")
    args = ap.parse_args()
    from itemtower.artifacts import Embedder

    with tempfile.TemporaryDirectory(prefix="itemtower-speedopt-") as tmp:
        items, _ = _myntra(Path(tmp))
        model_dir, featurizer, encoded, _ = sp.build_model(items, Path(tmp) / "model", lambda s: None)
        emb = Embedder.load(model_dir)
        enc = encoded[: args.items]
        rows = []
        for name, threads, bs, bf16 in OPTIONS:
            torch.set_num_threads(threads)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                r = sp.model_only(emb, enc, bs, args.repeats)
            r.update(option=name, bf16=bf16)
            rows.append(r)
            print(f"{name}: {r['items_s']:.0f} items/s ({r['gflops']:.1f} GFLOP/s), load {r['load']}", flush=True)
    base = rows[0]["items_s"]
    for r in rows:
        r["vs_default"] = r["items_s"] / base
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows},
                                   indent=2))


if __name__ == "__main__":
    main()
