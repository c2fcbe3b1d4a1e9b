"""Ablations on Myntra: train one variant per spec under the same time budget, score variant retrieval.

    .venv/bin/python benchmarks/ablate.py --minutes 3 \
        'base={}' 't0.1={"temperature": 0.1}' 'dropout-only={"views": "none"}' 'corr={"views": {"corr_mask_p": 0.5}}'

Each spec is NAME=JSON of TrainConfig overrides; "views" takes a dict of ViewConfig overrides, or "none" for the
identity view (model dropout only, SimCSE unsupervised). Self-supervised: no `group`, the colour variants are only
the answer key. Appends one JSON line per variant to runs/bench/ablate.jsonl and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="+", help="NAME=JSON")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "ablate.jsonl")
    ap.add_argument("--product-fields", action=argparse.BooleanOptionalAction, default=True,
                    help="Myntra price point + variantName as features (--no-product-fields: the first adapter)")
    args = ap.parse_args()

    from itemtower.evaluation import metrics as M
    from itemtower.catalog.adapters import myntra
    from itemtower.artifacts import Embedder
    from itemtower.features.views import ViewConfig
    from itemtower.catalog.schema import infer_schema
    from itemtower.training import TrainConfig, train

    conv = myntra.convert(DATA / "myntra", product_fields=args.product_fields)
    items, pairs = conv.items, conv.pairs
    ids = [it["id"] for it in items]
    labels = [(it["std"].get("article_type") or [None])[0] for it in items]
    schema = infer_schema(items)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.specs:
        name, _, js = spec.partition("=")
        kw = json.loads(js or "{}")
        views = kw.pop("views", {})
        kw["views"] = ViewConfig.none() if views == "none" else ViewConfig(**views)
        cfg = TrainConfig.from_dict(dict(out=str(ROOT / "runs" / "bench" / "ablate" / name), max_minutes=args.minutes,
                                         epochs=50, seed=args.seed, use_groups=False, progress=False, **kw))
        t = time.perf_counter()
        train(cfg, items, schema, log=lambda s: None)
        train_s = time.perf_counter() - t
        emb = Embedder.load(cfg.out).embed(items)
        idx, _ = M.top_k(emb, 50)
        pm = M.pair_metrics(idx, ids, pairs)
        hist = json.loads((Path(cfg.out) / "history.json").read_text())
        row = {"name": name, "overrides": js, "product_fields": args.product_fields, "minutes": args.minutes, "steps": len(hist["loss"]),
               "train_s": round(train_s, 1), **{k: round(pm[k], 4) for k in ("recall@10", "recall@50", "ndcg@10",
                                                                              "mrr@10")},
               "consistency@10:article_type": round(M.attribute_consistency(idx, labels, 10), 4)}
        rows.append(row)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    cols = ["steps", "recall@10", "recall@50", "ndcg@10", "mrr@10", "consistency@10:article_type"]
    print("| variant | overrides | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['name']} | `{r['overrides']}` | " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
