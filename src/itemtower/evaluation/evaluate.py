"""evaluate(model_dir, catalog, pairs) -> report: the tower against baselines on the same items and metrics.

Everything here takes embeddings as arrays (metrics.py); the model is only used to make them.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from itemtower.evaluation import baselines as bl
from itemtower.evaluation import metrics as M
from itemtower.ids import TOKEN_UNK
from itemtower.evaluation.report import format_table
from itemtower.vectors import l2_normalize

__all__ = ["evaluate", "EvalReport", "score_embeddings", "format_table", "probe_table", "save_report"]

K_MAX = 50
N_PROBE_ITEMS = 10_000  # the linear probes run on a seeded sample of at most this many items (time bound)
MAX_PROBE_FIELDS = 6  # default probe fields: the first 6 evaluated fields with >= 2 classes
PROBE_MAX_CLASSES = 50  # most frequent classes kept per probed field (a 1000-brand field would be slow and noisy)
PROBE_TEST_FRAC = 0.3


def _labels(items: Sequence[dict], field: str) -> list[str | None]:
    out = []
    for it in items:
        vs = (it.get("std") or {}).get(field)
        out.append("|".join(sorted(vs)) if vs else None)
    return out


def score_embeddings(emb, items: Sequence[dict], fields: Sequence[str], pairs=None,
                     labels: dict[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """Neighbour metrics of one embedding (dense array or sparse matrix) over the whole catalog, query excluded.

    Args:
        fields: STD fields whose consistency@10 is scored, read from the items.
        labels: extra answer keys, {name: one label per item (None = unlabelled)}: fields hidden from the model
            and the baselines (e.g. Musinsa's category_sub), scored as consistency@10:name.
    """
    t = time.perf_counter()
    n = emb.shape[0]
    idx = np.full((n, K_MAX), -1, dtype=np.int64)  # a catalog of <= K_MAX items: missing neighbours count as misses
    if n >= 2:
        k = min(K_MAX, n - 1)
        idx[:, :k] = M.top_k(emb, k, exclude_self=True)[0]
    out: dict[str, Any] = {}
    if pairs is not None:
        ids = [it["id"] for it in items]
        pm = M.pair_metrics(idx, ids, pairs, ks=(10, 50))
        out.update({k: pm[k] for k in ("recall@10", "recall@50", "ndcg@10", "mrr@10")})
    for f in fields:
        out[f"consistency@10:{f}"] = M.attribute_consistency(idx, _labels(items, f), k=10)
    for name, lab in (labels or {}).items():
        out[f"consistency@10:{name}"] = M.attribute_consistency(idx, list(lab), k=10)
    out["search_seconds"] = round(time.perf_counter() - t, 2)
    return out


class EvalReport(dict):
    """What `evaluate` returns: the report itself is this (JSON-serialisable) dict; the arrays behind it are kept
    out of the JSON as attributes, for `save_report` / `report.write_report`:

        .embeddings  {"h": float32 [N, h_dim] L2-normalised (what the service returns),
                      "z": float32 [N, proj_dim] L2-normalised (only when MODEL/resume.pt has the head)}
        .evaluated_items  the evaluated items, rows in the same order (not `.items`: that is dict.items)
        .model_dir   Path of the model
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.embeddings: dict[str, np.ndarray] = {}
        self.evaluated_items: Sequence[dict] = []
        self.model_dir: Path | None = None


def evaluate(model_dir: str | Path, items: Sequence[dict], pairs: Sequence[tuple[str, str]] | None = None,
             fields: Sequence[str] | None = None, with_baselines: bool = True, n_view_items: int = 5000,
             seed: int = 0, log: Callable[[str], None] = print, probe_fields: Sequence[str] | None = None,
             labels: dict[str, Sequence[Any]] | None = None,
             n_probe_items: int = N_PROBE_ITEMS, image_base: str | Path | None = None,
             image_cache: str | Path | None = None) -> EvalReport:
    """Evaluate the served tower (pth1 + pth2) on `items` and, optionally, baselines on the same items.

    With MODEL/resume.pt (written by training), the projection head is rebuilt too and z = head(h before its L2
    normalisation) is scored with the same retrieval metrics and linear probes as h, so that the served choice
    (h) can be judged; without it, z is skipped with a note in report["notes"].

    Args:
        model_dir: a trained model directory.
        items: normalized catalog items.
        pairs: relevance pairs (id_a, id_b), e.g. colour variants; None skips pair metrics.
        fields: STD fields for consistency@10 (default: every STD field of the model's schema that items use).
        n_view_items: items used for other-view retrieval (a sample, seeded).
        labels: answer keys hidden from the model, {name: one label per item}, scored as consistency@10.
        probe_fields: STD fields for the linear probe (default: the first 6 of `fields` with >= 2 classes).
        n_probe_items: the probes use a seeded sample of at most this many items.
        image_base, image_cache: a photo model reads each item's photo (paths relative to image_base, features
            cached in image_cache), as `itemtower embed` does; a text model ignores them.
    Returns:
        An `EvalReport` (a dict; the embeddings are attributes, not keys):
        {"n_items", "methods": {"itemtower (h)", "itemtower (z)" (with resume.pt), baselines...: metrics},
         "other_view": {...}, "alignment_uniformity": {...},
         "linear_probe": {field: {"h": acc, "z": acc or None, "majority": rate, "n_classes": c, "n_test": n}},
         "linear_probe_info": {...}, "z": {"available": bool, ...}, "notes": [...], "seconds": {step: s}, ...}
    """
    from itemtower.artifacts import Embedder

    seconds: dict[str, float] = {}
    emb_model = Embedder.load(model_dir)
    emb_model.image_base, emb_model.image_cache = image_base, image_cache
    if fields is None:
        used = {f for it in items for f in (it.get("std") or {})}
        fields = [f for f in emb_model.schema.std_fields if f in used]
    report = EvalReport({"model": str(model_dir), "n_items": len(items), "n_pairs": len(pairs or []),
                         "fields": list(fields), "methods": {}, "notes": []})
    report.evaluated_items, report.model_dir = items, Path(model_dir)
    t = time.perf_counter()
    encoded = emb_model.featurizer.encode(items)
    raw = emb_model.embed_encoded(encoded, progress=True, normalized=False,  # h before L2: the head's input
                                  photos=emb_model.photos_of(items))
    emb = l2_normalize(raw)
    seconds["embed"] = round(time.perf_counter() - t, 2)
    report["embed_items_per_s"] = round(len(items) / max(1e-9, time.perf_counter() - t), 1)
    log(f"embedded {len(items)} items in {time.perf_counter() - t:.1f}s")
    report.embeddings["h"] = emb
    report["methods"]["itemtower (h)"] = score_embeddings(emb, items, fields, pairs, labels)
    report["unk_rate"] = _unk_rate(encoded)

    t = time.perf_counter()
    if _score_z(report, Path(model_dir), raw, emb_model.dim, fields, pairs, labels, log):
        seconds["z"] = round(time.perf_counter() - t, 2)
    del raw

    t = time.perf_counter()
    report["linear_probe"], report["linear_probe_info"] = probe_table(
        report.embeddings, items, list(probe_fields) if probe_fields is not None else _default_probe_fields(
            items, fields), n_items=n_probe_items, seed=seed, explicit=probe_fields is not None, hidden=labels)
    seconds["probe"] = round(time.perf_counter() - t, 2)
    log(f"linear probes on {len(report['linear_probe'])} field(s) in {seconds['probe']:.1f}s")

    t = time.perf_counter()
    _other_view(report, emb_model, encoded, n_view_items, seed, where=f"{model_dir}/manifest.json")
    seconds["other_view"] = round(time.perf_counter() - t, 2)

    if with_baselines:
        t = time.perf_counter()
        _score_baselines(report, emb_model.schema.std_fields, items, fields, pairs, labels, log)
        seconds["baselines"] = round(time.perf_counter() - t, 2)
    report["seconds"] = seconds
    return report


def _score_baselines(report: EvalReport, schema_fields, items, fields, pairs, labels,
                     log: Callable[[str], None]) -> None:
    """The baselines on the same items, scored like h, into report["methods"]."""
    # One-hot uses every STD field of the schema, not only the fields scored for consistency.
    std_fields = [f for f in schema_fields if any(f in (it.get("std") or {}) for it in items)]
    for name, make in _baselines(items, std_fields).items():
        t_b = time.perf_counter()
        e = make()
        log(f"baseline {name}: built in {time.perf_counter() - t_b:.1f}s")
        report["methods"][name] = score_embeddings(e, items, fields, pairs, labels)


def _score_z(report: EvalReport, model_dir: Path, raw: np.ndarray, h_dim: int, fields, pairs, labels,
             log: Callable[[str], None]) -> bool:
    """z = L2(head(h before L2)) from the run's resume.pt, scored like h; or a note why not. True when scored."""
    from itemtower.artifacts import checkpoint

    head, proj_dim, note = checkpoint.load_head(model_dir, h_dim)
    if head is None:
        report["z"] = {"available": False, "reason": note}
        report["notes"].append(f"z (projection head output) skipped: {note}")
        log(f"z skipped: {note}")
        return False
    z = l2_normalize(_apply_head(head, raw))
    report.embeddings["z"] = z
    report["z"] = {"available": True, "proj_dim": proj_dim, "source": "resume.pt",
                   "definition": "L2-normalised head(h before L2 normalisation), as in the training loss"}
    report["methods"]["itemtower (z)"] = score_embeddings(z, report.evaluated_items, fields, pairs, labels)
    return True


def _other_view(report: EvalReport, emb_model, encoded, n_view_items: int, seed: int, where: str) -> None:
    """Other-view retrieval and alignment/uniformity: two augmented views (the model's training augmentations,
    no dropout) of a seeded sample of items."""
    import random

    from itemtower.artifacts import checkpoint
    from itemtower.features.views import make_view

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(encoded), size=min(n_view_items, len(encoded)), replace=False)
    views = checkpoint.views_config(emb_model.manifest, where=where)
    r = random.Random(seed)
    v1 = emb_model.embed_encoded([make_view(encoded[i], views, r) for i in sample])
    v2 = emb_model.embed_encoded([make_view(encoded[i], views, r) for i in sample])
    report["other_view"] = M.other_view_recall(v1, v2, ks=(1, 10))
    report["alignment_uniformity"] = M.alignment_uniformity(v1, v2)


# ----------------------------------------------------------------------------------------------------------------
# h before normalisation, the projection head, z
# ----------------------------------------------------------------------------------------------------------------


def _apply_head(head, raw: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, raw.shape[0], batch_size):
            out.append(head(torch.from_numpy(np.ascontiguousarray(raw[s: s + batch_size]))).numpy())
    return np.concatenate(out) if out else np.zeros((0, head.net[-1].out_features), dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------------
# linear probes
# ----------------------------------------------------------------------------------------------------------------


def _n_classes(labels: Sequence[str | None]) -> int:
    """Classes the probe can use: labels seen at least twice."""
    return sum(1 for c in Counter(lab for lab in labels if lab is not None).values() if c >= 2)


def _default_probe_fields(items: Sequence[dict], fields: Sequence[str], limit: int = MAX_PROBE_FIELDS) -> list[str]:
    """The first `limit` of `fields` with at least 2 usable classes."""
    out = []
    for f in fields:
        if len(out) >= limit:
            break
        if _n_classes(_labels(items, f)) >= 2:
            out.append(f)
    return out


def _standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension, so that h and z meet the probe's fixed L2 penalty on one scale."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def _nan_to_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def probe_table(embeddings: dict[str, np.ndarray], items: Sequence[dict], fields: Sequence[str],
                n_items: int = N_PROBE_ITEMS, seed: int = 0, explicit: bool = False,
                max_classes: int = PROBE_MAX_CLASSES,
                hidden: dict[str, Sequence[Any]] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Linear-probe accuracy of each STD field from every embedding in `embeddings` ("h", and "z" if present).

    `hidden`: answer keys the model never saw ({name: one label per item}), probed after the fields; the fairest
    probe of all, since no view could have copied them into h.

    All embeddings are probed on the same seeded sample of at most `n_items` items with the same split (same seed,
    same labels), after per-dimension standardisation; at most `max_classes` (most frequent) classes per field.
    Fields with fewer than 2 usable classes are skipped (kept with None accuracies when `explicit`).

    Returns:
        ({field: {"h": acc, "z": acc or None, "majority": rate, "n_classes": c, "n_test": n}}, info dict).
    """
    n = len(items)
    rows = np.arange(n)
    if n > n_items:
        rows = np.sort(np.random.default_rng([seed, 1]).choice(n, size=n_items, replace=False))
    sub = [items[i] for i in rows]
    feats = {k: _standardize(np.asarray(v)[rows]) for k, v in embeddings.items() if v is not None}
    table: dict[str, dict[str, Any]] = {}
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: lbfgs on [<=10k, <=512] makes many small products, and threaded BLAS is 3-25x
    # slower there when the cores are shared (1,500 items x 3 fields on 2 busy cores: 3.3 s threaded, 0.13 s not).
    targets = [(f, _labels(sub, f)) for f in fields]
    targets += [(name, [lab[i] for i in rows]) for name, lab in (hidden or {}).items()]
    with threadpool_limits(limits=1):
        for f, labels in targets:
            if _n_classes(labels) < 2 and not explicit:
                continue
            row: dict[str, Any] = {"h": None, "z": None, "majority": None, "n_classes": _n_classes(labels),
                                   "n_test": 0}
            for name, x in feats.items():
                res = M.linear_probe(x, labels, seed=seed, test_frac=PROBE_TEST_FRAC, max_classes=max_classes)
                row[name] = _nan_to_none(res["accuracy"])
                row.update(majority=_nan_to_none(res["majority"]), n_classes=int(res["n_classes"]),
                           n_test=int(res["n_test"]))
            table[f] = row
    info = {"n_items": int(rows.size), "test_frac": PROBE_TEST_FRAC, "max_classes": max_classes, "seed": seed,
            "features": "L2-normalised embedding, standardised per dimension",
            "classifier": "sklearn LogisticRegression(max_iter=500, C=1)"}
    return table, info


def _baselines(items: Sequence[dict], fields: list[str]) -> dict[str, Callable[[], Any]]:
    return {
        "random": lambda: bl.random_embeddings(len(items), 64, seed=0),
        "one-hot std": lambda: bl.onehot_embeddings(items, fields),
        "tf-idf title": lambda: bl.tfidf_embeddings([it.get("title", "") for it in items]),
        "tf-idf all text": lambda: bl.tfidf_embeddings([bl.item_text(it) for it in items]),
    }


def _unk_rate(encoded) -> float:
    n_tok = sum(len(e.title) + sum(len(p) for ph in e.re for p in ph) for e in encoded)
    n_unk = sum(sum(t == TOKEN_UNK for t in e.title) + sum(t == TOKEN_UNK for ph in e.re for p in ph for t in p)
                for e in encoded)
    return round(n_unk / max(1, n_tok), 5)


def save_report(report: dict[str, Any], out_dir: str | Path, model_dir: str | Path | None = None,
                items: Sequence[dict] | None = None, embeddings: Any = None, color_field: str | None = None,
                **kwargs: Any) -> Path:
    """report.json + report.md in out_dir; with model_dir also loss.png, with items + embeddings also map.png.

    `embeddings` may be an array [N, D] or `EvalReport.embeddings` (its "h" is mapped). Extra keyword arguments go
    to `report.write_report` (map_method, max_map_items, tsne_budget_s, seed, log).
    """
    from itemtower.evaluation.report import write_report

    return write_report(report, out_dir, model_dir, items, embeddings, color_field, **kwargs)
