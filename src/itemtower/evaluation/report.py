"""Report dict -> report.json, report.md and two plots (plots.py): the training loss curve and a 2-D map of the
embeddings.

No model and no torch here: the report dict comes from `evaluate.evaluate`, the embeddings are arrays, the loss
comes from MODEL/history.json (written by training).

    write_report(report, out_dir)                                   -> report.json + report.md
    write_report(report, out_dir, model_dir)                        -> + loss.png
    write_report(report, out_dir, model_dir, items, embeddings, f)  -> + map.png coloured by STD field f

The map's method (t-SNE within a time budget, else PCA) is plots.map_plot's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from itemtower.evaluation.plots import LOSS_PNG, MAP_PNG, MAX_MAP_ITEMS, default_color_field, loss_plot, map_plot

__all__ = ["write_report", "format_table", "loss_plot", "map_plot", "LOSS_PNG", "MAP_PNG"]

# ----------------------------------------------------------------------------------------------------------------
# markdown
# ----------------------------------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_table(report: Mapping[str, Any], max_fields: int | None = None) -> str:
    """A markdown table: one row per method, one column per metric (consistency for the first max_fields fields)."""
    methods = report["methods"]
    cols = [c for c in next(iter(methods.values())) if c != "search_seconds"]
    if max_fields is not None:
        keep = {f"consistency@10:{f}" for f in report["fields"][:max_fields]}
        cols = [c for c in cols if not c.startswith("consistency@10:") or c in keep]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, m in methods.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def _kv_table(d: Mapping[str, Any]) -> str:
    keys = list(d)
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
                      "| " + " | ".join(_fmt(d[k], 4) for k in keys) + " |"])


def _probe_table(probe: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["| field | classes | majority | probe on h | probe on z |", "|---|---|---|---|---|"]
    for f, r in probe.items():
        lines.append(f"| {f} | {_fmt(r.get('n_classes'))} | {_fmt(r.get('majority'))} | {_fmt(r.get('h'))} "
                     f"| {_fmt(r.get('z'))} |")
    return "\n".join(lines)


def _markdown(report: Mapping[str, Any], plots: Mapping[str, Any]) -> str:
    md = [f"# itemtower evaluation: {report.get('model', '')}", ""]
    line = f"{report.get('n_items', '?')} items, {report.get('n_pairs', 0)} relevance pairs"
    if "unk_rate" in report:
        line += f", token UNK rate {report['unk_rate']:.4f}"
    if "embed_items_per_s" in report:
        line += f", embedding {report['embed_items_per_s']:.0f} items/s"
    md += [line + ".", ""]
    if report.get("methods"):
        md += ["## Retrieval", "",
               "Neighbours over the whole catalog (query excluded), inner product of L2-normalised vectors. "
               "recall@K / ndcg@10 / mrr@10: against the relevance pairs; consistency@10:FIELD: share of the 10 "
               "nearest items with the query's value of FIELD. `itemtower (h)` is what the service returns; "
               "`itemtower (z)` is the projection head's output that the training loss saw.", "",
               format_table(report), ""]
    if report.get("other_view"):
        md += ["## Other-view retrieval", "",
               "Two augmented views of a sample of items: does view 1 find view 2 among all second views?", "",
               _kv_table(report["other_view"]), ""]
    if report.get("alignment_uniformity"):
        md += ["## Alignment / uniformity (Wang & Isola 2020, on h)", "",
               "Lower alignment: views of one item are closer; lower uniformity: items spread over the sphere.", "",
               _kv_table(report["alignment_uniformity"]), ""]
    probe = report.get("linear_probe")
    if probe:
        info = report.get("linear_probe_info") or {}
        md += ["## Linear probe: h vs z", "",
               "Test accuracy of a logistic regression predicting each STD field from the embedding "
               f"({info.get('n_items', '?')} sampled items, {info.get('test_frac', 0.3):.0%} held out, "
               "features standardised per dimension); majority = always guessing the most frequent class.", "",
               _probe_table(probe), ""]
    notes = list(report.get("notes") or []) + list(plots.get("notes") or [])
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if plots.get("loss"):
        md += ["## Training loss", "", f"![Training loss]({plots['loss']['file']})", "",
               f"*{plots['loss']['caption']}*", ""]
    if plots.get("map"):
        md += ["## Embedding map", "", f"![Embedding map]({plots['map']['file']})", "",
               f"*{plots['map']['caption']}*", ""]
    return "\n".join(md)


# ----------------------------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------------------------


def write_report(report: Mapping[str, Any], out_dir: str | Path, model_dir: str | Path | None = None,
                 items: Sequence[dict] | None = None, embeddings: Any = None, color_field: str | None = None, *,
                 map_method: str = "auto", max_map_items: int = MAX_MAP_ITEMS, tsne_budget_s: float = 30.0,
                 seed: int = 0, log: Callable[[str], None] | None = None) -> Path:
    """Write report.json and report.md to `out_dir`, plus loss.png and map.png when their inputs are given.

    Args:
        report: the dict from `evaluate.evaluate` (only "methods"/"fields" are needed for the table).
        model_dir: the trained model; its history.json gives loss.png (skipped with a note when absent).
        items, embeddings: the evaluated items and their embeddings ([N, D] array, or a dict with "h" such as
            `EvalReport.embeddings`); both needed for map.png.
        color_field: STD field colouring the map; default "category", else the first evaluated field.
        map_method: "auto" | "tsne" | "pca" (see `map_plot`).
    Returns:
        out_dir. report.json is the report plus {"plots": {"loss": {...}, "map": {...}}} when plots were drawn.
    Raises:
        ValueError: color_field is not an STD field of the items (raised before anything is written).
    """
    log = log or (lambda s: None)
    d = Path(out_dir)
    if isinstance(embeddings, Mapping):
        embeddings = embeddings.get("h")
    want_map = items is not None and embeddings is not None
    if want_map:
        used = {f for it in items for f in (it.get("std") or {})}
        if color_field is None:
            color_field = default_color_field(report, items)
        elif color_field not in used:
            raise ValueError(f"color field {color_field!r} is not an STD field of these items; "
                             f"choose one of: {', '.join(sorted(used)) or '(none)'}")
    d.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Any] = {"notes": []}
    if model_dir is not None:
        hist_path = Path(model_dir) / "history.json"
        info = None
        if hist_path.exists():
            try:
                info = loss_plot(json.loads(hist_path.read_text(encoding="utf-8")), d / LOSS_PNG)
            except (json.JSONDecodeError, TypeError, ValueError) as e:
                plots["notes"].append(f"loss plot skipped: {hist_path} is not readable ({e})")
        else:
            plots["notes"].append(f"loss plot skipped: no {hist_path} (the model was not trained here)")
        if info:
            plots["loss"] = info
            log(f"wrote {d / LOSS_PNG}")
    if want_map:
        if color_field is None:
            plots["notes"].append("embedding map skipped: the items have no STD field to colour by")
        elif len(items) < 2:
            plots["notes"].append("embedding map skipped: fewer than 2 items")
        else:
            plots["map"] = map_plot(embeddings, items, color_field, d / MAP_PNG, method=map_method,
                                    max_items=max_map_items, tsne_budget_s=tsne_budget_s, seed=seed)
            log(f"wrote {d / MAP_PNG} ({plots['map']['caption']})")
    out = dict(report)
    drawn = {k: v for k, v in plots.items() if k != "notes"}
    if drawn or plots["notes"]:
        out["plots"] = {**drawn, **({"notes": plots["notes"]} if plots["notes"] else {})}
    (d / "report.json").write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    (d / "report.md").write_text(_markdown(report, plots) + "\n", encoding="utf-8")
    return d
