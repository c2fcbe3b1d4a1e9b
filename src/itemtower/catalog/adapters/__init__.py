"""Adapters: public catalogs in their own formats -> items in the itemtower form (see docs/design-notes.md).

Each adapter module has `convert(src_dir, ...) -> ConvertResult`. An adapter never crashes on one bad row: the
row becomes a `Problem` in the result and the rest is converted. No torch here.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from itemtower.catalog import Problem, write_catalog, write_pairs
from itemtower.catalog.problems import ProblemCounts

__all__ = ["ConvertResult", "ADAPTERS", "get_adapter", "jsonl_objects", "pairs_path_for"]

# name -> module; resolved lazily so importing the package does not import every adapter
ADAPTERS = {"myntra": "itemtower.catalog.adapters.myntra", "musinsa": "itemtower.catalog.adapters.musinsa"}


def jsonl_objects(path: Path, problems: list[Problem], bad_json: str,
                  not_object: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line of a JSON Lines file that is a JSON object; the others become error
    Problems with the adapter's wording (`bad_json` formats {error}). Blank lines are skipped."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                problems.append(Problem(lineno, None, "record", raw.decode("utf-8", "replace").strip(),
                                        bad_json.format(error=e)))
                continue
            if not isinstance(obj, dict):
                problems.append(Problem(lineno, None, "record", obj, not_object))
                continue
            yield lineno, obj


def pairs_path_for(out_path: str | Path) -> Path:
    """Where the pairs of a catalog live: `x/myntra.jsonl` -> `x/myntra.pairs.tsv`."""
    p = Path(out_path)
    return p.with_name(p.stem + ".pairs.tsv")


@dataclass
class ConvertResult(ProblemCounts):
    """Items (normalized form), relevance pairs (may be empty) and every problem met while converting."""

    items: list[dict[str, Any]]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

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
