"""serve/similar_query.py: the similar route's hand-parsed query parameters must be what FastAPI made of the old
signature, in the OpenAPI document and in what a good or bad value gives (the value, or the same 422 errors)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from itemtower.serve import similar_query


def _apps() -> tuple[FastAPI, FastAPI]:
    """The reference (FastAPI parses the declared parameters) and the hand-parsed route, same error handler."""
    async def errors(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse([{k: e.get(k) for k in ("type", "loc", "msg", "input", "ctx")} for e in exc.errors()],
                            status_code=422)

    ref, new = FastAPI(), FastAPI()
    for app in (ref, new):
        app.add_exception_handler(RequestValidationError, errors)

    @ref.get("/items/{item_id:path}/similar")
    async def ref_similar(
        item_id: str,
        k: int = Query(10, ge=1, description="how many results (at most the service's max_k, 100 by default)"),
        offset: int = Query(0, ge=0, le=1000, description="skip this many results (pagination: offset=k is page 2)"),
        per_group: int | None = Query(None, ge=1, description="at most this many results per group (diversity: "
                                      "colour variants of one product do not fill the page)"),
        group_by: str | None = Query(None, description="with per_group: group by this std field's values instead "
                                     "of by the items' `group`"),
    ) -> dict[str, Any]:
        return {"k": k, "offset": offset, "per_group": per_group, "group_by": group_by}

    @new.get("/items/{item_id:path}/similar", openapi_extra={"parameters": similar_query.PARAMETERS})
    async def new_similar(item_id: str, request: Request) -> dict[str, Any]:
        q = similar_query.parse(request.query_params)
        return {"k": q.k, "offset": q.offset, "per_group": q.per_group, "group_by": q.group_by}

    return ref, new


def _params(app: FastAPI) -> list[dict[str, Any]]:
    return app.openapi()["paths"]["/items/{item_id}/similar"]["get"]["parameters"]


def test_the_openapi_parameters_are_what_fastapi_generated():
    ref, new = _apps()
    assert _params(new) == _params(ref)


@pytest.mark.parametrize("query", [
    "", "k=5", "k=100", "k=1000000", "k=0", "k=-1", "k=abc", "k=", "k=05", "k=+5", "k=%205", "k=5.0", "k=1e3",
    "k=1_000", "k=%D9%A3", "k=99999999999999999999", "k=3&k=7", "offset=0", "offset=1000", "offset=1001",
    "offset=x", "per_group=1", "per_group=0", "per_group=", "per_group=two", "group_by=colour", "group_by=",
    "k=0&offset=-1&per_group=0", "k=2&colour=Red", "colour=Red&season=winter",
])
def test_values_and_errors_match_fastapi(query):
    """Every value FastAPI accepted is read the same; every one it refused gives the same errors."""
    ref, new = _apps()
    with TestClient(ref) as a, TestClient(new) as b:
        want, got = a.get(f"/items/x/similar?{query}"), b.get(f"/items/x/similar?{query}")
    assert (got.status_code, got.json()) == (want.status_code, want.json())


def test_given_counts_the_declared_parameters_only():
    """What the route uses to tell whether the rest of the query string holds filters."""
    assert similar_query.parse({"k": "3", "colour": "Red"}).given == 1
    assert similar_query.parse({}).given == 0
