"""Quality benchmark: convert a real catalog, train the tower under a time budget, evaluate against baselines.

    .venv/bin/python benchmarks/quality.py --catalog myntra --minutes 5 --out runs/bench/myntra
    .venv/bin/python benchmarks/quality.py --catalog myntra --minutes 3 --set d_model=128 --set pool=text --tag d128

Reads ../shared/data (never copied into the repository). Training stays self-supervised: Myntra's colour variants
are only the answer key (no `group` is set). Writes OUT/report.json, OUT/report.md and prints the table.

Variants of the run (each recorded in report.json under "benchmark"):
    --no-product-fields   Myntra as the first adapter converted it (no price point, no variantName)
    --reinforce           run `itemtower reinforce` (lexicon + kiwipiepy) on the items first; the baselines see the
                          same reinforced items
    --groups-half         supervised: the colour-variant groups are split in two halves by a seeded hash; items of
                          the first half get `group` (same label in the loss), only pairs of the second half are scored
    --heldout-pairs       score only the second half's pairs, no groups: the self-supervised reference for
                          --groups-half
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


# answer keys hidden from the model and every baseline by default (text_baselines.py uses the same list)
HIDDEN_ANSWER_KEYS = {"myntra": [], "musinsa": ["category_main", "category_sub"]}

# h-vs-z linear probes (hidden answer keys are probed too)
PROBE_FIELDS = {"myntra": ["article_type", "base_colour", "gender", "usage", "brand"], "musinsa": ["brand"]}


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
    ap.add_argument("--product-fields", action=argparse.BooleanOptionalAction, default=True,
                    help="Myntra: price point + variantName as features")
    ap.add_argument("--reinforce", action="store_true", help="reinforce the items (lexicon + kiwipiepy) first")
    ap.add_argument("--groups-half", action="store_true", help="supervised on half of the variant groups")
    ap.add_argument("--heldout-pairs", action="store_true", help="score only the held-out half's pairs")
    args = ap.parse_args()

    from itemtower.catalog.adapters import musinsa, myntra
    from itemtower.features.views import ViewConfig
    from itemtower.evaluation.evaluate import evaluate, format_table, save_report
    from itemtower.catalog.schema import infer_schema
    from itemtower.training import TrainConfig, train

    src = DATA / args.catalog
    if not src.is_dir():
        sys.exit(f"{src} not found: this benchmark needs ../shared/data next to the repository")
    t = time.perf_counter()
    conv = (myntra.convert(src, with_groups=args.groups_half or args.heldout_pairs,
                           product_fields=args.product_fields)
            if args.catalog == "myntra" else musinsa.convert(src))
    items, pairs = conv.items, conv.pairs or None
    print(f"converted {len(items)} items, {len(conv.pairs)} pairs in {time.perf_counter() - t:.1f}s")
    use_groups = False
    if args.groups_half or args.heldout_pairs:
        if not pairs:
            sys.exit("--groups-half / --heldout-pairs need a catalog with variant pairs (myntra)")
        items, pairs = _split_groups(items, pairs, keep_groups=args.groups_half, seed=args.seed)
        use_groups = args.groups_half
    if args.reinforce:
        from itemtower.enrich.reinforce import format_summary, reinforce

        items, summary = reinforce(items)
        print(format_summary(summary))
    hide = args.hide if args.hide is not None else HIDDEN_ANSWER_KEYS[args.catalog]
    labels = {f: [(it["std"].pop(f, None) or [None])[0] for it in items] for f in hide}
    if hide:
        print(f"hidden from the model and the baselines, kept as answer keys: {hide}")
    out = args.out or ROOT / "runs" / "bench" / args.catalog
    views = ViewConfig(**_parse_set(args.views))
    cfg = TrainConfig.from_dict(dict(out=str(out / "model"), max_minutes=args.minutes, epochs=args.epochs,
                                     seed=args.seed, use_groups=use_groups, views=views,
                                     **_parse_set(args.set)))  # --set d_model=128: tower knobs may be flat
    t = time.perf_counter()
    train(cfg, items, infer_schema(items))
    train_s = time.perf_counter() - t
    fields = [f for f in (["article_type"] if args.catalog == "myntra" else ["category_sub"]) if f not in hide]
    probe = [f for f in PROBE_FIELDS.get(args.catalog, []) if f not in hide]  # + the hidden answer keys
    rep = evaluate(out / "model", items, pairs, fields=fields, with_baselines=not args.no_baselines, labels=labels,
                   probe_fields=probe)
    rep["train_seconds_total"] = round(train_s, 1)
    rep["config"] = cfg.to_dict()
    rep["benchmark"] = {"catalog": args.catalog, "minutes": args.minutes, "product_fields": args.product_fields,
                        "reinforce": args.reinforce, "groups_half": args.groups_half,
                        "heldout_pairs": args.heldout_pairs, "n_pairs_scored": len(pairs or []), "hidden": hide}
    save_report(rep, out)
    print(format_table(rep))
    print(json.dumps({"other_view": rep["other_view"], "unk_rate": rep["unk_rate"], "train_s": train_s}))


def _split_groups(items: list[dict], pairs: list[tuple[str, str]], keep_groups: bool,
                  seed: int) -> tuple[list[dict], list[tuple[str, str]]]:
    """Split the variant groups in two halves by a seeded hash of the group id. Returns the items (with `group`
    only on first-half items when keep_groups, else none) and the pairs of the second half (the scored ones)."""
    import hashlib

    def first_half(group: str) -> bool:
        return hashlib.sha1(f"{seed}:{group}".encode()).digest()[0] < 128

    group_of = {it["id"]: it.get("group") for it in items}
    held = [(a, b) for a, b in pairs if group_of.get(a) is not None and not first_half(group_of[a])]
    out = []
    for it in items:
        it = dict(it)
        g = it.pop("group", None)
        if keep_groups and g is not None and first_half(g):
            it["group"] = g
        out.append(it)
    n_train = sum("group" in it for it in out)
    print(f"groups split: {len(held)} held-out pairs scored; {n_train} items carry a training group")
    return out, held


if __name__ == "__main__":
    main()
