"""A shop's own table (CSV, TSV, Parquet, JSON Lines) -> items, through a column map written in TOML.

The map names which column is the id, the title (one column, or several joined), the group, the image, and which
columns become STD fields, RE fields and extras, each optionally with a list separator, value renames and, for
numbers, bucket edges (a free number such as a weight becomes a few categories). `table_suggest` writes one from
the data for the user to edit. A map looks like:

    id = "style_id"
    title = "name"                       # or ["brand", "name"]: joined with a space
    image = "image_url"                  # optional; group = "family_id" too
    missing = ["", "NA", "null"]         # values meaning "no value" (this list is the default)
    [std]
    colour = "baseColour"                # field = column
    tags = { column = "tags", sep = "|", rename = { "Navy Blue" = "Navy" } }
    weight = { column = "weight_g", buckets = [150, 300, 600] }
    [re]
    description = "description"
    [extra]
    price = "price"                      # copied as it is, never a feature

A bad row never stops the conversion: it becomes a `Problem` naming its line (the physical line a CSV row ends
on; the row number, 1-based, in Parquet) and its column, and the other rows are kept. No torch here.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itemtower.catalog.adapters import ConvertResult
from itemtower.catalog.adapters.table_read import cell_text, read_table, table_format
from itemtower.catalog import ERROR, WARNING, CatalogReport, Problem
from itemtower.catalog.schema import parse_number

__all__ = ["FieldSpec", "TableMap", "TableResult", "load_map", "parse_map", "convert", "bucket_label",
           "DEFAULT_MISSING"]

DEFAULT_MISSING = ("", "NA", "N/A", "n/a", "null", "NULL", "None", "nan", "NaN")

_TOP_KEYS = {"id", "title", "group", "image", "missing", "std", "re", "extra"}
_SPEC_KEYS = {"column", "sep", "rename", "buckets"}


@dataclass(frozen=True)
class FieldSpec:
    """How one column becomes one std/re field: split on `sep`, rename values, or bucket numbers at `buckets`."""

    column: str
    sep: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    buckets: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TableMap:
    """Which columns make which part of an item (see the module docstring)."""

    id: str
    title: tuple[str, ...]
    std: dict[str, FieldSpec] = field(default_factory=dict)
    re: dict[str, FieldSpec] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    image: str | None = None
    missing: frozenset[str] = frozenset(DEFAULT_MISSING)

    def columns(self) -> dict[str, str]:
        """column -> where the map uses it ("id", "std.colour"...), for 'column not in the table' messages."""
        used = {self.id: "id", **{c: "title" for c in self.title}}
        used.update({c: k for k, c in (("group", self.group), ("image", self.image)) if c})
        for sec in ("std", "re"):
            used.update({s.column: f"{sec}.{name}" for name, s in getattr(self, sec).items()})
        used.update({c: f"extra.{name}" for name, c in self.extra.items()})
        return used


@dataclass
class TableResult(ConvertResult):
    """A ConvertResult that also knows how many lines it read, for the same summary `validate` prints."""

    n_lines: int = 0
    source: str | None = None

    def report(self) -> CatalogReport:
        return CatalogReport(items=self.items, problems=self.problems, n_lines=self.n_lines, source=self.source)

    def write(self, out_path: str | Path) -> list[Path]:
        """Write the catalog; relative image paths, relative to the table's folder in the table, are rewritten
        relative to the catalog's folder (where `itemtower.images` resolves them)."""
        if self.source is not None:
            src_dir, out_dir = Path(self.source).parent, Path(out_path).parent
            self.items = [rebase_image(it, src_dir, out_dir) for it in self.items]
        return super().write(out_path)


def rebase_image(item: dict[str, Any], src_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The item with a relative local `image` path moved from src_dir's frame to out_dir's; URLs and absolute
    paths unchanged."""
    image = item.get("image")
    if not isinstance(image, str) or "://" in image or Path(image).is_absolute():
        return item
    rel = os.path.relpath(os.path.abspath(src_dir / image), os.path.abspath(out_dir))
    return {**item, "image": Path(rel).as_posix()}


# ---------------------------------------------------------------------------------------------------------------
# The map


def _spec(value: Any, where: str) -> FieldSpec:
    if isinstance(value, str):
        return FieldSpec(column=value)
    if not isinstance(value, dict) or not isinstance(value.get("column"), str):
        raise ValueError(f"{where}: expected a column name or {{ column = \"...\", sep = ..., rename = ..., "
                         f"buckets = [...] }}, got {value!r}")
    unknown = set(value) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(_SPEC_KEYS))}")
    sep = value.get("sep")
    if sep is not None and (not isinstance(sep, str) or not sep):
        raise ValueError(f"{where}: sep must be a non-empty string, got {sep!r}")
    rename = value.get("rename", {})
    if not isinstance(rename, dict) or not all(isinstance(v, str) for v in rename.values()):
        raise ValueError(f"{where}: rename must be a table of \"old\" = \"new\" strings")
    buckets = value.get("buckets")
    if buckets is not None:
        if (not isinstance(buckets, list) or not buckets
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in buckets)):
            raise ValueError(f"{where}: buckets must be a list of numbers (bucket edges), got {buckets!r}")
        if sorted(set(buckets)) != list(buckets):
            raise ValueError(f"{where}: bucket edges must be increasing, got {buckets!r}")
        buckets = tuple(float(b) for b in buckets)
    return FieldSpec(column=value["column"], sep=sep, rename=dict(rename), buckets=buckets)


def parse_map(d: dict[str, Any], source: str = "map") -> TableMap:
    """A TableMap from the TOML's dict. Raises ValueError naming the key that is wrong and what is expected."""
    unknown = set(d) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(_TOP_KEYS))}")
    if not isinstance(d.get("id"), str) or not d["id"]:
        raise ValueError(f"{source}: 'id' must name the id column, e.g. id = \"sku\"")
    title = d.get("title")
    title = (title,) if isinstance(title, str) else title
    if not title or not isinstance(title, (list, tuple)) or not all(isinstance(t, str) and t for t in title):
        raise ValueError(f"{source}: 'title' must name a column (or a list of columns joined with a space)")
    for key in ("group", "image"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise ValueError(f"{source}: {key!r} must be a column name")
    sections: dict[str, dict[str, Any]] = {}
    for sec in ("std", "re", "extra"):
        sections[sec] = d.get(sec, {})
        if not isinstance(sections[sec], dict):
            raise ValueError(f"{source}: [{sec}] must be a table of field = column")
    if not all(isinstance(c, str) for c in sections["extra"].values()):
        raise ValueError(f"{source}: [extra] values must be column names")
    reserved = set(sections["extra"]) & {"id", "title", "std", "re", "group", "image"}
    if reserved:
        raise ValueError(f"{source}: [extra] cannot be named {', '.join(sorted(reserved))}: those keys are the "
                         "item's own; pick another name (e.g. source_id)")
    missing = d.get("missing", list(DEFAULT_MISSING))
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise ValueError(f"{source}: 'missing' must be a list of strings")
    return TableMap(
        id=d["id"], title=tuple(title), group=d.get("group"), image=d.get("image"), missing=frozenset(missing),
        std={k: _spec(v, f"{source}: [std] {k}") for k, v in sections["std"].items()},
        re={k: _spec(v, f"{source}: [re] {k}") for k, v in sections["re"].items()},
        extra=dict(sections["extra"]),
    )


def load_map(path: str | Path) -> TableMap:
    """Read a TOML map (tomllib). Raises FileNotFoundError, or ValueError with the TOML error or the bad key."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ImportError("reading a TOML map needs Python 3.11 or newer (the standard library's tomllib)") from None

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"map file not found: {p} (write one with `itemtower convert table --suggest-map`)")
    try:
        d = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p}: not valid TOML: {e}") from None
    return parse_map(d, str(p))


# ---------------------------------------------------------------------------------------------------------------
# Rows -> items


def bucket_label(x: float, edges: tuple[float, ...]) -> str:
    """The bucket of x between `edges` as a category: "<150", "150-300", ">=600"."""
    def num(v: float) -> str:
        return f"{v:g}"

    i = bisect.bisect_right(edges, x)
    if i == 0:
        return f"<{num(edges[0])}"
    if i == len(edges):
        return f">={num(edges[-1])}"
    return f"{num(edges[i - 1])}-{num(edges[i])}"


def _values(raw: Any, spec: FieldSpec, missing: frozenset[str]) -> list[str] | str:
    """The field's values, or a message (str) when the cell cannot be used."""
    cells = raw if isinstance(raw, list) else [raw]
    if isinstance(raw, dict):
        return "an object, not a value or a list of values"
    out: list[str] = []
    for cell in cells:
        text = cell_text(cell)
        if text is None or text in missing:
            continue
        parts = [t.strip() for t in text.split(spec.sep)] if spec.sep else [text]
        for part in parts:
            if not part or part in missing:
                continue
            part = spec.rename.get(part, part)
            if spec.buckets is not None:
                x = parse_number(part)
                if x is None:
                    return f"not a number (the field is bucketed at {list(spec.buckets)})"
                part = bucket_label(x, spec.buckets)
            out.append(part)
    return list(dict.fromkeys(out))


def _get(row: dict[str, Any], column: str) -> Any:
    """row[column]; in JSON Lines a dotted column ("attributes.Fabric") reaches into nested objects."""
    if column in row or "." not in column:
        return row.get(column)
    node: Any = row
    for part in column.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def row_to_item(row: dict[str, Any], line: int, tmap: TableMap, problems: list[Problem]) -> dict[str, Any] | None:
    """One row -> an item, or None (the row is skipped, an error Problem says why). Unusable std/re cells are
    warnings: the cell is left out, the row kept."""
    item_id = cell_text(_get(row, tmap.id))
    if item_id is None or item_id in tmap.missing:
        problems.append(Problem(line, None, tmap.id, _get(row, tmap.id), "no id; row skipped"))
        return None
    parts = [cell_text(_get(row, c)) for c in tmap.title]
    title = " ".join(t for t in parts if t and t not in tmap.missing)
    if not title:
        problems.append(Problem(line, item_id, "+".join(tmap.title), _get(row, tmap.title[0]),
                                "empty title; row skipped"))
        return None
    item: dict[str, Any] = {"id": item_id, "title": title}
    for sec in ("std", "re"):
        fields: dict[str, list[str]] = {}
        for name, spec in getattr(tmap, sec).items():
            vals = _values(_get(row, spec.column), spec, tmap.missing)
            if isinstance(vals, str):
                problems.append(Problem(line, item_id, spec.column, _get(row, spec.column),
                                        f"{vals}; {sec}.{name} left out", WARNING))
            elif vals:
                fields[name] = vals
        if fields:
            item[sec] = fields
    for key, column in (("group", tmap.group), ("image", tmap.image)):
        value = cell_text(_get(row, column)) if column else None
        if value is not None and value not in tmap.missing:
            item[key] = value
    for name, column in tmap.extra.items():
        value = _get(row, column)
        text = cell_text(value)
        if isinstance(value, (list, dict)) or (text is not None and text not in tmap.missing):
            item.setdefault(name, value)  # never over id/title/std/re/group/image
    return item


def convert(src: str | Path, tmap: TableMap) -> TableResult:
    """Convert a table with a map. Rows without an id or title, duplicate ids (the first row is kept), rows that
    cannot be read are errors and skipped; cells that cannot be used are warnings. Raises ValueError when a
    column the map names is not in the table (CSV, TSV, Parquet: checked against the header first)."""
    problems: list[Problem] = []
    columns, rows = read_table(src, problems)
    fmt = table_format(src)
    absent = {c: use for c, use in tmap.columns().items() if c not in columns}
    if fmt in ("jsonl", "parquet"):  # nested objects / structs: a dotted column needs its first part
        absent = {c: u for c, u in absent.items() if c.split(".")[0] not in columns}
    if absent:
        listed = ", ".join(f"{c!r} ({u})" for c, u in absent.items())
        raise ValueError(f"{src}: the map names column(s) not in the table: {listed}; the table's columns: "
                         f"{', '.join(columns[:40])}" + (" ..." if len(columns) > 40 else ""))
    items: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    n_lines = 0
    for line, row in rows:
        n_lines = line
        item = row_to_item(row, line, tmap, problems)
        if item is None:
            continue
        if item["id"] in first:
            problems.append(Problem(line, item["id"], tmap.id, item["id"],
                                    f"duplicate id (first on line {first[item['id']]}); row skipped", ERROR))
            continue
        first[item["id"]] = line
        items.append(item)
    return TableResult(items=items, problems=problems, n_lines=n_lines, source=str(src))
