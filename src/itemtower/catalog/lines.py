"""Line files written and read whole: catalogs written as JSON Lines, relevance pairs (TSV). Out of records.py
(which reads and checks catalogs) to keep each module one job; both re-export them as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from itemtower.catalog.problems import _short

__all__ = ["read_pairs", "write_catalog", "write_pairs"]


def write_catalog(path: str | Path, items: Iterable[dict[str, Any]]) -> int:
    """Write items as JSON Lines (UTF-8, Korean kept readable); returns the number written."""
    return _write_lines(path, (json.dumps(it, ensure_ascii=False) for it in items))


def _write_lines(path: str | Path, lines: Iterable[str]) -> int:
    """Each string and a newline to a UTF-8 file (its folder made); returns the number of lines written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
            n += 1
    return n


# ---------------------------------------------------------------------------------------------------------------
# Relevance pairs: `id_a<TAB>id_b` per line (unordered pairs of items that should be near each other)


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Read `id_a<TAB>id_b` lines; '#' comments and blank lines are ignored. A bad line raises ValueError naming it
    (pairs are small, hand-made or generated: a bad one is a bug to fix, not noise to skip)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"pairs file not found: {p}")
    pairs: list[tuple[str, str]] = []
    with p.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            parts = [s.strip() for s in line.rstrip("\r\n").split("\t")]
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ValueError(f"{p}: line {lineno}: expected 'id_a<TAB>id_b', got {_short(line.rstrip())}")
            pairs.append((parts[0], parts[1]))
    return pairs


def write_pairs(path: str | Path, pairs: Iterable[tuple[Any, Any]]) -> int:
    """Write pairs as `id_a<TAB>id_b` lines; returns the number written."""
    def lines():
        for a, b in pairs:
            a, b = str(a), str(b)
            if any(c in s for s in (a, b) for c in "\t\r\n"):
                raise ValueError(f"an id in a pair contains a tab or newline: {(a, b)!r}")
            yield f"{a}\t{b}"

    return _write_lines(path, lines())
