"""Training throughput, 1 process against `torchrun --nproc_per_node=N` (issue 14), same global batch.

    .venv/bin/python benchmarks/ddp_train.py --demo 3000 --procs 2 --reps 3

Runs `itemtower train` and `torchrun --standalone --nproc_per_node=N -m itemtower train` on the same demo catalog
with the same flags, alternately (1, 1t, N, 1, 1t, N, ...: the machine's other load falls on all alike), and
reads the items/s of the last epoch from the log (every rank's items; the first epoch also pays for warm-up). One
process uses all cores as torch threads; N processes share them (cores / N threads each, what training/distributed.py
sets); "1t" is one process held to one thread. Prints one JSON line per run, then the medians, the ratios and
the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# "1t": one process held to one torch thread (train() sets all cores; this pins it at 1 first): it tells the gain
# of N processes from the gain of not synchronising OpenMP threads on a busy machine.
_ONE_THREAD = ("import sys, torch; torch.set_num_threads(1); torch.set_num_threads = lambda n: None; "
               "from itemtower.cli import app; app(args=sys.argv[1:], prog_name='itemtower')")


def _run(procs: int | str, catalog: Path, out: Path, flags: list[str]) -> dict:
    train = ["train", "--catalog", str(catalog), "--out", str(out), "--no-progress", *flags]
    if procs == 1:
        cmd = [str(BIN / "itemtower"), *train]
    elif procs == "1t":
        cmd = [sys.executable, "-c", _ONE_THREAD, *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               "-m", "itemtower", *train]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    rates = [float(m) for m in re.findall(r"epoch \d+: .*?, (\d+) items/s", proc.stdout)]
    return {"procs": procs, "items_s": rates[-1], "epochs_items_s": rates, "wall_s": round(wall, 1),
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=int, default=3000, help="demo catalog size")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--flags", default="--epochs 2 --batch-size 256 --distill-items 0 --seed 0",
                    help="train flags for every run (distillation off: no teacher encode in the timing)")
    args = ap.parse_args()
    from itemtower.catalog.demo import generate

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ddp-bench-") as tmp:
        catalog = Path(tmp) / "catalog.jsonl"
        catalog.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in generate(args.demo, 0)),
                           encoding="utf-8")
        runs = []
        for rep in range(args.reps):
            for procs in (1, "1t", args.procs):
                r = _run(procs, catalog, Path(tmp) / f"m{procs}_{rep}", args.flags.split())
                print(json.dumps(r), flush=True)
                runs.append(r)
    med = {p: statistics.median(r["items_s"] for r in runs if r["procs"] == p) for p in (1, "1t", args.procs)}
    print(json.dumps({"median_items_s": med, "ratio": round(med[args.procs] / med[1], 2),
                      "ratio_vs_1t": round(med[args.procs] / med["1t"], 2), "cores": os.cpu_count(),
                      "load_before": load_before, "load_after": os.getloadavg(), "flags": args.flags,
                      "demo": args.demo}))


if __name__ == "__main__":
    main()
