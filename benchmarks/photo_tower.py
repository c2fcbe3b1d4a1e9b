"""The photo in the tower (issue 12, BENCHMARKS.md 12f): colour-variant retrieval on the 5,353 Myntra items with a
photo (1,727 variant pairs), text-only tower vs photo+text tower (same budget, same seed), beside photo only
(cosine of centred features), TF-IDF of all text and their late fusion.

    nice -n 10 .venv/bin/python benchmarks/photo_tower.py --max-minutes 4 --runs text,photo
    nice -n 10 .venv/bin/python benchmarks/photo_tower.py --baselines          # the three untrained rows only

Each run trains `train(TrainConfig(...))` on the 5,353 items (photos from runs/images_cache, the cache
benchmarks/images.py filled), then embeds them through the Embedder (the photo model reads each item's `image`)
and scores exact cosine top-50 with `metrics.pair_metrics`. A run is NAME or NAME:key=value;key=value (TowerConfig
or TrainConfig keys, e.g. `photo_bag:image_bag=0.5`). The steps each run got are reported (the machine is shared:
--epochs fixes them for a comparison at equal steps). Writes runs/bench/photo_tower/TAG/NAME.json, prints a row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from images import CACHE, DATA, load  # noqa: E402  (the 5,353 items and 1,727 pairs of section 12)

OUT = ROOT / "runs" / "bench" / "photo_tower"
PRESETS = {"text": {"images": False}, "photo": {}}


def score(emb, ids, pairs) -> dict[str, Any]:
    from itemtower.evaluation import metrics as M

    idx = M.top_k(emb, 50, exclude_self=True)[0]
    pm = M.pair_metrics(idx, ids, pairs, ks=(10, 50))
    row = {k: round(float(pm[k]), 4) for k in ("recall@10", "recall@50", "ndcg@10")}
    row["queries"] = int(pm["n_queries"])
    return row


def baselines(items, pairs) -> dict[str, dict]:
    """Photo only, TF-IDF of all text, late fusion (w photo + (1 - w) TF-IDF cosine), as benchmarks/images.py."""
    import scipy.sparse as sp

    from itemtower.evaluation.baselines import item_text, tfidf_embeddings
    from itemtower.images.encoder import EfficientNetLite0
    from itemtower.images.features import extract
    from itemtower.images.match import centre

    fs = extract(items, EfficientNetLite0, CACHE, progress=False)
    assert fs.ids == [it["id"] for it in items], "every item here has a usable photo"
    photo, text = centre(fs.vectors), tfidf_embeddings([item_text(it) for it in items])
    ids = fs.ids
    rows = {"photo only (centred cosine)": score(photo, ids, pairs), "tfidf all text": score(text, ids, pairs)}
    for w in (0.3, 0.5):
        fused = sp.hstack([sp.csr_matrix(np.sqrt(w) * photo), np.sqrt(1 - w) * text]).tocsr()
        rows[f"late fusion {w} photo + {1 - w:.1f} tfidf"] = score(fused, ids, pairs)
    return rows


def parse_run(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = spec.partition(":")
    kw = dict(PRESETS.get(name.split("_")[0], {}))
    for part in filter(None, rest.split(";")):
        k, _, v = part.partition("=")
        try:
            kw[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            kw[k.strip()] = v
    return name, kw


def run(name: str, kw: dict[str, Any], items, pairs, args) -> dict[str, Any]:
    """Train one tower on the items, embed them (with their photos when the model has a photo token), score."""
    import torch

    from itemtower.artifacts import Embedder
    from itemtower.training import TrainConfig, train

    out = OUT / args.tag / name
    base = {"out": str(out), "max_minutes": args.max_minutes, "epochs": args.epochs, "seed": args.seed,
            "image_cache": str(CACHE), "progress": False}
    cfg = TrainConfig.from_dict({**base, **kw})
    t0, logs = time.perf_counter(), []

    def log(s: str) -> None:
        logs.append(s)
        print(f"[{name}] {s}", flush=True)

    train(cfg, items, log=log)
    train_s = time.perf_counter() - t0
    hist = json.loads((out / "history.json").read_text())
    emb = Embedder.load(out)
    emb.image_cache = CACHE
    torch.set_num_threads(2)
    t1 = time.perf_counter()
    vecs = emb.embed(items)
    embed_s = time.perf_counter() - t1
    row = score(vecs, [it["id"] for it in items], pairs)
    steps = len(hist["step"])
    row.update(name=name, overrides=kw, steps=steps, epochs=len(hist["epoch_val_loss"]), train_s=round(train_s, 1),
               image_dim=emb.tower.cfg.image_dim, embed_items_per_s=round(len(items) / embed_s, 1),
               load=_load(), **_timing(logs))
    (OUT / args.tag).mkdir(parents=True, exist_ok=True)
    (OUT / args.tag / f"{name}.json").write_text(json.dumps(row, indent=1))
    print(json.dumps(row), flush=True)
    return row


def _timing(logs: list[str]) -> dict[str, float]:
    """From train's log: seconds before the loop (featurizer, photos, teacher), the loop's seconds, ms per step."""
    import re

    out: dict[str, float] = {}
    for s in logs:
        m = re.search(r"\((\d+)s went to featurizer", s)
        if m:
            out["setup_s"] = float(m.group(1))
        m = re.search(r"photos: .*; ([\d.]+)s\)", s)
        if m:
            out["photos_s"] = float(m.group(1))
        m = re.search(r"after (\d+) steps, (\d+)s", s)
        if m and int(m.group(1)):
            out["loop_s"] = float(m.group(2))
            out["step_ms"] = round(1000 * float(m.group(2)) / int(m.group(1)), 1)
    return out


def _load() -> float:
    import os

    return round(os.getloadavg()[0], 2)


def cost(items, tag: str, text: str, photo: str, repeats: int = 7) -> dict[str, Any]:
    """The photo's added cost, text model vs photo model of runs TAG/TEXT and TAG/PHOTO, interleaved in one
    process (the load hits both alike): forward + backward of one 256-item batch in training mode (a step runs
    two), and embedding 2,000 items (photo features from the cache: read + sha256 + the token; no encoder run);
    and the photo model given no photos (the same weights: the photo path's own cost)."""
    import statistics

    import torch

    from itemtower.artifacts import Embedder
    from itemtower.features.dataset import collate_items

    torch.set_num_threads(2)
    sub = items[:2000]
    models = {k: Embedder.load(OUT / tag / name) for k, name in (("text", text), ("photo", photo))}
    for e in models.values():
        e.image_cache = CACHE
    times: dict[str, dict[str, list[float]]] = {k: {"step": [], "embed": []} for k in models}
    times["photo model, photos not given"] = {"step": [], "embed": []}
    batch = sub[:256]
    for _ in range(repeats):
        for k, e in [*models.items(), ("photo model, photos not given", models["photo"])]:
            enc = e.featurizer.encode(batch)
            view = collate_items(enc, e.featurizer.max_text_tokens,
                                 None if k.endswith("not given") else e.photos_of(batch))
            tower = e.tower.train()
            t = time.perf_counter()
            tower(*view).pow(2).mean().backward()
            times[k]["step"].append(time.perf_counter() - t)
            tower.zero_grad(set_to_none=True)
            tower.eval()
            t = time.perf_counter()
            e.embed([{kk: v for kk, v in it.items() if kk != "image"} for it in sub] if k.endswith("not given")
                    else sub)
            times[k]["embed"].append(time.perf_counter() - t)
    out = {k: {"fwd_bwd_256_ms": round(1000 * statistics.median(v["step"]), 1),
               "embed_ms_per_item": round(1000 * statistics.median(v["embed"]) / len(sub), 3)}
           for k, v in times.items()}
    out["load"] = _load()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="text,photo", help="comma-separated runs (NAME[:k=v;k=v])")
    ap.add_argument("--max-minutes", type=float, default=4.0)
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs: equal steps across runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="default", help="runs go to runs/bench/photo_tower/TAG/NAME")
    ap.add_argument("--baselines", action="store_true", help="the untrained rows (photo, TF-IDF, fusion) only")
    ap.add_argument("--cost", default=None, help="TEXT,PHOTO: the photo's added cost between two runs of --tag")
    args = ap.parse_args()
    if not (DATA / "myntra_images" / "images").is_dir():
        raise SystemExit(f"needs {DATA / 'myntra_images'} (see its SOURCE.md)")
    items, pairs = load()
    print(f"{len(items)} items with photos, {len(pairs)} colour-variant pairs", flush=True)
    if args.cost:
        text, photo = args.cost.split(",")
        got = cost(items, args.tag, text, photo)
        (OUT / args.tag / "cost.json").write_text(json.dumps(got, indent=1))
        print(json.dumps(got), flush=True)
        return
    if args.baselines:
        rows = baselines(items, pairs)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "baselines.json").write_text(json.dumps(rows, indent=1))
        for k, v in rows.items():
            print(k, v, flush=True)
        return
    for spec in args.runs.split(","):
        name, kw = parse_run(spec)
        run(name, kw, items, pairs, args)


if __name__ == "__main__":
    main()
