"""evaluate(model_dir, catalog, pairs) -> report: the tower against baselines on the same items and metrics.

Everything here takes embeddings as arrays (metrics.py); the model is only used to make them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from itemtower import baselines as bl
from itemtower import metrics as M

__all__ = ["evaluate", "score_embeddings", "format_table"]

K_MAX = 50


def _labels(items: Sequence[dict], field: str) -> list[str | None]:
    out = []
    for it in items:
        vs = (it.get("std") or {}).get(field)
        out.append("|".join(sorted(vs)) if vs else None)
    return out


def score_embeddings(emb, items: Sequence[dict], fields: Sequence[str], pairs=None) -> dict[str, Any]:
    """Neighbour metrics of one embedding (dense array or sparse matrix) over the whole catalog, query excluded."""
    t = time.perf_counter()
    idx, _ = M.top_k(emb, K_MAX, exclude_self=True)
    out: dict[str, Any] = {}
    if pairs is not None:
        ids = [it["id"] for it in items]
        pm = M.pair_metrics(idx, ids, pairs, ks=(10, 50))
        out.update({k: pm[k] for k in ("recall@10", "recall@50", "ndcg@10", "mrr@10")})
    for f in fields:
        out[f"consistency@10:{f}"] = M.attribute_consistency(idx, _labels(items, f), k=10)
    out["search_seconds"] = round(time.perf_counter() - t, 2)
    return out


def evaluate(model_dir: str | Path, items: Sequence[dict], pairs: Sequence[tuple[str, str]] | None = None,
             fields: Sequence[str] | None = None, with_baselines: bool = True, n_view_items: int = 5000,
             seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate the served tower (pth1 + pth2) on `items` and, optionally, baselines on the same items.

    Args:
        model_dir: a trained model directory.
        items: normalized catalog items.
        pairs: relevance pairs (id_a, id_b), e.g. colour variants; None skips pair metrics.
        fields: STD fields for consistency@10 (default: every STD field of the model's schema that items use).
        n_view_items: items used for other-view retrieval (a sample, seeded).
    Returns:
        {"n_items", "methods": {name: metrics}, "other_view": {...}, "alignment_uniformity": {...}, ...}
    """
    from itemtower.artifacts import Embedder
    from itemtower.data.views import make_view
    from itemtower.train import TrainConfig

    emb_model = Embedder.load(model_dir)
    if fields is None:
        used = {f for it in items for f in (it.get("std") or {})}
        fields = [f for f in emb_model.schema.std_fields if f in used]
    report: dict[str, Any] = {"model": str(model_dir), "n_items": len(items), "n_pairs": len(pairs or []),
                              "fields": list(fields), "methods": {}}
    t = time.perf_counter()
    encoded = emb_model.featurizer.encode(items)
    emb = emb_model.embed_encoded(encoded, progress=True)
    report["embed_items_per_s"] = round(len(items) / (time.perf_counter() - t), 1)
    log(f"embedded {len(items)} items in {time.perf_counter() - t:.1f}s")
    report["methods"]["itemtower (h)"] = score_embeddings(emb, items, fields, pairs)
    report["unk_rate"] = _unk_rate(encoded)

    # Other-view retrieval: two augmented views (training augmentations, no dropout) of a sample of items.
    import random

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(items), size=min(n_view_items, len(items)), replace=False)
    manifest_cfg = (emb_model.manifest.get("training") or {}).get("config") or {}
    views = TrainConfig.from_dict(manifest_cfg).views if manifest_cfg else TrainConfig().views
    r = random.Random(seed)
    v1 = emb_model.embed_encoded([make_view(encoded[i], views, r) for i in sample])
    v2 = emb_model.embed_encoded([make_view(encoded[i], views, r) for i in sample])
    report["other_view"] = M.other_view_recall(v1, v2, ks=(1, 10))
    report["alignment_uniformity"] = M.alignment_uniformity(v1, v2)

    if with_baselines:
        for name, make in _baselines(items, list(fields)).items():
            t = time.perf_counter()
            e = make()
            log(f"baseline {name}: built in {time.perf_counter() - t:.1f}s")
            report["methods"][name] = score_embeddings(e, items, fields, pairs)
    return report


def _baselines(items: Sequence[dict], fields: list[str]) -> dict[str, Callable[[], Any]]:
    return {
        "random": lambda: bl.random_embeddings(len(items), 64, seed=0),
        "one-hot std": lambda: bl.onehot_embeddings(items, fields),
        "tf-idf title": lambda: bl.tfidf_embeddings([it.get("title", "") for it in items]),
        "tf-idf all text": lambda: bl.tfidf_embeddings([bl.item_text(it) for it in items]),
    }


def _unk_rate(encoded) -> float:
    n_tok = sum(len(e.title) + sum(len(p) for ph in e.re for p in ph) for e in encoded)
    n_unk = sum(sum(t == 1 for t in e.title) + sum(t == 1 for ph in e.re for p in ph for t in p) for e in encoded)
    return round(n_unk / max(1, n_tok), 5)


def format_table(report: dict[str, Any], max_fields: int | None = None) -> str:
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


def save_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    md = [f"# itemtower evaluation: {report['model']}", "",
          f"{report['n_items']} items, {report['n_pairs']} relevance pairs, token UNK rate {report['unk_rate']:.4f}",
          "", format_table(report), "",
          f"Other-view retrieval: {json.dumps(report['other_view'])}",
          f"Alignment / uniformity: {json.dumps(report['alignment_uniformity'])}"]
    (d / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return d
