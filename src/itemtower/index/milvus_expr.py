"""Milvus filter expressions for the VectorIndex filters, and the row form of an item (index/milvus_store.py).

An item's std fields go into a JSON field `std` as {field: [values]} (a bare string becomes a one-value list, as
index/widening.py's `std_values` reads it), so a filter {field: value} is `json_contains(std["field"], "value")`
for every field (AND), and an item without the field does not pass: the same rule as FaissIndex's. Literals are
written by hand, not with Milvus's `{name}` filter templates: milvus-lite does not parse templates.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["literal", "filter_expr", "std_json"]

# Milvus expression string literals know these escapes (milvus-lite: search/filter/tokens.py; Milvus the same
# C-style set); a raw newline ends the literal, so it must be escaped.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """`text` as a double-quoted Milvus string literal."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def std_json(item: Mapping[str, Any]) -> dict[str, list[str]]:
    """The `std` JSON field of an item's row: every std field as a list of its string values."""
    std = item.get("std")
    if not isinstance(std, Mapping):
        return {}
    out: dict[str, list[str]] = {}
    for field, values in std.items():
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            out[str(field)] = [v for v in values if isinstance(v, str)]
    return out


def filter_expr(filters: Mapping[str, str] | None, exclude: Iterable[str] | None = None,
                pk: str = "id") -> str:
    """The Milvus boolean expression for `filters` (AND of std-field memberships) and `exclude` ("" for none)."""
    parts = [f"json_contains(std[{literal(str(field))}], {literal(str(value))})"
             for field, value in (filters or {}).items()]
    excluded = sorted(set(exclude or ()))
    if excluded:
        parts.append(f"{pk} not in [{', '.join(literal(e) for e in excluded)}]")
    return " and ".join(parts)
