"""Refuse, at the door, a request body that JSON cannot hold, before any route, model or index sees it.

Python's JSON parser (which FastAPI uses) accepts `NaN`, `Infinity`, `1e999` (-> inf) and lone surrogates
(`"\\ud800"`), and pydantic passes them on in extra keys. Stored, such an item fails every answer, snapshot and log
line that meets it. `JsonBodyGuard` is an ASGI middleware in front of every route: a JSON body holding such a value
is one 422 naming its field (itemtower.catalog.jsonsafe decides; catalog.check_item uses the same check for catalog files).

A middleware rather than an app-wide FastAPI dependency: a GET costs it one comparison (a dependency is resolved
on every request, reads included), and only JSON bodies are read, parsed once here and once more by FastAPI when
they pass: the price falls on writes and embeds, not on similar-by-id.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from itemtower.catalog.jsonsafe import json_problems
from itemtower.serve.schemas import ProblemOut
from itemtower.serve.validation import ApiError, summary

__all__ = ["JsonBodyGuard", "body_problems", "unreadable_body"]

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def _problem(path: str, value: Any, message: str) -> ProblemOut:
    """A body path ("items.3.title") -> the item index and field the rest of the service reports."""
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit():
        return ProblemOut(item=int(parts[1]), field=".".join(parts[2:]) or "item", value=value, message=message,
                          severity="error")
    return ProblemOut(field=path, value=value, message=message, severity="error")


def body_problems(body: bytes) -> ApiError | None:
    """ApiError(422) if the JSON `body` holds NaN/Infinity, a lone surrogate or nesting past jsonsafe.MAX_DEPTH;
    None if it is fine, or not JSON at all (FastAPI's own parsing then says what is wrong)."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return None
    found = json_problems(obj)
    if not found:
        return None
    problems = [_problem(p.path, p.value, p.message) for p in found]
    return ApiError(422, "invalid request: " + summary(problems), problems)


def _error_response(status: int, detail: str, errors: list[ProblemOut] = ()) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": [e.model_dump() for e in errors]}, status_code=status)


class JsonBodyGuard:
    """ASGI middleware: a JSON request body is read whole and checked (body_problems) before the app sees it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    await self.app(scope, _replay([message], receive), send)
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except HTTPException as e:  # the body-size limit (serve/app.py) raising from its receive
            await _error_response(e.status_code, str(e.detail))(scope, receive, send)
            return
        body = b"".join(chunks)
        error = body_problems(body) if body else None
        if error is not None:
            await _error_response(error.status, error.detail, error.errors)(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _is_json(scope: dict) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def _replay(messages: list[dict], receive: Any) -> Any:
    """A receive that gives `messages` first, then whatever the connection says (a disconnect)."""
    pending = list(messages)

    async def replayed() -> dict:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def unreadable_body(cause: BaseException | None) -> ApiError:
    """FastAPI's 400 "There was an error parsing the body" (bytes that are not UTF-8, JSON nested ~1,000 deep) as
    the 422 every other malformed body gets, saying which."""
    if isinstance(cause, RecursionError):
        why = "it is nested too deeply to parse (about 1,000 levels of objects/arrays)"
    elif isinstance(cause, UnicodeError):
        why = "it is not UTF-8 text"
    elif cause is not None:  # e.g. an integer of more than 4,300 digits (Python's int conversion limit)
        why = f"it could not be parsed ({type(cause).__name__}: {str(cause).split(';')[0][:200]})"
    else:
        why = "it could not be parsed"
    return ApiError(422, f"the request body cannot be read as JSON: {why}; send UTF-8 JSON "
                         "(Content-Type: application/json)",
                    [ProblemOut(field="body", value=None, message=why, severity="error")])
