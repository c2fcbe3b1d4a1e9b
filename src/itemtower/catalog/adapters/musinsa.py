"""Musinsa men's tops and bottoms (Korean titles; ../shared/data/musinsa, see its SOURCE.md) -> items.

Input: `summary_*.csv`, UTF-8 with or without a BOM (read as `utf-8-sig`), columns read by header name because
their order differs between files. Output items:
- id = product_id, title = product_name;
- std: category_main, category_sub (a string, leading zeros kept as in the file: "001005" and "1010" are both
  there), brand (product_brand_name). No gender: it is "M" in every row, so it carries nothing;
- extras: price (int), href, num_likes ("4.2천" -> 4200, "1.5만" -> 15000), avg_rating (float),
  review_count ("4천+" -> 4000, "(20)" -> 20). Empty extras are left out; unparseable ones are warnings.
A product_id seen again (the same product listed in two categories) is a warning; the first row is kept.
There are no relevance pairs in this source.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from itemtower.catalog.adapters import ConvertResult
from itemtower.catalog import ERROR, WARNING, Problem

__all__ = ["convert", "parse_count"]

REQUIRED_COLUMNS = ("product_id", "product_name")
STD_COLUMNS = {"category_main": "category_main", "category_sub": "category_sub", "product_brand_name": "brand"}

_UNITS = {"천": 1_000, "만": 10_000}
# "4.2천", "1.5만+", "(20)", "(1천+)", "517", "21.0" (a count written by pandas as a float)
_COUNT_RE = re.compile(r"^\(?\s*(\d+(?:\.\d+)?)\s*([천만]?)\s*\+?\s*\)?$")


def parse_count(text: str) -> int | None:
    """A Korean-abbreviated count as an int: "4.2천" -> 4200, "1.5만" -> 15000, "4천+" -> 4000 (a lower
    bound: the site rounds), "(20)" -> 20, "21.0" -> 21. Empty -> None. Raises ValueError if unparseable."""
    s = text.strip().replace(",", "")
    if not s:
        return None
    m = _COUNT_RE.match(s)
    if not m:
        raise ValueError(f"not a count: {text!r}")
    return int(round(float(m.group(1)) * _UNITS.get(m.group(2), 1)))


def _extras(row: dict[str, str], lineno: int, item_id: str, fname: str, problems: list[Problem]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def parse(col: str, key: str, fn) -> None:
        raw = (row.get(col) or "").strip()
        if not raw:
            return
        try:
            value = fn(raw)
        except ValueError:
            problems.append(Problem(lineno, item_id, col, raw, f"{fname}: cannot parse; left out", WARNING))
            return
        if value is not None:
            out[key] = value

    parse("product_price", "price", lambda s: int(float(s.replace(",", ""))))
    if (row.get("product_href") or "").strip():
        out["href"] = row["product_href"].strip()
    parse("num_likes", "num_likes", parse_count)
    parse("avg_rating", "avg_rating", float)
    parse("review_count", "review_count", parse_count)
    return out


def convert(src_dir: str | Path) -> ConvertResult:
    """Convert every `summary_*.csv` in `src_dir` (in name order, so "first row kept" is deterministic).

    Raises FileNotFoundError if there is none. A file without the required columns is an error Problem and is
    skipped; a bad row is a Problem, never a crash.
    """
    src = Path(src_dir)
    files = sorted(src.glob("summary_*.csv"))
    if not files:
        raise FileNotFoundError(f"no Musinsa summary files (summary_*.csv) in {src}")
    problems: list[Problem] = []
    items: list[dict[str, Any]] = []
    first_seen: dict[str, str] = {}  # product_id -> "file:line"

    for path in files:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                problems.append(Problem(1, None, "header", header,
                                        f"{path.name}: missing column(s) {', '.join(missing)}; file skipped", ERROR))
                continue
            for row in reader:
                lineno = reader.line_num  # physical line of the row's end: right for quoted multi-line fields too
                item_id = (row.get("product_id") or "").strip()
                if not item_id:
                    problems.append(Problem(lineno, None, "product_id", row.get("product_id"),
                                            f"{path.name}: missing product_id; row skipped"))
                    continue
                if item_id in first_seen:
                    problems.append(Problem(lineno, item_id, "product_id", item_id,
                                            f"{path.name}: duplicate product_id (first at {first_seen[item_id]}); "
                                            "later row skipped", WARNING))
                    continue
                title = (row.get("product_name") or "").strip()
                if not title:
                    problems.append(Problem(lineno, item_id, "product_name", row.get("product_name"),
                                            f"{path.name}: empty product_name; row skipped"))
                    continue
                first_seen[item_id] = f"{path.name}:{lineno}"
                std = {name: [(row.get(col) or "").strip()] for col, name in STD_COLUMNS.items()
                       if (row.get(col) or "").strip()}
                item: dict[str, Any] = {"id": item_id, "title": title, "std": std}
                item.update(_extras(row, lineno, item_id, path.name, problems))
                items.append(item)
    return ConvertResult(items=items, pairs=[], problems=problems)
