"""The served weight of h's semantic slice, chosen on the catalog itself when training ends (issue 9).

h = cat(LayerNorm(main), s x LayerNorm(slice)): the main part is the tower proper (it ranks colour variants and
near-duplicates), the slice is what e5 taught (same kind of product). Which mix serves a catalog best depends on
the catalog: where the structured fields and text separate items well (Myntra: 20 std fields and a description)
the main part should lead (s near 0.5); where they do not (Musinsa: a short title and a brand) the slice should
(s of 2 or more; BENCHMARKS.md 13b, 13e).

The rule (BENCHMARKS.md 13f), label-free, on the teacher's own titles (the seeded training items whose e5 vectors
the distillation used: no extra encode): for each candidate scale s, h_s = cat(main, s x slice) with both parts as
trained (slice at scale 1), and two top-10 overlaps of h_s's neighbours: with the main part's own (`keep`) and with
e5's (`teach`). The served s maximises

    a x keep(s) + (1 - a) x teach(s),    a = the main part's own top-10 overlap with e5's

that is, h keeps the main part's neighbourhoods as far as the main part is credible on a neutral reference (how
much of e5's neighbourhoods it already has: 0.44 on Myntra, 0.13-0.18 on Musinsa) and the teacher's for the
rest. No constant is fitted. It replaced RMS(slice) / RMS(main) of h (13c), which drifted with the number of
training steps (the projection head absorbs any scale of h, so nothing pins the LayerNorm gains it read): this
rule reads neighbourhoods at each candidate, so a drift of the parts' norms moves the chosen s with it (13f:
Musinsa 2.8 after 343 steps, 0.5 after 3,623, both at the labelled optimum; Myntra 0.25).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from itemtower.evaluation.topk import top_k

__all__ = ["SCALES", "Agreement", "teacher_agreement", "chosen_scale", "serve_chosen_slice"]

SCALES = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)  # the candidates; neither part ever vanishes from h
K = 10


def _neighbours(v: np.ndarray, k: int = K) -> np.ndarray:
    """(N, k) rows of each row's k nearest other rows by cosine (evaluation.topk's exact search)."""
    v = np.asarray(v, dtype=np.float32)
    return top_k(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12), k)[0]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each row's neighbours that the two (N, k) lists have in common."""
    return float(np.mean([len(set(x) & set(y)) / a.shape[1] for x, y in zip(a.tolist(), b.tolist())]))


@dataclass(frozen=True)
class Agreement:
    """What the rule reads: `main` = the main part's own top-10 overlap with the teacher's; per candidate s,
    `keep[s]` = h_s's overlap with the main part's neighbours, `teach[s]` = with the teacher's."""

    main: float
    keep: dict[float, float]
    teach: dict[float, float]

    def score(self, s: float) -> float:
        return self.main * self.keep[s] + (1.0 - self.main) * self.teach[s]


def teacher_agreement(main: np.ndarray, sem: np.ndarray, teacher: np.ndarray,
                      scales: Sequence[float] = SCALES) -> Agreement:
    """The overlaps for the parts (N, .) as trained (slice at scale 1) and the teacher's vectors (N, e) of the
    same N items; needs N > 10."""
    if len(main) <= K:
        raise ValueError(f"the agreement needs more than {K} teacher items; got {len(main)}")
    ref, own = _neighbours(teacher), _neighbours(main)
    keep, teach = {}, {}
    for s in scales:
        nn = _neighbours(np.concatenate([main, s * sem], 1))
        keep[float(s)], teach[float(s)] = _overlap(nn, own), _overlap(nn, ref)
    return Agreement(_overlap(own, ref), keep, teach)


def chosen_scale(agreement: Agreement) -> float:
    """The candidate of the highest score; among ties (within 1e-9) the smallest."""
    scores = {s: agreement.score(s) for s in agreement.keep}
    best = max(scores.values())
    return min(s for s, v in scores.items() if v >= best - 1e-9)


def serve_chosen_slice(out: str | Path, encoded: Sequence[Any], teacher: Any,
                       log: Callable[[str], None] = print) -> float | None:
    """Set the exported model's served sem_scale by the rule above, in OUT/manifest.json (the weights do not
    change: the scale is a constant of the served norm), recording the agreement per candidate under
    manifest["training"]["sem_scale_chosen"]. `encoded`: EncodedItems of the catalog; `teacher`: training's
    Teacher (rows into `encoded`, e5 vectors). None (nothing changed) without a slice or a teacher."""
    from itemtower.artifacts.checkpoint import read_manifest, write_manifest
    from itemtower.artifacts.embedder import Embedder

    out = Path(out)
    emb = Embedder.load(out)
    cfg = emb.tower.cfg
    if not cfg.sem_dim or teacher is None or len(teacher.rows) <= K:
        return None
    exported = cfg.sem_scale if cfg.sem_scale > 0 else 1.0
    h = emb.embed_encoded([encoded[int(i)] for i in teacher.rows], normalized=False)
    main, sem = h[:, :cfg.main_dim], h[:, cfg.main_dim:] / exported  # the slice as trained: scale 1
    agreement = teacher_agreement(main, sem, teacher.vectors)
    scale = chosen_scale(agreement)
    manifest = read_manifest(out)
    manifest["model"]["sem_scale"] = scale
    manifest.setdefault("training", {})["sem_scale_chosen"] = {
        "served": scale, "items": len(teacher.rows), "main_agrees_with_teacher": round(agreement.main, 4),
        "by_scale": {f"{s:g}": {"keep": round(agreement.keep[s], 4), "teach": round(agreement.teach[s], 4),
                                "score": round(agreement.score(s), 4)} for s in agreement.keep},
        "rule": "max of a * keep + (1 - a) * teach over the candidates, a = the main part's top-10 overlap with "
                "the teacher's on its titles (training/slice_weight.py)"}
    write_manifest(out, manifest)
    log(f"semantic slice served at {scale:g} (of {', '.join(f'{s:g}' for s in agreement.keep)}): on "
        f"{len(teacher.rows)} teacher titles the main part shares {agreement.main:.3f} of e5's top 10; there h "
        f"keeps {agreement.keep[scale]:.3f} of the main part's and {agreement.teach[scale]:.3f} of e5's; "
        "--no-auto-sem-scale keeps --sem-scale")
    return scale
