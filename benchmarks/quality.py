"""Quality benchmark: convert a real catalog, train the tower under a time budget, evaluate against baselines.

    .venv/bin/python benchmarks/quality.py --catalog myntra --minutes 5 --out runs/bench/myntra
    .venv/bin/python benchmarks/quality.py --catalog myntra --minutes 3 --set d_model=128 --set pool=text --tag d128

Reads ../shared/data (never copied into the repository). Training stays self-supervised: Myntra's colour variants
are only the answer key (no `group` is set). Writes OUT/report.json, OUT/report.md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _parse_set(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        k, _, v = p.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", choices=["myntra", "musinsa"], default="myntra")
    ap.add_argument("--minutes", type=float, default=5.0, help="training budget")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], help="TrainConfig override, e.g. d_model=128")
    ap.add_argument("--views", action="append", default=[], help="ViewConfig override, e.g. std_mask_p=0")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--hide", action="append", default=None,
                    help="STD field removed from the items (model and baselines) and kept only as an answer key; "
                         "default for musinsa: category_main and category_sub")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from itemtower.adapters import musinsa, myntra
    from itemtower.data.views import ViewConfig
    from itemtower.evaluate import evaluate, format_table, save_report
    from itemtower.schema import infer_schema
    from itemtower.train import TrainConfig, train_items

    src = DATA / args.catalog
    if not src.is_dir():
        sys.exit(f"{src} not found: this benchmark needs ../shared/data next to the repository")
    t = time.perf_counter()
    conv = myntra.convert(src) if args.catalog == "myntra" else musinsa.convert(src)
    items, pairs = conv.items, conv.pairs or None
    print(f"converted {len(items)} items, {len(conv.pairs)} pairs in {time.perf_counter() - t:.1f}s")
    hide = args.hide if args.hide is not None else (["category_main", "category_sub"]
                                                     if args.catalog == "musinsa" else [])
    labels = {f: [(it["std"].pop(f, None) or [None])[0] for it in items] for f in hide}
    if hide:
        print(f"hidden from the model and the baselines, kept as answer keys: {hide}")
    out = args.out or ROOT / "runs" / "bench" / args.catalog
    views = ViewConfig(**_parse_set(args.views))
    cfg = TrainConfig(out=str(out / "model"), max_minutes=args.minutes, epochs=args.epochs, seed=args.seed,
                      use_groups=False, views=views, **_parse_set(args.set))
    t = time.perf_counter()
    train_items(items, infer_schema(items), cfg)
    train_s = time.perf_counter() - t
    fields = [f for f in (["article_type"] if args.catalog == "myntra" else ["category_sub"]) if f not in hide]
    rep = evaluate(out / "model", items, pairs, fields=fields, with_baselines=not args.no_baselines, labels=labels)
    rep["train_seconds_total"] = round(train_s, 1)
    rep["config"] = cfg.to_dict()
    save_report(rep, out)
    print(format_table(rep))
    print(json.dumps({"other_view": rep["other_view"], "unk_rate": rep["unk_rate"], "train_s": train_s}))


if __name__ == "__main__":
    main()
