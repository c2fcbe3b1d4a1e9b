"""Distillation and the e5 comparison: score the tower and e5 on the sample items e5 never taught.

A tower trained with `distill_items` saw e5's vectors of that many training titles; if those items are in the
scored sample, the student is scored partly on its teacher's own answers. This re-scores the Musinsa 20,000-item
sample of text_baselines.py without them: every method on the same remaining items.

    .venv/bin/python benchmarks/teacher_overlap.py --model runs/bench/musinsa_e5_kd/model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from quality import HIDDEN_ANSWER_KEYS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", required=True)
    ap.add_argument("--sample", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "cache")
    args = ap.parse_args()

    from itemtower.encoders import text as te
    from itemtower.catalog.adapters import musinsa
    from itemtower.artifacts import Embedder
    from itemtower.evaluation.evaluate import score_embeddings
    from itemtower.training import split_rows, teacher_rows

    items = musinsa.convert(DATA / "musinsa").items
    labels_all = {f: [(it["std"].pop(f, None) or [None])[0] for it in items] for f in HIDDEN_ANSWER_KEYS["musinsa"]}
    sel = np.sort(np.random.default_rng(args.seed).choice(len(items), size=args.sample, replace=False))
    titles = [str(items[i].get("title") or "") for i in sel]
    name = "e5-musinsa-title"
    if not te.cache_path(name, titles, args.cache_dir).is_file():
        sys.exit("no cached e5 vectors of the sample: run text_baselines.py --catalog musinsa --texts title "
                 f"--encoders e5 --sample {args.sample} first")
    e5 = te.cached(name, titles, None, args.cache_dir, log=None)
    for model_dir in args.model:
        cfg = json.loads((model_dir / "train_config.json").read_text())
        _, train_idx = split_rows(len(items), cfg["val_frac"], cfg["seed"])  # as train_items drew them
        taught = set(teacher_rows(train_idx, cfg["distill_items"], cfg["seed"]).tolist()) \
            if cfg.get("distill_items") else set()
        keep = np.array([i not in taught for i in sel])
        sub = [items[i] for i in sel[keep]]
        labels = {"category_sub": [labels_all["category_sub"][i] for i in sel[keep]]}
        h = Embedder.load(model_dir).embed(sub)
        row = {"items": int(keep.sum()), "taught_in_sample": int((~keep).sum())}
        row["tower"] = score_embeddings(h, sub, [], None, labels=labels)["consistency@10:category_sub"]
        row["e5"] = score_embeddings(e5[keep], sub, [], None, labels=labels)["consistency@10:category_sub"]
        print(f"{model_dir}: " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
