"""Catalogs: read, validate, normalize and write items (JSON Lines), and read/write relevance pairs (TSV).

Validation never stops at the first bad record: every problem is collected as a `Problem` naming the line, the
item id, the field and the value, so a 100k-line catalog with three broken lines is trained on the rest and the
three are reported. Errors drop the record (it cannot be used safely); warnings keep it (an unknown STD value just
maps to UNK in the model). `strict=True` refuses a catalog with any error instead.

No torch here: this module is used by the CLI, the service and the adapters.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itemtower.catalog.jsonsafe import json_problems
from itemtower.catalog.jsonsafe import parse_line as _parse_line  # a module global: benchmarks/json_check.py swaps it
from itemtower.catalog.problems import ERROR, WARNING, CatalogError, Problem, ProblemCounts, _allowed_text
from itemtower.catalog.schema import Schema
from itemtower.catalog.lines import read_pairs, write_catalog, write_pairs  # noqa: F401  (re-exported)

__all__ = [
    "Problem",
    "CatalogError",
    "CatalogReport",
    "normalize_item",
    "check_item",
    "read_catalog",
    "write_catalog",
    "read_pairs",
    "write_pairs",
]

# Extra keys an item cannot keep: the service's answers use these names for their own values next to the item's
# keys (a stored "score" would sit beside the similarity in every similar/search answer).
RESERVED_KEYS = {"score": "reserved for the similarity in similar/search answers; the key is dropped (rename it, "
                          "e.g. to rating)"}


# ---------------------------------------------------------------------------------------------------------------
# One item


def _is_id(value: Any) -> bool:
    # bool is an int subclass; True as an id is a bug in the producer, not an id.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def normalize_item(obj: dict[str, Any]) -> dict[str, Any]:
    """The canonical form of a (checked) item: id and group str, title stripped, every std/re value a list of
    stripped strings (a single string becomes [s]), empty std/re fields dropped, extra keys kept verbatim.

    Call `check_item` first: this function converts, it does not validate.
    """
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "id":
            out["id"] = str(value).strip()
        elif key == "title":
            out["title"] = value.strip() if isinstance(value, str) else value
        elif key in ("std", "re"):
            fields: dict[str, list[str]] = {}
            for name, vals in (value or {}).items():
                if type(vals) is str:  # the common case, kept cheap
                    fields[str(name)] = [vals.strip()]
                elif vals:  # None and [] mean absent
                    fields[str(name)] = [v.strip() if isinstance(v, str) else v for v in _as_list(vals)]
            out[key] = fields
        elif key == "group":
            if value is not None:
                out["group"] = str(value)
        elif key == "image":  # a photo path or URL (itemtower.images); a bad value was warned about: no photo
            if isinstance(value, str) and value.strip():
                out["image"] = value.strip()
        elif key in RESERVED_KEYS:  # warned about by check_item: answers put their own value there
            continue
        else:
            out[key] = value
    return out


class _Checker:
    """check_item with the schema's allowed values turned into sets once (read_catalog checks 100k items)."""

    def __init__(self, schema: Schema | None):
        self.schema = schema
        if schema is None:
            self.std_allowed: dict[str, frozenset[str] | None] | None = None
            self.re_fields: frozenset[str] | None = None
        else:
            self.std_allowed = {k: (frozenset(v) if v is not None else None) for k, v in schema.std_fields.items()}
            self.re_fields = frozenset(schema.re_fields)

    def check(self, obj: Any, partial: bool = False, line: int | None = None,
              json_safe: bool = False) -> list[Problem]:
        """`json_safe`: the caller has already ruled out what jsonsafe looks for (read_catalog, from the text)."""
        problems: list[Problem] = []

        def add(field_name: str, value: Any, message: str, severity: str = ERROR) -> None:
            problems.append(Problem(line, item_id, field_name, value, message, severity))

        item_id: str | None = None
        if not isinstance(obj, dict):
            hint = " (a JSON array: write one object per line)" if isinstance(obj, list) else ""
            add("record", obj, f"not a JSON object but {type(obj).__name__}{hint}")
            return problems
        # NaN, inf, lone surrogates, deep nesting: such an item could never be written back (index, log, answer)
        for jp in () if json_safe else json_problems(obj):
            add(jp.path, jp.value, jp.message)

        # id
        if "id" in obj and obj["id"] is not None:
            raw = obj["id"]
            if not _is_id(raw):
                add("id", raw, f"id must be a string or an integer, not {type(raw).__name__}")
            elif not str(raw).strip():
                add("id", raw, "empty id")
            else:
                item_id = str(raw).strip()
        elif not partial:
            add("id", None, "missing id")

        # title (null = absent: fine in a partial item, "missing" in a full one)
        if obj.get("title") is not None:
            title = obj["title"]
            if not isinstance(title, str):
                add("title", title, f"title must be a string, not {type(title).__name__}")
            elif not title.strip() and not partial:
                add("title", title, "empty title")
        elif not partial:
            add("title", None, "missing title")

        # group: optional; a scalar id of a product family
        if obj.get("group") is not None and not _is_id(obj["group"]):
            add("group", obj["group"], f"group must be a string or an integer, not {type(obj['group']).__name__}")

        # image: optional; a file path or an http(s) URL. A bad one is a warning: the item is kept without a photo
        # (whether the file exists and is an image: itemtower.images.check, run by `validate`)
        if obj.get("image") is not None and not (isinstance(obj["image"], str) and obj["image"].strip()):
            add("image", obj["image"], "image must be a non-empty string (a file path or an http(s) URL); "
                "the item is kept without a photo", WARNING)

        for key, why in RESERVED_KEYS.items():
            if key in obj:
                add(key, obj[key], why, WARNING)

        self._check_std(obj.get("std"), "std" in obj, add)
        self._check_re(obj.get("re"), "re" in obj, add)
        return problems

    def _check_std(self, std: Any, present: bool, add) -> None:
        if not _is_object(std, present, "std", "field -> value", add):
            return
        allowed_by_field = self.std_allowed
        for name, vals in std.items():
            values = _string_values(vals)
            if values is None or values == ():
                self._bad_value("std", name, vals, values, add, "a std value must be a string or a list of strings")
                continue
            if allowed_by_field is None:
                continue
            if name not in allowed_by_field:
                add(f"std.{name}", vals, "unknown std field (not in the schema); it is ignored by the model", WARNING)
                continue
            allowed = allowed_by_field[name]
            if allowed is None:
                continue
            for v in values:
                if v not in allowed:
                    add(f"std.{name}", v, f"unknown value; allowed: {_allowed_text(self.schema.std_fields[name])}",
                        WARNING)

    def _check_re(self, re_: Any, present: bool, add) -> None:
        if not _is_object(re_, present, "re", "field -> list of phrases", add):
            return
        for name, vals in re_.items():
            values = _string_values(vals)
            if values is None or values == ():
                self._bad_value("re", name, vals, values, add, "an re value must be a list of strings")
                continue
            if self.re_fields is not None and name not in self.re_fields:
                add(f"re.{name}", vals, "unknown re field (not in the schema); it is ignored by the model", WARNING)

    @staticmethod
    def _bad_value(section: str, name: str, vals: Any, values: tuple | None, add, type_message: str) -> None:
        """The slow path: say what is wrong with a value `_string_values` refused."""
        fname = f"{section}.{name}"
        if vals is None or vals == []:
            add(fname, vals, "no value; the field is treated as absent", WARNING)
        elif values == ():
            add(fname, vals, "empty string value")
        else:
            add(fname, vals, type_message)


def _is_object(value: Any, present: bool, name: str, shape: str, add) -> bool:
    """Whether std / re holds fields to check: absent or null is fine (False, nothing to check), anything but
    an object is an error (False)."""
    if not present or value is None:
        return False
    if not isinstance(value, dict):
        add(name, value, f"{name} must be an object ({shape}), not {type(value).__name__}")
        return False
    return True


def _string_values(vals: Any) -> tuple[str, ...] | None:
    """The stripped strings of a std/re value, () if one of them is empty, None if it is not a string or a list
    of strings (or is null / an empty list). The hot path of checking 100k items: keep it cheap."""
    if type(vals) is str:
        v = vals.strip()
        return (v,) if v else ()
    if type(vals) is not list or not vals:
        return None
    out = []
    for v in vals:
        if type(v) is not str:
            return None
        v = v.strip()
        if not v:
            return ()
        out.append(v)
    return tuple(out)


def check_item(obj: Any, schema: Schema | None, partial: bool = False) -> list[Problem]:
    """Every problem with one item (line=None: the caller knows the line).

    Errors: not an object; missing/empty id (allowed when `partial`, e.g. an update); id not str/int; title missing,
    empty (both allowed when `partial`) or not a string; std not an object, a std value not a string or list of
    strings, empty strings; re not an object, an re value not a list of strings (a single string is accepted).
    Warnings (need a schema): a std field the schema does not name, a value outside the field's allowed values,
    an re field the schema does not name. With `schema=None` only the structure is checked.
    """
    return _Checker(schema).check(obj, partial=partial)


# ---------------------------------------------------------------------------------------------------------------
# Catalog files


@dataclass
class CatalogReport(ProblemCounts):
    """The result of reading a catalog: the usable (normalized) items and every problem found."""

    items: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)
    n_lines: int = 0
    source: str | None = None

    @property
    def n_skipped(self) -> int:
        """Records dropped: lines with at least one error."""
        return len({p.line for p in self.problems if p.is_error})

    def summary(self, n_items: int | None = None) -> str:
        """One line for a log, plus the commonest kinds of problem (n_items: the items kept, when the report does
        not hold them: a CatalogStream's)."""
        head = (
            f"{self.source or 'catalog'}: {self.n_lines} lines, {len(self.items) if n_items is None else n_items} "
            f"items kept, {self.n_skipped} records skipped, {self.n_errors} errors, {self.n_warnings} warnings"
        )
        if not self.problems:
            return head
        kinds = Counter((p.severity, p.field, p.message.split(";")[0]) for p in self.problems)
        lines = [f"  {n} x {sev} {fld}: {msg}" for (sev, fld, msg), n in kinds.most_common(5)]
        return head + "\n" + "\n".join(lines)


def read_catalog(path: str | Path, schema: Schema | None = None, strict: bool = False) -> CatalogReport:
    """Read a JSON Lines catalog (UTF-8, one item per line; blank lines skipped), check and normalize every record.

    Records with errors are skipped and reported; records with only warnings are kept. A duplicate id is an error
    on the later line (the first is kept). `strict=True` raises `CatalogError` if there is any error.

    Raises FileNotFoundError if the file is missing, ValueError if no line of it is JSON (not a JSONL file).
    The whole catalog in memory; CatalogStream reads the same records one at a time.
    """
    stream = CatalogStream(path, schema)
    items = list(stream)
    report = stream.report(items)
    if strict and report.n_errors:
        raise CatalogError(report.problems, source=stream.path)
    return report


class CatalogStream:
    """The records of a catalog one at a time (issue 13: memory flat at a million items): iterate it for the
    usable, normalized items, exactly those read_catalog keeps, in file order; `problems`, `n_lines` and
    `n_items` grow as it goes (complete once the iteration ends). Only the ids seen (for the duplicate check,
    with their first line) are kept, never the item dicts. One pass per stream.

    Raises FileNotFoundError / IsADirectoryError at construction, and ValueError at the end of the iteration if
    no line of the file is JSON (not a JSONL file), as read_catalog does."""

    def __init__(self, path: str | Path, schema: Schema | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"catalog file not found: {self.path}")
        if self.path.is_dir():
            raise IsADirectoryError(f"catalog path is a directory, expected a .jsonl file: {self.path}")
        self.schema = schema
        self.problems: list[Problem] = []
        self.n_lines = self.n_items = 0
        self._started = False

    def report(self, items: list[dict[str, Any]] | None = None) -> CatalogReport:
        """The CatalogReport of what has been read (items: the list, if the caller kept one)."""
        return CatalogReport(items=items if items is not None else [], problems=self.problems,
                             n_lines=self.n_lines, source=str(self.path))

    def __iter__(self):
        if self._started:
            raise RuntimeError(f"{self.path}: a CatalogStream is read once; make a new one to read again")
        self._started = True
        checker = _Checker(self.schema)
        first_line_of: dict[str, int] = {}
        n_json = 0  # lines that parsed as JSON at all: zero of them means "this is not JSONL"
        problems = self.problems
        # Binary read, per-line decode: one badly encoded line is a problem on that line, not a crash of the file.
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                self.n_lines = lineno
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a BOM from a Windows editor
                if not raw.strip():
                    continue
                parsed = _parse_raw(lineno, raw)
                if isinstance(parsed, Problem):
                    problems.append(parsed)
                    continue
                obj, json_safe = parsed
                n_json += 1
                found = checker.check(obj, line=lineno, json_safe=json_safe)
                item_id = str(obj["id"]).strip() if isinstance(obj, dict) and _is_id(obj.get("id")) else None
                if item_id and not any(pr.is_error for pr in found):
                    first = first_line_of.get(item_id)
                    if first is not None:
                        found.append(Problem(lineno, item_id, "id", item_id, f"duplicate id (first on line {first})"))
                problems.extend(found)
                if any(pr.is_error for pr in found):
                    continue
                first_line_of[item_id] = lineno  # type: ignore[index]  # no error => id is present
                self.n_items += 1
                yield normalize_item(obj)
        if n_json == 0 and problems:
            raise ValueError(f"{self.path}: no line is valid JSON; a catalog is JSON Lines (one JSON object per "
                             f"line). First problem: {problems[0]}")


def _parse_raw(lineno: int, raw: bytes):
    """One line's bytes -> (object, certainly JSON-safe) or the Problem that drops the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Problem(lineno, None, "record", raw[:60], f"not UTF-8: {e.reason} at byte {e.start}")
    try:
        return _parse_line(text)
    except json.JSONDecodeError as e:
        return Problem(lineno, None, "record", text.strip(), f"malformed JSON (column {e.colno}): {e.msg}")
    except RecursionError:  # json's parser gives up near 1,000 levels: one bad line, not a failed file
        return Problem(lineno, None, "record", text.strip(),
                       "nested too deeply to parse (objects/arrays about 1,000 levels deep)")
    except ValueError as e:  # e.g. an integer of more than 4,300 digits (Python's int conversion limit)
        return Problem(lineno, None, "record", text.strip(), f"cannot be parsed: {str(e).split(';')[0]}")
