"""The semantic slice alone, trained only on the e5 teacher: which distillation settings make a good slice?

    .venv/bin/python benchmarks/distill_probe.py --catalog musinsa --student-t 0.05 0.1 0.2 0.3 --teacher-t 0.01
    .venv/bin/python benchmarks/distill_probe.py --catalog musinsa --items 6000 --student-t 0.2

A full training run costs 10 minutes and mixes the slice with NT-Xent; this probe takes a minute or two per
setting: the catalog's featurizer (fitted here, or read from --model), the seeded teacher rows training would use
(training/data.py's split_rows + teacher_rows, e5 vectors from the cache), a fresh SemanticBag + LayerNorm trained
with SimilarityDistillLoss alone (AdamW, cosine schedule, batch 256), and the slice alone scored as the table
scores the tower (defaults_table.py: Musinsa's 20,000-item sample, same category_sub among the 10 nearest; Myntra:
variant recall and same article_type). It measures how well the slice can learn the teacher, not the tower.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from defaults_table import load_catalog, score, scored_subset  # benchmarks/ is on sys.path when run from here

from itemtower.catalog.schema import infer_schema
from itemtower.encoders.text import e5_encoder
from itemtower.features.dataset import collate_items
from itemtower.features.featurize import Featurizer
from itemtower.model import SimilarityDistillLoss, TowerConfig
from itemtower.model.semantic import SemanticBag
from itemtower.training.data import split_rows, teacher_rows
from itemtower.training.task import tower_sizes


def train_slice(enc, rows, vecs, sizes, args, student_t, teacher_t):
    """A fresh slice (SemanticBag + LayerNorm) trained on the teacher rows alone; returns it in eval mode."""
    torch.manual_seed(args.seed)
    bag = SemanticBag(replace(TowerConfig(), sem_dim=args.sem_dim), sizes)
    ln = torch.nn.LayerNorm(args.sem_dim)
    opt = torch.optim.AdamW(list(bag.parameters()) + list(ln.parameters()), lr=args.lr, weight_decay=0.01)
    loss_fn, rng, target = SimilarityDistillLoss(student_t, teacher_t), np.random.default_rng(args.seed + 2), \
        torch.from_numpy(vecs)
    for s in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + np.cos(np.pi * s / args.steps))
        j = rng.choice(len(rows), min(256, len(rows)), replace=False)
        ds, dr = collate_items([enc[int(rows[k])] for k in j], args.max_text_tokens)
        loss = loss_fn(ln(bag(ds, dr)), target[j])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return bag.eval(), ln.eval()


@torch.no_grad()
def slice_vectors(bag, ln, enc, rows, max_len) -> np.ndarray:
    out = [ln(bag(*collate_items([enc[int(i)] for i in rows[b:b + 1024]], max_len))).numpy()
           for b in range(0, len(rows), 1024)]
    v = np.concatenate(out)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default="musinsa", choices=["musinsa", "myntra", "myntra-noprod"])
    ap.add_argument("--items", type=int, default=3000, help="teacher titles (TrainConfig.distill_items)")
    ap.add_argument("--student-t", type=float, nargs="+", default=[0.05, 0.2])
    ap.add_argument("--teacher-t", type=float, nargs="+", default=[0.01])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--sem-dim", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-text-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None, help="read the featurizer of a model trained on this catalog")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    items, pairs, labels = load_catalog(args.catalog)
    rows, fields, lab = scored_subset(args.catalog, items, labels)
    _, train_idx = split_rows(len(items), 0.05, args.seed)
    trows = teacher_rows(train_idx, args.items, args.seed)
    vecs = np.asarray(e5_encoder(None, progress=False, log=print, name="e5-titles")(
        [str(items[i].get("title") or "") for i in trows]), np.float32)
    fz = (Featurizer.load(args.model) if args.model else
          Featurizer.fit(items, infer_schema(items), max_text_tokens=args.max_text_tokens))
    need = sorted(set(trows.tolist()) | set(rows.tolist()))
    enc = dict(zip(need, fz.encode([items[i] for i in need])))
    print(f"catalog {args.catalog}: {len(items)} items, {len(trows)} teacher titles, "
          f"{time.perf_counter() - t0:.0f}s", flush=True)
    for tt in args.teacher_t:
        for st in args.student_t:
            t = time.perf_counter()
            bag, ln = train_slice(enc, trows, vecs, tower_sizes(fz), args, st, tt)
            res = score(slice_vectors(bag, ln, enc, rows, fz.max_text_tokens), items, rows, fields, pairs, lab)
            res = {k: v for k, v in res.items() if k != "search_seconds"}
            print(json.dumps({"student_t": st, "teacher_t": tt, "items": len(trows), "steps": args.steps,
                              "seconds": round(time.perf_counter() - t), **res}), flush=True)


if __name__ == "__main__":
    main()
