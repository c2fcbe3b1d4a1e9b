"""Product photos on Myntra: photo-only retrieval of colour variants, TF-IDF, their late fusion, the near-duplicate
threshold, and the precision of what reinforcement from photos fills in (issue 12; BENCHMARKS.md section 12).

    nice -n 15 .venv/bin/python benchmarks/images.py            # features from runs/images_cache (built once)
    nice -n 15 .venv/bin/python benchmarks/images.py --speed 256 # + encoder speed on 256 photos, uncached

Items: the Myntra apparel styles that have a photo in ../shared/data/myntra_images (5,353), converted with
`convert(..., images_dir=...)`; pairs: the colour-variant pairs with both photos (1,727). Features come from
`itemtower.images.features.extract` with the cache in runs/images_cache (the first run encodes all photos, ~5 min
on an idle 2-core machine; later runs read the cache). Retrieval: exact cosine top-50, query excluded, scored by
`metrics.pair_metrics`. Photo = centred EfficientNet-Lite0 features; TF-IDF = `baselines.tfidf_embeddings` over
`item_text` (all text); fusion = w * photo cosine + (1 - w) * TF-IDF cosine (one concatenated embedding).

Reinforcement precision is leave-one-out: for every item, each measured field is hidden on that item only, the
item is reinforced from its photo matches (`reinforce_from_images`), and the proposal is compared with the hidden
value. The colour (from the garment's pixels, `colour.dominant_colour`) is compared with base_colour on every item
except every 20th photo, the sample its constants were tuned on.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "images_cache"
OUT = ROOT / "runs" / "bench" / "images.json"
MEASURED = ("article_type", "sub_category", "gender", "sleeve_length", "neck", "pattern", "fit", "fabric",
            "occasion", "length", "collar", "sleeve_styling", "brand", "price", "season", "usage")
# colour families for a coarse score (a "Navy Blue" shirt named "Blue" is half right)
FAMILY = {"Navy Blue": "Blue", "Turquoise Blue": "Blue", "Teal": "Blue", "Charcoal": "Grey", "Grey Melange": "Grey",
          "Silver": "Grey", "Off White": "White", "Cream": "White", "Maroon": "Red", "Burgundy": "Red", "Rust": "Red",
          "Magenta": "Pink", "Peach": "Pink", "Mauve": "Purple", "Lavender": "Purple", "Mustard": "Yellow",
          "Gold": "Yellow", "Khaki": "Beige", "Tan": "Beige", "Skin": "Beige", "Nude": "Beige",
          "Coffee Brown": "Brown", "Olive": "Green", "Sea Green": "Green", "Lime Green": "Green"}


def load(limit_dir: Path = DATA) -> tuple[list[dict], list[tuple[str, str]]]:
    from itemtower.catalog.adapters import myntra

    res = myntra.convert(limit_dir / "myntra", images_dir=limit_dir / "myntra_images" / "images")
    items = [it for it in res.items if it.get("image")]
    have = {it["id"] for it in items}
    pairs = [(a, b) for a, b in res.pairs if a in have and b in have]
    return items, pairs


def features(items: list[dict]) -> tuple[Any, float]:
    from itemtower.images.encoder import EfficientNetLite0
    from itemtower.images.features import extract

    t = time.perf_counter()
    fs = extract(items, EfficientNetLite0, CACHE, progress=True)
    return fs, time.perf_counter() - t


def speed(items: list[dict], n: int) -> dict[str, float]:
    """Decode + encode `n` photos in batches of 32, nothing cached: photos per second, at this machine's load."""
    import torch

    from itemtower.images.encoder import EfficientNetLite0
    from itemtower.images.source import decode, read_bytes, resolve

    t0 = time.perf_counter()
    enc = EfficientNetLite0()
    load_s = time.perf_counter() - t0
    t = time.perf_counter()
    for a in range(0, n, 32):
        batch = np.stack([decode(read_bytes(resolve(it["image"]))) for it in items[a:a + 32]])
        enc.encode(batch)
    dt = time.perf_counter() - t
    return {"photos": n, "load_s": round(load_s, 2), "photos_per_s": round(n / dt, 1),
            "ms_per_photo": round(1000 * dt / n, 1), "threads": torch.get_num_threads(),
            "loadavg": [round(x, 1) for x in os.getloadavg()]}


def retrieval(items: list[dict], fs, pairs) -> dict[str, dict]:
    from itemtower.evaluation import metrics as M
    from itemtower.evaluation.baselines import item_text, tfidf_embeddings
    from itemtower.images.match import centre

    assert fs.ids == [it["id"] for it in items], "every item here has a usable photo"
    photo = centre(fs.vectors)
    text = tfidf_embeddings([item_text(it) for it in items])
    rows: dict[str, dict] = {}

    def score(name: str, emb) -> None:
        idx = M.top_k(emb, 50, exclude_self=True)[0]
        pm = M.pair_metrics(idx, fs.ids, pairs, ks=(10, 50))
        rows[name] = {k: round(float(pm[k]), 3) for k in ("recall@10", "recall@50", "ndcg@10")}
        rows[name]["queries"] = int(pm["n_queries"])
        print(name, rows[name], flush=True)

    score("photo", photo)
    score("tfidf all text", text)
    for w in (0.3, 0.5, 0.7):
        score(f"fusion w={w}", sp.hstack([sp.csr_matrix(np.sqrt(w) * photo), np.sqrt(1 - w) * text]).tocsr())
    return rows


def thresholds(items: list[dict], fs, pairs, seed: int = 0) -> dict[str, Any]:
    """Cosine of variant pairs vs random pairs, and what the top-10 matches above each threshold are."""
    from itemtower.images.match import centre, neighbours

    unit = centre(fs.vectors)
    row = fs.row_of()
    pa = np.array([[row[a], row[b]] for a, b in pairs])
    var = np.einsum("ij,ij->i", unit[pa[:, 0]], unit[pa[:, 1]])
    rng = np.random.default_rng(seed)
    ra, rb = rng.integers(0, len(unit), 200_000), rng.integers(0, len(unit), 200_000)
    keep = ra != rb
    rnd = np.einsum("ij,ij->i", unit[ra[keep]], unit[rb[keep]])
    q = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999)
    out: dict[str, Any] = {"variant_quantiles": {str(x): round(float(np.quantile(var, x)), 3) for x in q},
                           "random_quantiles": {str(x): round(float(np.quantile(rnd, x)), 3) for x in q}}
    idx, sims = neighbours(unit, range(len(unit)), 10)
    is_var = set(map(tuple, pa.tolist())) | set(map(tuple, pa[:, ::-1].tolist()))
    art = [(it.get("std") or {}).get("article_type", [None])[0] for it in items]
    grid = []
    for t in np.arange(0.40, 0.86, 0.05):
        m = sims >= t
        qi, kj = np.nonzero(m)
        nb = idx[qi, kj]
        n = len(nb)
        grid.append({"threshold": round(float(t), 2), "variant_pairs_above": round(float((var >= t).mean()), 3),
                     "random_pairs_above": float(f"{(rnd >= t).mean():.2g}"),
                     "items_with_match": round(float(m.any(axis=1).mean()), 3),
                     "matches_per_item": round(n / len(unit), 2),
                     "match_is_variant": round(sum((int(a), int(b)) in is_var for a, b in zip(qi, nb)) / max(n, 1), 3),
                     "match_same_article_type": round(sum(art[a] == art[b] for a, b in zip(qi, nb)) / max(n, 1), 3)})
    out["grid"] = grid
    return out


def reinforce_precision(items: list[dict], fs, threshold: float, agree: float) -> dict[str, dict]:
    """Leave-one-out precision / coverage per field of the values photo matches propose."""
    from itemtower.images.match import find_matches
    from itemtower.images.reinforce import reinforce_from_images

    matches = find_matches(fs.ids, fs.vectors, k=10, threshold=threshold)
    by_id = {it["id"]: it for it in items}
    hit: Counter[str] = Counter()
    made: Counter[str] = Counter()
    given: Counter[str] = Counter()
    for it in items:
        std = it.get("std") or {}
        hidden = {f: std[f][0] for f in MEASURED if std.get(f)}
        given.update(hidden.keys())
        q = dict(it, std={f: v for f, v in std.items() if f not in hidden})
        others = [by_id[m] for m, _ in matches[it["id"]]]
        out, _ = reinforce_from_images([q] + others, {it["id"]: matches[it["id"]]}, fields=list(MEASURED),
                                       colour_field=None, agree=agree)
        for f, v in (out[0].get("std_inferred") or {}).items():
            if f in hidden:
                made[f] += 1
                hit[f] += v[0] == hidden[f]
    majority = {f: Counter((it.get("std") or {}).get(f, [None])[0] for it in items if (it.get("std") or {}).get(f))
                for f in MEASURED}
    res = {}
    for f in MEASURED:
        if given[f]:
            top = majority[f].most_common(1)[0][1] / given[f]
            res[f] = {"given": given[f], "proposed": made[f], "coverage": round(made[f] / given[f], 3),
                      "precision": round(hit[f] / made[f], 3) if made[f] else None,
                      "majority_baseline": round(top, 3)}
    return res


def micro(per_field: dict[str, dict], skip=("brand", "price", "season", "usage")) -> dict[str, float]:
    """Precision and coverage over all proposals of the visual fields (the default ones) together."""
    rows = [r for f, r in per_field.items() if f not in skip]
    made = sum(r["proposed"] for r in rows)
    hits = sum(round((r["precision"] or 0) * r["proposed"]) for r in rows)
    return {"proposed": made, "precision": round(hits / max(made, 1), 3),
            "coverage": round(made / max(sum(r["given"] for r in rows), 1), 3)}


def colour_accuracy(items: list[dict]) -> dict[str, Any]:
    from itemtower.images.reinforce import photo_colours

    tuned = {it["id"] for it in items[::20]}
    names = [v for it in items for v in (it.get("std") or {}).get("base_colour", ())]
    test = [it for it in items if it["id"] not in tuned
            and (it.get("std") or {}).get("base_colour", ["NA"])[0] not in ("NA", "Multi")]
    t = time.perf_counter()
    got = photo_colours(test, names)
    secs = time.perf_counter() - t
    truth = {it["id"]: it["std"]["base_colour"][0] for it in test}
    fam = lambda c: FAMILY.get(c, c)  # noqa: E731
    n = len(test)
    exact = sum(got.get(i, ("",))[0] == c for i, c in truth.items())
    family = sum(fam(got.get(i, ("",))[0]) == fam(c) for i, c in truth.items())
    conf = Counter((c, got[i][0]) for i, c in truth.items() if i in got and got[i][0] != c)
    by_share = {}
    for s in (0.3, 0.5, 0.7):
        sel = [i for i in truth if i in got and got[i][1] >= s]
        by_share[str(s)] = {"coverage": round(len(sel) / n, 3),
                            "precision": round(sum(got[i][0] == truth[i] for i in sel) / max(len(sel), 1), 3)}
    majority = Counter(truth.values()).most_common(1)[0]
    return {"items": n, "exact": round(exact / n, 3), "family": round(family / n, 3), "by_min_share": by_share,
            "majority_baseline": {"value": majority[0], "accuracy": round(majority[1] / n, 3)},
            "top_confusions": [[a, b, k] for (a, b), k in conf.most_common(8)],
            "photos_per_s": round(n / secs, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", type=int, default=0, help="also time the encoder on N uncached photos")
    ap.add_argument("--agree", type=float, default=None, help="agreement for reinforcement (default: the module's)")
    ap.add_argument("--threshold", type=float, default=None, help="match threshold (default: NEAR_DUPLICATE)")
    ap.add_argument("--skip-colour", action="store_true")
    args = ap.parse_args()
    if not (DATA / "myntra_images" / "images").is_dir():
        raise SystemExit(f"needs {DATA / 'myntra_images'} (see its SOURCE.md)")
    from itemtower.images.match import NEAR_DUPLICATE
    from itemtower.images.reinforce import DEFAULT_AGREE

    thr = NEAR_DUPLICATE if args.threshold is None else args.threshold
    agree = DEFAULT_AGREE if args.agree is None else args.agree
    items, pairs = load()
    print(f"{len(items)} items with photos, {len(pairs)} colour-variant pairs", flush=True)
    fs, secs = features(items)
    print(f"features: {fs.n_cached} cached, {fs.n_encoded} encoded, {len(fs.warnings)} warnings, {secs:.1f} s")
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "items": len(items), "pairs": len(pairs),
                              "features": {"cached": fs.n_cached, "encoded": fs.n_encoded, "seconds": round(secs, 1)},
                              "threshold": thr, "agree": agree}
    if args.speed:
        report["speed"] = speed(items, args.speed)
        print("speed", report["speed"], flush=True)
    report["retrieval"] = retrieval(items, fs, pairs)
    report["thresholds"] = thresholds(items, fs, pairs)
    print(json.dumps(report["thresholds"], indent=1), flush=True)
    report["reinforce"] = reinforce_precision(items, fs, thr, agree)
    print(json.dumps(report["reinforce"], indent=1), flush=True)
    report["reinforce_by_threshold"] = {str(t): micro(reinforce_precision(items, fs, t, agree))
                                        for t in (0.5, 0.6, 0.7, 0.8)}
    print(json.dumps(report["reinforce_by_threshold"], indent=1), flush=True)
    if not args.skip_colour:
        report["colour"] = colour_accuracy(items)
        print(json.dumps(report["colour"], indent=1), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
