"""The error responses the routes declare in the OpenAPI document, written once (every body is ErrorResponse)."""

from __future__ import annotations

from typing import Any

from itemtower.serve.schemas import ErrorResponse

__all__ = ["NO_MODEL", "NOT_FOUND", "WRITE_AUTH", "TOO_LARGE", "error"]


def error(status: int, description: str) -> dict[int, dict[str, Any]]:
    """{status: {...}} for a route's `responses=`: the ErrorResponse body and what the status means there."""
    return {status: {"model": ErrorResponse, "description": description}}


NO_MODEL = error(503, "no model loaded")
NOT_FOUND = error(404, "no item with this id in the index")
TOO_LARGE = error(413, "request body larger than max_body_bytes")
WRITE_AUTH = {**error(401, "API key required (the service has ITEMTOWER_API_KEY set)"), **error(403, "wrong API key")}
