"""The query parameters of GET /items/{id}/similar, parsed by hand: the hot path of the service.

FastAPI's per-parameter handling (a `solve_dependencies` pass that validates k, offset, per_group and group_by
through pydantic, one field at a time) was the largest piece of the route's own CPU after the search
(BENCHMARKS.md, section 11e). The route therefore declares no query parameters in its signature; `PARAMETERS` puts
them in the OpenAPI document exactly as FastAPI wrote them (serve/openapi.py still adds k's maximum and
group_by's enum), and `parse` reads them: plain digits are taken at once, anything else goes through pydantic with
the same constraints, so a bad value is the same RequestValidationError (the same 422 body) as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Mapping

from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError

__all__ = ["PARAMETERS", "NAMES", "SimilarQuery", "parse"]

_K_DOC = "how many results (at most the service's max_k, 100 by default)"
_OFFSET_DOC = "skip this many results (pagination: offset=k is page 2)"
_PER_GROUP_DOC = "at most this many results per group (diversity: colour variants of one product do not fill the page)"
_GROUP_BY_DOC = "with per_group: group by this std field's values instead of by the items' `group`"

# What FastAPI generated for `k: int = Query(10, ge=1)`, `offset: int = Query(0, ge=0, le=1000)`,
# `per_group: int | None = Query(None, ge=1)` and `group_by: str | None = Query(None)` (tests/test_similar_query.py
# checks the document against a route declared that way).
PARAMETERS: list[dict[str, Any]] = [
    {"name": "k", "in": "query", "required": False, "description": _K_DOC,
     "schema": {"type": "integer", "minimum": 1, "description": _K_DOC, "default": 10, "title": "K"}},
    {"name": "offset", "in": "query", "required": False, "description": _OFFSET_DOC,
     "schema": {"type": "integer", "maximum": 1000, "minimum": 0, "description": _OFFSET_DOC, "default": 0,
                "title": "Offset"}},
    {"name": "per_group", "in": "query", "required": False, "description": _PER_GROUP_DOC,
     "schema": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "description": _PER_GROUP_DOC,
                "title": "Per Group"}},
    {"name": "group_by", "in": "query", "required": False, "description": _GROUP_BY_DOC,
     "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": _GROUP_BY_DOC,
                "title": "Group By"}},
]
NAMES = frozenset(p["name"] for p in PARAMETERS)  # every other query parameter is a filter

# The slow path: pydantic with the declared constraints, for anything that is not plain digits in range.
_ADAPTERS = {
    "k": TypeAdapter(Annotated[int, Field(ge=1)]),
    "offset": TypeAdapter(Annotated[int, Field(ge=0, le=1000)]),
    "per_group": TypeAdapter(Annotated[int | None, Field(ge=1)]),
}
_BOUNDS = {"k": (1, None), "offset": (0, 1000), "per_group": (1, None)}


@dataclass(frozen=True)
class SimilarQuery:
    k: int = 10
    offset: int = 0
    per_group: int | None = None
    group_by: str | None = None
    given: int = 0  # how many of the four were in the query string (the rest of it is filters)


def _fast_int(raw: str, name: str) -> int | None:
    """`raw` as an int when it is plain digits (no sign, no leading zero, no spaces) within the bounds, else None
    (pydantic decides)."""
    if not raw.isdigit() or not raw.isascii() or len(raw) > 9 or (raw[0] == "0" and raw != "0"):
        return None
    v = int(raw)
    lo, hi = _BOUNDS[name]
    return v if v >= lo and (hi is None or v <= hi) else None


def parse(params: Mapping[str, str]) -> SimilarQuery:
    """k, offset, per_group and group_by from the query string (its last value, as FastAPI reads a repeated
    parameter). Raises RequestValidationError with FastAPI's own errors (loc ("query", name)) for a bad value."""
    values: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for name in ("k", "offset", "per_group"):
        raw = params.get(name)
        if raw is None:
            continue
        v = _fast_int(raw, name)
        if v is None:
            try:
                v = _ADAPTERS[name].validate_python(raw)
            except ValidationError as e:
                errors.extend({**err, "loc": ("query", name, *err["loc"])} for err in e.errors(include_url=False))
                continue
        values[name] = v
    group_by = params.get("group_by")
    if group_by is not None:
        values["group_by"] = group_by
    if errors:
        raise RequestValidationError(errors)
    return SimilarQuery(**values, given=len(values))
