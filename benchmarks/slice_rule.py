"""The slice weight rule (training/slice_weight.py) scored post hoc on trained models: BENCHMARKS.md 13c.

    .venv/bin/python benchmarks/slice_rule.py --runs runs/i9/quiet myntra myntra-noprod musinsa

For each catalog, RUNS/<catalog>-new/model (what defaults_table.py writes) embeds the scored items once; the
served h is re-weighted exactly (the slice's part of the saved vectors times c / saved scale) at s = ratio^g for
g in --exponents, ratio = RMS(slice) / RMS(main) of those vectors, and scored as defaults_table.py scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from defaults_table import load_catalog, score, scored_subset  # benchmarks/ is on sys.path when run from here
from itemtower.artifacts import Embedder
from itemtower.training.slice_weight import slice_ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("catalogs", nargs="+")
    p.add_argument("--runs", type=Path, default=Path("runs/i9/quiet"))
    p.add_argument("--exponents", default="0.5,1,1.5")
    a = p.parse_args()
    out = {}
    for name in a.catalogs:
        items, pairs, labels = load_catalog(name)
        rows, fields, labels_sub = scored_subset(name, items, labels)
        emb = Embedder.load(a.runs / f"{name}-new" / "model")
        v = emb.embed([items[i] for i in rows])
        m, saved = emb.tower.cfg.main_dim, emb.tower.cfg.sem_scale
        main, sem = v[:, :m], v[:, m:] / saved
        ratio = slice_ratio(np.concatenate([main, sem], 1), m)
        res = {"ratio": round(ratio, 4)}
        for g in (float(x) for x in a.exponents.split(",")):
            s = ratio ** g
            w = np.concatenate([main, sem * s], 1)
            w /= np.linalg.norm(w, axis=1, keepdims=True)
            scores = score(w, items, rows, fields, pairs, labels_sub)
            res[f"ratio^{g:g}"] = {"s": round(s, 3), **{k: round(x, 4) for k, x in scores.items()
                                                         if isinstance(x, float) and k != "search_seconds"}}
        print(name, json.dumps(res), flush=True)
        out[name] = res
    (a.runs / "slice_rule.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
