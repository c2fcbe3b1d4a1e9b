"""The report's two plots: the training loss curve (loss.png) and a 2-D map of the embeddings (map.png).

matplotlib's Agg canvas directly (no pyplot, so the caller's backend and figure registry are left alone). The map
is t-SNE (PCA to 50 dims first) of a seeded sample of at most 3,000 items; when t-SNE would take longer than
`tsne_budget_s` (estimated from a 500-item pilot run), it runs on fewer items, and below 1,000 items it falls
back to a 2-D PCA; the caption says which.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["loss_plot", "map_plot", "default_color_field", "LOSS_PNG", "MAP_PNG", "MAX_MAP_ITEMS"]

LOSS_PNG, MAP_PNG = "loss.png", "map.png"
MAX_MAP_ITEMS = 3000
TSNE_PILOT = 500  # items in the pilot run that estimates the t-SNE time
TSNE_MIN_ITEMS = 1000  # below this (when the budget forces it), a 2-D PCA of the full sample is shown instead
TSNE_EXPONENT = 1.4  # t-SNE time ~ n^1.4 here (Barnes-Hut, 1000 iterations: 500 -> 2.2 s, 3000 -> 24 s)
TOP_VALUES = 10
CJK_FONTS = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "Malgun Gothic", "AppleGothic", "UnDotum")


# ----------------------------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _font_rc() -> dict[str, Any]:
    """DejaVu Sans first, then any installed Hangul font (matplotlib falls back glyph by glyph)."""
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    return {"font.family": ["DejaVu Sans", *[f for f in CJK_FONTS if f in have]]}


def _save(fig, path: Path) -> None:
    import matplotlib

    with matplotlib.rc_context(_font_rc()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Gg]lyph.*missing.*")
        fig.savefig(path, dpi=110)


def _epoch_end_steps(losses: Sequence[float], epoch_train: Sequence[float | None]) -> list[float]:
    """The step (1-based) at which each epoch ended, recovered from the per-epoch train-loss means.

    Every epoch has the same number of steps L except possibly the last (a time budget); L is the smallest length
    whose block means reproduce `epoch_train` (None entries are not checked). Falls back to equal splits.
    """
    n, e = len(losses), len(epoch_train)
    if e == 0 or n == 0:
        return []
    cs = np.concatenate([[0.0], np.cumsum(np.asarray(losses, dtype=np.float64))])
    for L in range(math.ceil(n / e), n + 1):
        if (e - 1) * L >= n:
            break
        ends = [min((i + 1) * L, n) for i in range(e)]
        ends[-1] = n
        ok = True
        for i, m in enumerate(epoch_train):
            a, b = (ends[i - 1] if i else 0), ends[i]
            if m is not None and not math.isclose((cs[b] - cs[a]) / (b - a), m, rel_tol=1e-6, abs_tol=1e-6):
                ok = False
                break
        if ok:
            return [float(x) for x in ends]
    return [n * (i + 1) / e for i in range(e)]


def _trailing_mean(y: np.ndarray, w: int) -> np.ndarray:
    """Mean of the last w values at each position (fewer at the start)."""
    cs = np.concatenate([[0.0], np.cumsum(y)])
    lo = np.maximum(np.arange(1, len(y) + 1) - w, 0)
    return (cs[1:] - cs[lo]) / (np.arange(1, len(y) + 1) - lo)


def loss_plot(history: Mapping[str, Any], path: str | Path) -> dict[str, Any] | None:
    """history.json -> PNG of the per-step loss (faint), its moving average, and the per-epoch val loss."""
    loss = [float(x) for x in history.get("loss") or []]
    if not loss:
        return None
    steps = np.asarray(history.get("step") or range(1, len(loss) + 1), dtype=np.float64)[: len(loss)]
    y = np.asarray(loss, dtype=np.float64)
    w = int(np.clip(len(y) // 20, min(5, max(1, len(y) // 3)), 200))
    smooth = _trailing_mean(y, w)

    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    ax.plot(steps, y, color="tab:blue", alpha=0.25, linewidth=0.8, label="train loss, per step")
    ax.plot(steps, smooth, color="tab:blue", linewidth=2, label=f"train loss, trailing mean of {w} steps")
    val = list(history.get("epoch_val_loss") or [])
    n_val = 0
    if any(v is not None for v in val):
        ends = _epoch_end_steps(loss, history.get("epoch_train_loss") or [None] * len(val))
        if len(ends) != len(val):
            ends = [len(loss) * (i + 1) / len(val) for i in range(len(val))]
        offset = float(steps[0]) - 1.0  # steps are 1-based and continuous (also across a resume)
        xs = [offset + x for x, v in zip(ends, val) if v is not None]
        vs = [float(v) for v in val if v is not None]
        n_val = len(vs)
        ax.plot(xs, vs, "o-", color="tab:orange", linewidth=1.5, markersize=5, label="validation loss, end of epoch")
    dist = np.asarray([float(x) for x in history.get("distill_loss") or []][: len(y)], dtype=np.float64)
    if len(dist) == len(y):  # a distilled run (train --distill-items): the teacher term, on the same steps
        ax.plot(steps, _trailing_mean(dist, w), color="tab:green", linewidth=2,
                label=f"distillation KL(e5 || h), trailing mean of {w} steps")
    ax.set_title("Training loss (NT-Xent on z)" + (" and distillation (on h)" if len(dist) == len(y) else ""))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", framealpha=0.9)
    _save(fig, Path(path))
    caption = (f"Contrastive loss over {len(loss)} steps (faint: per step; solid: trailing mean of {w} steps)"
               + ("; green: the distillation term (e5's neighbourhoods taught to h)" if len(dist) == len(y) else "")
               + (f"; orange: validation loss after each of {n_val} epochs (NT-Xent's level grows with the "
                  "number of in-batch negatives, so read the validation curve's trend, not its level against "
                  "training)." if n_val else "; no validation loss."))
    return {"file": Path(path).name, "caption": caption, "n_steps": len(loss)}


def _std_labels(items: Sequence[dict], field: str) -> list[str | None]:
    out = []
    for it in items:
        vs = (it.get("std") or {}).get(field)
        out.append("|".join(sorted(str(v) for v in vs)) if vs else None)
    return out


def default_color_field(report: Mapping[str, Any], items: Sequence[dict]) -> str | None:
    """"category" when the items have it, else the first evaluated field, else the first STD field of the items."""
    used = {f for it in items for f in (it.get("std") or {})}
    for f in ["category", *(report.get("fields") or [])]:
        if f in used:
            return f
    return sorted(used)[0] if used else None


def _tsne(x: np.ndarray, seed: int):
    """2-D t-SNE (Barnes-Hut, 1000 iterations), with every OpenMP pool held at one thread while it runs.

    Why the limit: after torch has run with more than one thread in this process (the tower in `evaluate`,
    training in the tests), its OpenMP runtime's idle workers make sklearn's t-SNE 3-20x slower (300 items on 2
    cores: 3.5 s -> 11 s in a default environment, 65 s with OMP_NUM_THREADS=1 after torch.set_num_threads(2)).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3.0)))
    with threadpool_limits(limits=1, user_api="openmp"):
        return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed, max_iter=1000,
                    n_jobs=1).fit_transform(x)


def _project(emb: np.ndarray, method: str, budget_s: float, seed: int) -> tuple[np.ndarray, np.ndarray, str, str]:
    """[n, D] -> (xy [m, 2], rows used [m], the method in words for the caption, "t-SNE" or "PCA")."""
    from sklearn.decomposition import PCA

    n = emb.shape[0]
    rows = np.arange(n)
    if n < 4:
        method = "pca"
    if method != "pca":
        x50 = PCA(n_components=min(50, n, emb.shape[1]), random_state=seed).fit_transform(emb)
        if method == "tsne" or n <= TSNE_PILOT:
            return _tsne(x50, seed), rows, f"t-SNE (after PCA to {x50.shape[1]} dims) of {n} items", "t-SNE"
        # auto: time a pilot on TSNE_PILOT items and extrapolate (t ~ n^TSNE_EXPONENT)
        t = time.perf_counter()
        _tsne(x50[:TSNE_PILOT], seed)
        pilot = time.perf_counter() - t
        est = pilot * (n / TSNE_PILOT) ** TSNE_EXPONENT
        if est <= budget_s:
            return _tsne(x50, seed), rows, f"t-SNE (after PCA to {x50.shape[1]} dims) of {n} items", "t-SNE"
        m = int(TSNE_PILOT * (budget_s / max(pilot, 1e-9)) ** (1.0 / TSNE_EXPONENT))
        if m >= TSNE_MIN_ITEMS:
            sub = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
            return (_tsne(x50[sub], seed), sub,
                    f"t-SNE (after PCA to {x50.shape[1]} dims) of {m} of the {n} sampled items (t-SNE on all "
                    f"{n} was estimated at {est:.0f} s, over the {budget_s:.0f} s budget)", "t-SNE")
        reason = f"t-SNE was estimated at {est:.0f} s, over the {budget_s:.0f} s budget"
    else:
        reason = ""
    pca = PCA(n_components=2, random_state=seed)
    xy = pca.fit_transform(emb)
    var = pca.explained_variance_ratio_
    text = f"PCA to 2 dims of {n} items ({var[0]:.1%} + {var[1] if var.size > 1 else 0:.1%} of the variance)"
    return xy, rows, text + (f"; {reason}" if reason else ""), "PCA"


def map_plot(embeddings: np.ndarray, items: Sequence[dict], color_field: str, path: str | Path,
             title: str = "Item embeddings (h)", method: str = "auto", max_items: int = MAX_MAP_ITEMS,
             tsne_budget_s: float = 30.0, seed: int = 0) -> dict[str, Any]:
    """A 2-D map of a seeded sample of the embeddings, coloured by the top values of one STD field.

    Args:
        embeddings: [N, D], rows in the order of `items`.
        method: "auto" (t-SNE within the time budget, else fewer items, else PCA), "tsne" or "pca".
    Returns:
        {"file", "caption", "method", "n_points", "color_field"}.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(items):
        raise ValueError(f"embeddings must be [len(items)={len(items)}, D], got shape {emb.shape}")
    if method not in ("auto", "tsne", "pca"):
        raise ValueError(f"method must be 'auto', 'tsne' or 'pca', not {method!r}")
    n = len(items)
    sample = np.arange(n)
    if n > max_items:
        sample = np.sort(np.random.default_rng(seed).choice(n, size=max_items, replace=False))
    t = time.perf_counter()
    xy, rows, how, short = _project(emb[sample], method, tsne_budget_s, seed)
    seconds = time.perf_counter() - t
    idx = sample[rows]
    labels = _std_labels([items[i] for i in idx], color_field)
    counts = Counter(lab for lab in labels if lab is not None)
    top = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]]
    pos = {v: i for i, v in enumerate(top)}
    code = np.array([pos.get(lab, -1) if lab is not None else -1 for lab in labels])

    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    fig = _figure(10, 7)
    ax = fig.add_subplot()
    size = float(np.clip(3000.0 / max(len(idx), 1), 4, 30))
    other = code < 0
    if other.any():
        n_missing = sum(lab is None for lab in labels)
        lab = f"other ({int(other.sum())})" + (f", incl. {n_missing} without a value" if n_missing else "")
        ax.scatter(xy[other, 0], xy[other, 1], s=size, c="lightgray", alpha=0.6, linewidths=0, label=lab)
    for i, v in enumerate(top):
        m = code == i
        ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap(i % 10), alpha=0.8, linewidths=0,
                   label=f"{v} ({int(m.sum())})")
    axis = "PC" if short == "PCA" else short
    ax.set_title(f"{title}: {short} of {len(idx)} items, coloured by {color_field}")
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.set_xticks([]), ax.set_yticks([])
    ax.legend(title=color_field, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              markerscale=max(1.0, 30.0 / size) ** 0.5, frameon=False)
    _save(fig, Path(path))
    caption = (f"{how}, coloured by {color_field} (top {min(TOP_VALUES, len(top))} values, the rest in grey); "
               f"projection took {seconds:.1f} s.")
    return {"file": Path(path).name, "caption": caption, "method": short,
            "n_points": int(len(idx)), "color_field": color_field, "seconds": round(seconds, 2)}
