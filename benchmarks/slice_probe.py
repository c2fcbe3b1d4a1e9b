"""Label-free signals for the slice weight, beside the labelled metrics, on trained models (issue 9, BENCHMARKS 13f).

    .venv/bin/python benchmarks/slice_probe.py --run runs/i9/b myntra myntra-noprod musinsa

For each catalog, RUN/<catalog>-new/model (what defaults_table.py writes) embeds the scored items and the
teacher's titles (the rows training distilled, found again from train_config.json) once. The served h is
re-weighted exactly at each slice scale s of --scales (the slice as trained at scale 1, times s), and for each s:
- the labelled metrics, as defaults_table.py scores them;
- label-free, on the teacher's items: the top-10 overlap of h_s's neighbours with e5's (`agree_e5`) and with the
  main part's own (`agree_main`); also the parts' own agreement with e5 (s = 0 is the main part, "slice" alone).
Nothing here changes a model; it is how a weight rule is chosen and checked (training/slice_weight.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from defaults_table import load_catalog, score, scored_subset  # benchmarks/ is on sys.path when run from here
from itemtower.artifacts import Embedder
from itemtower.encoders.text import e5_encoder
from itemtower.training import split_rows, teacher_rows
from itemtower.training.slice_weight import teacher_agreement

SCALES = (0.0, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 100.0)


def parts(emb: Embedder, items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(main, slice as trained at scale 1) of the served vectors."""
    v = emb.embed(items)
    m, saved = emb.tower.cfg.main_dim, emb.tower.cfg.sem_scale
    return v[:, :m], v[:, m:] / saved


def probe(name: str, model: Path, scales: tuple[float, ...]) -> dict:
    items, pairs, labels = load_catalog(name)
    rows, fields, labels_sub = scored_subset(name, items, labels)
    emb = Embedder.load(model)
    cfg = json.loads((model / "train_config.json").read_text())
    _, train_idx = split_rows(len(items), cfg["val_frac"], cfg["seed"])
    taught = teacher_rows(train_idx, cfg["distill_items"], cfg["seed"])
    e5 = e5_encoder(cfg.get("cache_dir"), progress=False, log=None, name="e5-titles")(
        [str(items[i].get("title") or "") for i in taught])
    t_main, t_sem = parts(emb, [items[i] for i in taught])
    agree = teacher_agreement(t_main, t_sem, e5, scales)  # what the rule reads, at every s probed
    slice_alone = teacher_agreement(t_sem, t_main, e5, (0.0,))  # the slice's own neighbourhoods vs e5's
    main, sem = parts(emb, [items[i] for i in rows])
    res = {"steps": _steps(model), "agree_main_e5": agree.main, "agree_slice_e5": slice_alone.main, "by_scale": {}}
    for s in scales:
        w = np.concatenate([main, s * sem], 1)
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        sc = score(w, items, rows, fields, pairs, labels_sub)
        res["by_scale"][f"{s:g}"] = {"agree_e5": round(agree.teach[s], 4), "agree_main": round(agree.keep[s], 4),
                                     "rule_score": round(agree.score(s), 4),
                                     **{k: round(x, 4) for k, x in sc.items()
                                        if isinstance(x, float) and k != "search_seconds"}}
    return res


def _steps(model: Path) -> int | None:
    try:
        return json.loads((model.parent / "result.json").read_text())["training"]["steps"]
    except (OSError, ValueError, KeyError):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("catalogs", nargs="+")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--scales", default=",".join(f"{s:g}" for s in SCALES))
    a = p.parse_args()
    scales = tuple(float(x) for x in a.scales.split(","))
    out = {}
    for name in a.catalogs:
        out[name] = probe(name, a.run / f"{name}-new" / "model", scales)
        print(name, json.dumps(out[name]), flush=True)
    (a.run / "slice_probe.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
