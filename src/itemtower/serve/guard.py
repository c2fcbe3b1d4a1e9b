"""Refuse, at the door, a request body that JSON cannot hold, before any route, model or index sees it.

Python's JSON parser (which FastAPI uses) accepts `NaN`, `Infinity`, `1e999` (-> inf) and lone surrogates
(`"\\ud800"`), and pydantic passes them on in extra keys. Stored, such an item fails every answer, snapshot and log
line that meets it. `json_body_guard` is an app-wide dependency: it runs before the route's own dependencies and
before pydantic looks at the body, and turns every such value into one 422 that names its field
(itemtower.jsonsafe decides; catalog.check_item uses the same check for catalog files).
"""

from __future__ import annotations

from fastapi import Request

from itemtower.jsonsafe import json_problems
from itemtower.serve.schemas import ProblemOut
from itemtower.serve.validation import ApiError, summary

__all__ = ["json_body_guard", "unreadable_body"]

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def _problem(path: str, value, message: str) -> ProblemOut:
    """A body path ("items.3.title") -> the item index and field the rest of the service reports."""
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit():
        return ProblemOut(item=int(parts[1]), field=".".join(parts[2:]) or "item", value=value, message=message,
                          severity="error")
    return ProblemOut(field=path, value=value, message=message, severity="error")


async def json_body_guard(request: Request) -> None:
    """ApiError(422) if the JSON body holds NaN/Infinity, a lone surrogate, or nesting over jsonsafe.MAX_DEPTH."""
    if request.method in _NO_BODY or "json" not in request.headers.get("content-type", ""):
        return
    if not await request.body():
        return
    # Starlette caches the parsed body: FastAPI has parsed it already (a body that does not parse never gets here)
    obj = await request.json()
    found = json_problems(obj)
    if found:
        problems = [_problem(p.path, p.value, p.message) for p in found]
        raise ApiError(422, "invalid request: " + summary(problems), problems)


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
