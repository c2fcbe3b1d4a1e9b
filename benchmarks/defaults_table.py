"""One table for issue 9: every catalog x {new defaults, old defaults, baselines}, one training per cell.

    .venv/bin/python benchmarks/defaults_table.py --catalogs myntra,myntra-noprod,musinsa --presets new,old \
        --minutes 10 --cold-teacher --out runs/i9/table
    .venv/bin/python benchmarks/defaults_table.py --table --out runs/i9/table     # print what OUT holds

Catalogs (from ../shared/data, never copied into the repository):
    myntra          the Myntra adapter's items (price point + variant name); relevance: the 9,275 colour-variant
                    pairs; every item scored
    myntra-noprod   the same without the two retailer fields (`--no-product-fields`), same pairs
    musinsa         category_main / category_sub hidden from the model and every baseline (answer keys only);
                    trained on all 89,820 items, scored on text_baselines.py's seeded 20,000-item sample (same seed,
                    same items as BENCHMARKS.md section 2, whose e5 figure the table quotes unless runs/cache has e5's
                    vectors of the sample)
Presets: "new" = TrainConfig() as it is (the defaults a user gets), "old" = the defaults before issue 9 (10-epoch
cap, no distillation, no semantic slice). Both run under the same --minutes budget, counted from the items to the
model (featurizer and teacher encode included). `--cold-teacher` gives each run a fresh e5 cache, so the encode of
the teacher's titles is inside the budget as for a first-time user; without it ~/.cache/itemtower is used.
With a semantic slice the model is also scored with the slice reweighted (`--sem-scales`: the served cosine with
sem_scale s, post hoc on the same trained weights), which is how the default sem_scale was chosen.

Baselines are deterministic: computed once per catalog and kept in OUT/baselines-<catalog>.json.
Each training cell writes OUT/<catalog>-<preset>/ (model, result.json); the table is rebuilt from what OUT holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from quality import DATA, HIDDEN_ANSWER_KEYS, ROOT, _parse_set  # benchmarks/ is on sys.path when a script here runs

OLD_DEFAULTS = {"epochs": 10, "distill_items": 0, "sem_dim": 0}
E5_TITLE_SAMPLE = {"consistency@10:category_sub": 0.797, "source": "BENCHMARKS.md section 2 (same 20,000-item sample)"}
MUSINSA_SAMPLE, SAMPLE_SEED = 20000, 0


def load_catalog(name: str) -> tuple[list[dict], list | None, dict | None]:
    """(items, pairs, labels): items as the benchmark's models and baselines see them."""
    from itemtower.catalog.adapters import musinsa, myntra

    if name.startswith("myntra"):
        conv = myntra.convert(DATA / "myntra", product_fields=name == "myntra")
        return conv.items, conv.pairs, None
    conv = musinsa.convert(DATA / "musinsa")
    items = conv.items
    labels = {f: [(it["std"].pop(f, None) or [None])[0] for it in items] for f in HIDDEN_ANSWER_KEYS["musinsa"]}
    return items, None, labels


def scored_subset(name: str, items: list[dict], labels: dict | None):
    """(rows, fields, labels of those rows) that the table scores: all of Myntra, Musinsa's seeded sample."""
    if not name.startswith("musinsa"):
        return np.arange(len(items)), ["article_type"], None
    sel = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(items), size=MUSINSA_SAMPLE, replace=False))
    return sel, [], {f: [v[i] for i in sel] for f, v in labels.items()}


def score(emb: np.ndarray, items: list[dict], rows, fields, pairs, labels) -> dict:
    from itemtower.evaluation.evaluate import score_embeddings

    sub = [items[i] for i in rows]
    if pairs:
        keep = {it["id"] for it in sub}
        pairs = [(a, b) for a, b in pairs if a in keep and b in keep]
    return score_embeddings(emb, sub, fields, pairs, labels=labels)


def baselines(name: str, items, rows, fields, pairs, labels, out: Path) -> dict:
    """TF-IDF (title, all text), one-hot and, on Musinsa, e5 of the titles: computed once, then read back."""
    path = out / f"baselines-{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    from itemtower.evaluation import baselines as bl
    from itemtower.encoders import text as te

    sub = [items[i] for i in rows]
    res = {"one-hot std": score(bl.onehot_embeddings(sub), items, rows, fields, pairs, labels),
           "TF-IDF char 2-4, title": score(bl.tfidf_embeddings([it.get("title") or "" for it in sub]), items, rows,
                                           fields, pairs, labels),
           "TF-IDF char 2-4, all text": score(bl.tfidf_embeddings([bl.item_text(it) for it in sub]), items, rows,
                                              fields, pairs, labels)}
    if name.startswith("musinsa"):  # e5 of the titles: from text_baselines.py's cache when there, else quoted
        texts = [str(it.get("title") or "") for it in sub]
        cache = ROOT / "runs" / "cache"
        if te.cache_path("e5-musinsa-title", texts, cache).is_file():
            emb = te.cached("e5-musinsa-title", texts, lambda xs: None, cache)
            res["multilingual-e5-small, title"] = score(emb, items, rows, fields, pairs, labels)
        else:
            res["multilingual-e5-small, title (quoted)"] = dict(E5_TITLE_SAMPLE)
    path.write_text(json.dumps(res, indent=2))
    return res


def run_cell(name: str, preset: str, args, items, pairs, labels, rows, fields, labels_sub) -> dict:
    from itemtower.artifacts import Embedder
    from itemtower.catalog.schema import infer_schema
    from itemtower.training import TrainConfig, train

    cell = args.out / f"{name}-{preset}"
    knobs = {**(OLD_DEFAULTS if preset == "old" else {}), **_parse_set(args.set)}
    if args.cold_teacher:
        knobs["cache_dir"] = str(cell / "e5cache")
    cfg = TrainConfig.from_dict(dict(out=str(cell / "model"), max_minutes=args.minutes, seed=args.seed,
                                     use_groups=False, progress=False, **knobs))  # tower knobs may be flat
    logs: list[str] = []

    def log(s: str) -> None:
        logs.append(s)
        print(s, flush=True)

    t = time.perf_counter()
    train(cfg, items, infer_schema(items), log=log)
    train_s = time.perf_counter() - t
    load_after = [round(x, 1) for x in os.getloadavg()]  # the machine is shared: steps depend on it
    emb_model = Embedder.load(cell / "model")
    sub = [items[i] for i in rows]
    res = {"preset": preset, "catalog": name, "minutes": args.minutes, "catalog_to_model_s": round(train_s, 1),
           "knobs": knobs, "log": logs, "loadavg_after_training": load_after, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    manifest = json.loads((cell / "model" / "manifest.json").read_text())
    res["training"] = {k: manifest.get("training", {}).get(k) for k in ("steps", "epochs_done", "stopped_by",
                                                                         "seconds")}
    v = emb_model.embed(sub)
    res["h"] = score(v, items, rows, fields, pairs, labels_sub)
    res["h_by_sem_scale"] = {}
    cfg_t = emb_model.tower.cfg
    if cfg_t.sem_dim and cfg_t.sem_scale > 0 and args.sem_scales:
        # the served h at another slice weight, exactly: normalize(cat(v_main, c / s * v_sem)) of the saved h
        # (the 1/|h| of the saved vectors cancels), where s is the saved sem_scale
        m = cfg_t.main_dim
        for c in [float(x) for x in args.sem_scales.split(",")]:
            w = np.concatenate([v[:, :m], v[:, m:] * (c / cfg_t.sem_scale)], 1)
            w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
            res["h_by_sem_scale"][str(c)] = score(w, items, rows, fields, pairs, labels_sub)
    (cell / "result.json").write_text(json.dumps(res, indent=2, ensure_ascii=False))
    return res


METRICS = {"myntra": ["recall@10", "recall@50", "ndcg@10", "mrr@10", "consistency@10:article_type"],
           "musinsa": ["consistency@10:category_sub", "consistency@10:category_main"]}


def table(out: Path) -> str:
    lines = []
    for name in ("myntra", "myntra-noprod", "musinsa"):
        cells = {p.parent.name.split("-")[-1]: json.loads(p.read_text())
                 for p in sorted(out.glob(f"{name}-*/result.json")) if p.parent.name.rsplit("-", 1)[0] == name}
        base = out / f"baselines-{name}.json"
        if not cells and not base.exists():
            continue
        metrics = METRICS["musinsa" if name == "musinsa" else "myntra"]
        lines += ["", f"{name}", "| method | " + " | ".join(metrics) + " | steps | catalog to model |",
                  "|---|" + "---|" * (len(metrics) + 2)]
        for preset in ("new", "old"):
            if preset in cells:
                c = cells[preset]
                tr = c.get("training", {})
                lines.append(f"| itemtower h, {preset} defaults | " + " | ".join(_fmt(c["h"].get(m)) for m in metrics)
                             + f" | {tr.get('steps')} | {c['catalog_to_model_s']:.0f} s |")
                for s, r in c.get("h_by_sem_scale", {}).items():
                    lines.append(f"| (sem_scale {s}) | " + " | ".join(_fmt(r.get(m)) for m in metrics) + " | | |")
        for method, r in (json.loads(base.read_text()).items() if base.exists() else []):
            lines.append(f"| {method} | " + " | ".join(_fmt(r.get(m)) for m in metrics) + " | | |")
    return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalogs", default="myntra,myntra-noprod,musinsa")
    ap.add_argument("--presets", default="new,old")
    ap.add_argument("--minutes", type=float, default=10.0, help="budget from items to model, per training")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "i9" / "table")
    ap.add_argument("--set", action="append", default=[], help="TrainConfig override for every cell")
    ap.add_argument("--sem-scales", default="0,0.5,1,1.5,2,3", help="slice weights in the served h to score "
                    "(post hoc, exact: the loop trains the slice at 1 whatever sem_scale serves)")
    ap.add_argument("--cold-teacher", action="store_true", help="a fresh e5 cache per run (encode in budget)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true", help="only print the table of --out")
    args = ap.parse_args()
    if not args.table:
        if not DATA.is_dir():
            sys.exit(f"{DATA} not found: this benchmark needs ../shared/data next to the repository")
        args.out.mkdir(parents=True, exist_ok=True)
        for name in args.catalogs.split(","):
            items, pairs, labels = load_catalog(name)
            rows, fields, labels_sub = scored_subset(name, items, labels)
            baselines(name, items, rows, fields, pairs, labels_sub, args.out)
            for preset in args.presets.split(","):
                run_cell(name, preset, args, items, pairs, labels, rows, fields, labels_sub)
                print(table(args.out), flush=True)
    print(table(args.out))


if __name__ == "__main__":
    main()
