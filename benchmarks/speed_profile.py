"""torch.profiler tables for benchmarks/speed.py --profile: where an embed pass and a training step spend their
time, by operator (self CPU time), written next to the results and summarised in BENCHMARKS.md 14."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import speed_parts as sp


def _top(prof, path: Path, rows: int = 20) -> list[dict]:
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    path.write_text(table)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in events[:rows]]


def profile_embed(emb, encoded, path: Path, n: int = 2048) -> list[dict]:
    """The Embedder's embed_encoded over the first n encoded items (collate + forward + normalise)."""
    part = encoded[:n]
    emb.embed_encoded(part[:64])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        emb.embed_encoded(part)
    return _top(prof, path)


def profile_step(items, featurizer, encoded, path: Path) -> list[dict]:
    """Three default training steps (speed_parts.training's, the data building left out)."""
    prof = profile(activities=[ProfilerActivity.CPU])
    sp.training(items, featurizer, encoded, 2, lambda _: None, around_steps=lambda: prof)
    return _top(prof, path)
