"""A column map suggested from the data (`itemtower convert table --suggest-map`), written as commented TOML.

Each column is profiled (how many rows have it, distinct values, length in characters and words, numbers, paths
or URLs, list separators) and given one role, with the reason in a comment beside it, for a person to check:
- a unique, always-present short column -> `id` (a name like "id", "sku", "*_id" preferred);
- a column of paths or URLs to images -> `image` (other URLs -> extras);
- the shortest varied text with a title-like name, or else the most varied one -> `title`;
- near-unique codes (SKUs, barcodes, lists of ids) and near-unique whole numbers -> left out (commented);
- a value shared by (nearly) every row, or a column in under 1% of the rows -> left out;
- short categorical text -> `[std]` (lists split on "|", ";" or "," -> `sep`);
- long or varied text (descriptions, variant names) -> `[re]`;
- numbers: repeated ones (a price ladder, sizes) -> `[std]` as categories; free ones (weights) -> `[std]` with
  quantile bucket edges; both also copied as they are to `[extra]`.
No torch here.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from itemtower.catalog.adapters.table import DEFAULT_MISSING
from itemtower.catalog.adapters.table_read import cell_text, read_table
from itemtower.catalog import Problem
from itemtower.catalog.schema import parse_number

__all__ = ["ColumnProfile", "Suggestion", "profile_columns", "suggest", "format_map", "suggest_map"]

MAX_ROWS = 50_000  # rows profiled: enough to tell a category from a code
NEAR_UNIQUE = 0.9  # as infer_schema
CATEGORICAL = 0.2  # distinct / values at or below this: a category
REPEATED_NUMBERS = 0.5  # numbers with at most this share distinct are a ladder (price points, sizes, years)
LONG_TEXT_CHARS, LONG_TEXT_WORDS = 60, 8
N_BUCKETS = 5
SPARSE = 0.01  # a column in fewer rows than this share is left out

_IMAGE_EXT = re.compile(r"\.(jpe?g|png|webp|gif|bmp|tiff?|avif)(\?.*)?$", re.IGNORECASE)
_URL_OR_PATH = re.compile(r"^(https?://|s3://|gs://|file:/|\.{0,2}/|[A-Za-z]:\\)|^[\w.-]+(/[\w.%-]+)+$")
_ID_NAMES = re.compile(r"^(id|sku|ean|gtin|upc|uuid|code|style_?id|item_?id|product_?id|article_?id)$|(_id|id)$",
                       re.IGNORECASE)
_TITLE_NAMES = re.compile(r"title|name", re.IGNORECASE)
_IMAGE_NAMES = re.compile(r"image|img|photo|picture|thumbnail", re.IGNORECASE)


@dataclass
class ColumnProfile:
    """What a column holds, over the profiled rows (values: each list element counts as one value)."""

    name: str
    n_rows: int = 0
    n_present: int = 0
    n_values: int = 0
    counts: Counter = field(default_factory=Counter)
    chars: int = 0
    words: int = 0
    n_numeric: int = 0
    n_whole: int = 0
    n_url: int = 0
    n_image: int = 0
    n_code: int = 0
    numbers: list[float] = field(default_factory=list)
    seps: Counter = field(default_factory=Counter)  # rows whose text holds the separator
    lists: int = 0  # rows holding a real list (JSON Lines)

    @property
    def n_distinct(self) -> int:
        return len(self.counts)

    @property
    def ratio(self) -> float:
        return self.n_distinct / max(1, self.n_values)

    def share(self, n: int) -> float:
        return n / max(1, self.n_values)

    @property
    def avg_chars(self) -> float:
        return self.chars / max(1, self.n_values)

    @property
    def avg_words(self) -> float:
        return self.words / max(1, self.n_values)

    def add(self, value: Any, missing: frozenset[str]) -> None:
        vals = value if isinstance(value, list) else [value]
        texts = [t for t in map(cell_text, vals) if t is not None and t not in missing]
        if not texts:
            return
        self.n_present += 1
        self.lists += isinstance(value, list)
        for t in texts:
            self.n_values += 1
            self.counts[t] += 1
            self.chars += len(t)
            self.words += len(t.split())
            x = parse_number(t)
            if x is not None:
                self.n_numeric += 1
                self.n_whole += x.is_integer()
                self.numbers.append(x)
            if _URL_OR_PATH.match(t):
                self.n_url += 1
                self.n_image += bool(_IMAGE_EXT.search(t))
            self.n_code += not any(c.isspace() for c in t) and any(c.isdigit() for c in t)
            for sep in ("|", ";", ","):
                self.seps[sep] += sep in t


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    """Nested objects (JSON Lines) one level down as dotted columns: {"attrs": {"Fit": x}} -> "attrs.Fit"."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}.{k2}": v2 for k2, v2 in v.items() if not isinstance(v2, dict)})
        else:
            out[k] = v
    return out


def profile_columns(columns: list[str], rows: Iterable[tuple[int, dict[str, Any]]],
                    missing: frozenset[str] = frozenset(DEFAULT_MISSING), max_rows: int = MAX_ROWS
                    ) -> list[ColumnProfile]:
    """One profile per column (in table order, then dotted columns as found), over the first max_rows rows."""
    profiles: dict[str, ColumnProfile] = {c: ColumnProfile(c) for c in columns}
    n = 0
    for _, row in rows:
        n += 1
        for k, v in _flatten(row).items():
            if k not in profiles:
                if k.split(".")[0] in profiles and not profiles[k.split(".")[0]].n_values:
                    del profiles[k.split(".")[0]]  # a column of objects: its dotted parts stand for it
                profiles[k] = ColumnProfile(k)
            profiles[k].add(v, missing)
        if n >= max_rows:
            break
    for p in profiles.values():
        p.n_rows = n
    return list(profiles.values())


@dataclass
class Suggestion:
    """One column's role: id, title, image, std, re, extra or dropped, and why."""

    column: str
    role: str
    field: str = ""
    reason: str = ""
    sep: str | None = None
    buckets: list[float] | None = None
    also_extra: bool = False


def field_name(column: str) -> str:
    """"baseColour" -> "base_colour", "Sleeve Length" -> "sleeve_length", "attrs.Fit" -> "fit"."""
    tail = column.split(".")[-1]
    tail = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", tail)
    return re.sub(r"[^0-9a-z]+", "_", tail.lower()).strip("_") or "field"


def _n(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _examples(p: ColumnProfile, k: int = 3) -> str:
    vals = [v if len(v) <= 24 else v[:21] + "..." for v, _ in p.counts.most_common(k)]
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in vals)


def _sep(p: ColumnProfile) -> str | None:
    """The list separator of a short-text column, if one splits it into fewer, shorter, shared parts."""
    if p.avg_chars > 80:
        return None
    for sep, n in p.seps.most_common():
        if n < 0.1 * p.n_values:
            break
        parts = Counter(s.strip() for v, c in p.counts.items() for s in v.split(sep) for _ in range(c) if s.strip())
        if len(parts) < p.n_distinct and sum(map(len, parts)) / max(1, len(parts)) <= 40:
            return sep
    return None


def _buckets(numbers: list[float]) -> list[float]:
    """Quantile edges, 3 significant digits, for N_BUCKETS buckets of about equal size."""
    if len(numbers) < 2:
        return []
    edges = statistics.quantiles(numbers, n=N_BUCKETS, method="inclusive")
    return sorted({float(f"{e:.3g}") for e in edges})


def _pick_id(profiles: list[ColumnProfile]) -> ColumnProfile | None:
    unique = [p for p in profiles if p.n_rows and p.n_present == p.n_rows and p.n_distinct == p.n_values
              and p.lists == 0 and p.avg_chars <= 64]
    named = [p for p in unique if _ID_NAMES.search(p.name)]
    return (named or unique or [None])[0]


def _pick_title(profiles: list[ColumnProfile]) -> ColumnProfile | None:
    text = [p for p in profiles if p.n_values and p.share(p.n_numeric) < 0.5 and p.share(p.n_url) < 0.5
            and p.avg_words >= 1.5 and p.avg_chars <= 200]
    # a title-like name first, then nearly always there, then the most varied (a brand name is not a title)
    return max(text, key=lambda p: (bool(_TITLE_NAMES.search(p.name)) and p.ratio >= 0.3,
                                    p.n_present >= 0.9 * p.n_rows, p.n_distinct), default=None)


def _role(p: ColumnProfile) -> Suggestion:
    """The role of a column that is not the id, title or image."""
    s = Suggestion(p.name, "dropped", field_name(p.name))
    dist = f"{p.n_distinct:,} distinct of {p.n_values:,}"
    if not p.n_values:
        s.reason = "empty"
    elif p.n_present < SPARSE * p.n_rows:
        s.reason = f"in {p.n_present:,} of {p.n_rows:,} rows only: too sparse to compare items by"
    elif p.n_distinct == 1 and p.n_present >= 0.9 * p.n_rows:
        s.reason = f"one value ({_examples(p, 1)}) in every row: says nothing about similarity"
    elif p.share(p.n_url) >= 0.8:
        s.role, s.reason = "extra", f"URLs or paths ({dist}): kept as an extra, not a feature"
    elif p.share(p.n_numeric) >= 0.95:
        if p.ratio > NEAR_UNIQUE and p.n_whole == p.n_numeric:
            s.reason = f"near-unique whole numbers ({dist}): ids or codes, no similarity"
        elif p.ratio <= REPEATED_NUMBERS:
            s.role, s.also_extra = "std", True
            s.reason = f"{_n(p.n_distinct, 'repeated number')} (a price ladder, sizes): categories; also an extra"
        else:
            s.role, s.also_extra, s.buckets = "std", True, _buckets(p.numbers)
            s.reason = f"free numbers ({dist}): bucketed at quantiles; also an extra"
    elif p.ratio > NEAR_UNIQUE and p.share(p.n_code) >= 0.9:
        s.reason = f"near-unique codes ({dist}, e.g. {_examples(p, 1)}): SKUs or ids, no similarity"
    elif p.avg_chars > LONG_TEXT_CHARS or p.avg_words > LONG_TEXT_WORDS:
        s.role, s.reason = "re", f"long text, {p.avg_words:.0f} words on average"
    else:
        s.sep = _sep(p)
        if s.sep is not None:
            parts = Counter(x.strip() for v in p.counts for x in v.split(s.sep) if x.strip())
            if len(parts) > NEAR_UNIQUE * sum(len(v.split(s.sep)) for v in p.counts) and p.share(p.n_code) >= 0.9:
                s.sep, s.reason = None, f"lists of near-unique codes ({dist}): ids, no similarity"
                return s
            s.role, s.reason = "std", f"lists split on {s.sep!r}: {len(parts):,} values, e.g. {_examples(p)}"
        elif p.ratio <= CATEGORICAL or p.n_distinct <= 30:
            s.role, s.reason = "std", f"{_n(p.n_distinct, 'value')}, e.g. {_examples(p)}"
        else:
            s.role, s.reason = "re", f"varied short text ({dist}): phrases, tokenized"
    return s


def suggest(profiles: list[ColumnProfile]) -> list[Suggestion]:
    """One Suggestion per column; exactly one id and one title (if any column can be them), at most one image."""
    out: list[Suggestion] = []
    id_col = _pick_id(profiles)
    if id_col is None:  # no unique column: the most varied one, and duplicates will be reported
        id_col = max(profiles, key=lambda p: (p.ratio if p.n_present == p.n_rows else 0, -p.avg_chars))
        out.append(Suggestion(id_col.name, "id", "id", f"NOT unique ({id_col.n_distinct:,} distinct of "
                                                       f"{id_col.n_rows:,} rows): duplicate ids will be reported"))
    else:
        out.append(Suggestion(id_col.name, "id", "id", f"unique in all {id_col.n_rows:,} rows"))
    rest = [p for p in profiles if p is not id_col]
    images = [p for p in rest if p.n_values and p.share(p.n_url) >= 0.8
              and (p.share(p.n_image) >= 0.5 or _IMAGE_NAMES.search(p.name))]
    if images:
        im = max(images, key=lambda p: p.n_present)
        out.append(Suggestion(im.name, "image", "image", f"image paths or URLs in {im.n_present:,} rows"))
        rest = [p for p in rest if p is not im]
    title = _pick_title(rest)
    if title is not None:
        out.append(Suggestion(title.name, "title", "title", f"text, {title.avg_words:.1f} words on average, "
                                                             f"{title.n_distinct:,} distinct of {title.n_values:,}"))
        rest = [p for p in rest if p is not title]
    used: set[str] = {"id", "title", "std", "re", "group", "image"}  # extras are top-level keys: never these
    for p in rest:
        s = _role(p)
        base, i = s.field, 2
        while s.field in used:
            s.field, i = f"{base}_{i}", i + 1
        used.add(s.field)
        out.append(s)
    return out


# ---------------------------------------------------------------------------------------------------------------
# TOML, by hand: strings as JSON strings (valid TOML basic strings), numbers plainly, a comment per line


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


def _str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _line(key: str, value: str, comment: str, width: int = 44) -> str:
    text = f"{_key(key)} = {value}"
    return f"{text.ljust(width)}  # {comment}" if comment else text


def _spec_value(s: Suggestion) -> str:
    opts = [f"column = {_str(s.column)}"]
    if s.sep:
        opts.append(f"sep = {_str(s.sep)}")
    if s.buckets:
        opts.append(f"buckets = [{', '.join(map(_num, s.buckets))}]")
    return _str(s.column) if len(opts) == 1 else "{ " + ", ".join(opts) + " }"


def format_map(suggestions: list[Suggestion], src: str, n_rows: int, map_path: str = "MAP.toml") -> str:
    """The suggested map as commented TOML, readable by `table.load_map`."""
    by_role: dict[str, list[Suggestion]] = {}
    for s in suggestions:
        by_role.setdefault(s.role, []).append(s)
    out = [f"# itemtower column map, suggested from {src} ({n_rows:,} rows profiled). Check each line, then:",
           f"#   itemtower convert table --src {src} --map {map_path} --out catalog.jsonl",
           "# A field may also be a table: { column = \"...\", sep = \"|\", rename = { \"Navy Blue\" = \"Navy\" }, "
           "buckets = [100, 500] }", ""]
    for role in ("id", "title", "image"):
        for s in by_role.get(role, []):
            out.append(_line(role, _str(s.column), s.reason))
    if "title" not in by_role:
        out.append('title = ""  # no text column found: name the column (or columns) that describe the item')
    out.append('# group = ""  # a column naming the product family (colour variants share it), if there is one')
    out.append(_line("missing", "[" + ", ".join(map(_str, DEFAULT_MISSING)) + "]", "cell values meaning no value"))
    for sec in ("std", "re"):
        out += ["", f"[{sec}]"] + [_line(s.field, _spec_value(s), s.reason) for s in by_role.get(sec, [])]
    extras = [s for s in suggestions if s.role == "extra" or s.also_extra]
    out += ["", "[extra]  # copied into the items as they are, never features"]
    out += [_line(s.field, _str(s.column), s.reason if s.role == "extra" else "") for s in extras]
    dropped = by_role.get("dropped", [])
    if dropped:
        out += ["", "# Left out (no similarity, or too sparse); move a line into a section above to use it anyway:"]
        out += [f"# {_line(s.field, _str(s.column), s.reason)}" for s in dropped]
    return "\n".join(out) + "\n"


def suggest_map(src: str | Path, out: str | Path | None = None, max_rows: int = MAX_ROWS
                ) -> tuple[str, list[Suggestion], list[Problem]]:
    """Profile a table, suggest a map and (with `out`) write it. Returns (TOML text, suggestions, problems met
    while reading)."""
    problems: list[Problem] = []
    columns, rows = read_table(src, problems)
    profiles = profile_columns(columns, rows, max_rows=max_rows)
    if not profiles or not profiles[0].n_rows:
        raise ValueError(f"{src}: no rows to profile")
    suggestions = suggest(profiles)
    text = format_map(suggestions, str(src), profiles[0].n_rows, str(out) if out else "MAP.toml")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
    return text, suggestions, problems
