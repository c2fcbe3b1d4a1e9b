"""What is wrong with a request, said so that the caller can fix it.

Every 4xx the service sends has the body `{"detail": "<one readable sentence>", "errors": [ProblemOut...]}`:
`detail` for a human, `errors` (item index, field, value, message) for a program. Shape errors found by pydantic
and schema problems found by `catalog.check_item` are reported the same way.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from itemtower.catalog import check_item, normalize_item
from itemtower.catalog.schema import Schema
from itemtower.serve.schemas import ItemIn, ProblemOut

__all__ = ["ApiError", "check_items", "check_filters", "check_k", "filters_from_query", "problems_from_pydantic"]

_MAX_SHOWN = 5  # problems spelled out in `detail`; all of them are in `errors`


class ApiError(Exception):
    """An error the caller can fix (or a 503 the operator can): becomes `{"detail", "errors"}` with `status`."""

    def __init__(self, status: int, detail: str, errors: Sequence[ProblemOut] = ()) -> None:
        # a lone surrogate echoed into the text must not make the error itself unsendable (UTF-8)
        detail = detail.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)


def describe(p: ProblemOut) -> str:
    where = f"item {p.item}: " if p.item is not None else ""
    value = "" if p.value is None else f" = {_short(p.value)}"
    return f"{where}field '{p.field}'{value}: {p.message}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary(problems: Sequence[ProblemOut]) -> str:
    text = "; ".join(describe(p) for p in problems[:_MAX_SHOWN])
    if len(problems) > _MAX_SHOWN:
        text += f"; ... and {len(problems) - _MAX_SHOWN} more (see errors)"
    return text


def check_items(
    items: Sequence[ItemIn],
    schema: Schema,
    partial: bool,
    numbered: bool = True,
    prefix: str = "",
) -> tuple[list[dict[str, Any]], list[ProblemOut]]:
    """Check items with catalog.check_item and normalize them.

    Args:
        items: the request's items (already shape-checked by pydantic).
        schema: the model's schema (unknown fields and values are warnings: the model maps them to UNK).
        partial: True for /embed and /search (id and title may be missing), False for PUT.
        numbered: report each problem's position in `items` (False for a single item).
        prefix: prepended to field names ("item." for /search, whose item sits under that key).

    Returns:
        (normalized items, warnings).

    Raises:
        ApiError(422) naming every error (item index, field, value, what is wrong).
    """
    errors: list[ProblemOut] = []
    warnings: list[ProblemOut] = []
    normalized: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        # exclude_unset: only what the client sent (a field left out is absent, not an empty default).
        obj = item.model_dump(exclude_unset=True)
        if "id" in obj:  # first, as in ItemOut (PUT sets it from the path after the body's own keys)
            obj = {"id": obj.pop("id"), **obj}
        for p in check_item(obj, schema, partial=partial):
            d = p.to_dict()
            out = ProblemOut(item=i if numbered else None, field=prefix + p.field, value=d["value"],
                             message=p.message, severity=p.severity)
            (errors if p.is_error else warnings).append(out)
        if not errors:
            norm = normalize_item(obj)
            if not norm.get("title") and not norm.get("std") and not norm.get("re"):
                warnings.append(ProblemOut(item=i if numbered else None, field=prefix + "item", value=None,
                                           message="no title, std or re: the vector carries no information"))
            normalized.append(norm)
    if errors:
        raise ApiError(422, "invalid item: " + summary(errors), errors)
    return normalized, warnings


def check_filters(filters: Mapping[str, str], schema: Schema, prefix: str = "") -> None:
    """Every filter must name one of the schema's std fields and give a non-empty value; else ApiError(422)."""
    errors = []
    known = list(schema.std_fields)
    for field, value in filters.items():
        if field not in schema.std_fields:
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            errors.append(ProblemOut(field=prefix + field, value=value, severity="error",
                                     message=f"unknown std field, cannot filter on it; std fields: {shown}"))
        elif not value.strip():
            errors.append(ProblemOut(field=prefix + field, value=value, severity="error",
                                     message="empty filter value"))
    if errors:
        raise ApiError(422, "invalid filter: " + summary(errors), errors)


def check_k(k: int, max_k: int) -> None:
    if not 1 <= k <= max_k:
        raise ApiError(422, f"k must be between 1 and {max_k}; got {k}",
                       [ProblemOut(field="k", value=k, severity="error", message=f"must be between 1 and {max_k}")])


def filters_from_query(params: Iterable[tuple[str, str]], reserved: set[str]) -> dict[str, str]:
    """Query parameters other than `reserved` ones (k) -> {std field: value}; a field given twice is a 422."""
    filters: dict[str, str] = {}
    for key, value in params:
        if key in reserved:
            continue
        if key in filters:
            raise ApiError(422, f"filter '{key}' given twice; give one value per std field",
                           [ProblemOut(field=key, value=value, severity="error", message="given twice")])
        filters[key] = value
    return filters


def problems_from_pydantic(errors: Sequence[dict[str, Any]]) -> list[ProblemOut]:
    """FastAPI's RequestValidationError.errors() -> ProblemOut, one per field.

    Pydantic reports a union (`str | list[str]`) as one error per member, with the member's type appended to the
    location; those are merged into one problem: "expected str or list[str], got int".
    """
    merged: dict[tuple, dict[str, Any]] = {}
    for e in errors:
        loc = list(e.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        tag = None
        if loc and isinstance(loc[-1], str) and e.get("type") in ("string_type", "list_type", "dict_type") \
                and loc[-1] in ("str", "list[str]", "dict[str, str]"):
            tag = loc.pop()
        key = tuple(loc)
        # for a missing field pydantic's "input" is the enclosing object: not worth echoing back
        value = None if e.get("type") == "missing" else e.get("input")
        entry = merged.setdefault(key, {"loc": loc, "tags": [], "msgs": [], "input": value})
        if tag:
            entry["tags"].append(tag)
        else:
            entry["msgs"].append(e.get("msg", "invalid"))

    out = []
    for entry in merged.values():
        loc = entry["loc"]
        item = None
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
            item, loc = loc[1], loc[2:]
        msgs = list(entry["msgs"])
        if entry["tags"]:
            msgs.insert(0, f"expected {' or '.join(entry['tags'])}, got {type(entry['input']).__name__}")
        value = entry["input"]
        if isinstance(value, (dict, list)) and len(repr(value)) > 200:
            value = _short(value, 200)
        out.append(ProblemOut(item=item, field=".".join(str(x) for x in loc) or "body", value=value,
                              message="; ".join(msgs), severity="error"))
    return out
