"""Adapters: public catalogs in their own formats -> items in the itemtower form (see docs/design-notes.md).

Each adapter module has `convert(src_dir, ...) -> ConvertResult`. An adapter never crashes on one bad row: the
row becomes a `Problem` in the result and the rest is converted. No torch here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from itemtower.catalog import Problem, write_catalog, write_pairs

__all__ = ["ConvertResult", "ADAPTERS", "get_adapter", "pairs_path_for"]

# name -> module; resolved lazily so importing the package does not import every adapter
ADAPTERS = {"myntra": "itemtower.catalog.adapters.myntra", "musinsa": "itemtower.catalog.adapters.musinsa"}


def pairs_path_for(out_path: str | Path) -> Path:
    """Where the pairs of a catalog live: `x/myntra.jsonl` -> `x/myntra.pairs.tsv`."""
    p = Path(out_path)
    return p.with_name(p.stem + ".pairs.tsv")


@dataclass
class ConvertResult:
    """Items (normalized form), relevance pairs (may be empty) and every problem met while converting."""

    items: list[dict[str, Any]]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def n_errors(self) -> int:
        return sum(1 for p in self.problems if p.is_error)

    @property
    def n_warnings(self) -> int:
        return sum(1 for p in self.problems if not p.is_error)

    def summary(self) -> str:
        return (
            f"{len(self.items)} items, {len(self.pairs)} pairs, "
            f"{self.n_errors} errors, {self.n_warnings} warnings"
        )

    def write(self, out_path: str | Path) -> list[Path]:
        """Write the catalog JSONL to `out_path` and, if there are pairs, `<stem>.pairs.tsv` beside it.
        Returns the paths written."""
        out = Path(out_path)
        write_catalog(out, self.items)
        written = [out]
        if self.pairs:
            pp = pairs_path_for(out)
            write_pairs(pp, self.pairs)
            written.append(pp)
        return written


def get_adapter(name: str) -> Callable[..., ConvertResult]:
    """The `convert` function of the adapter called `name` ("myntra", "musinsa")."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    return importlib.import_module(ADAPTERS[name]).convert
