"""Is a value something JSON can hold and UTF-8 can write? One check for the service's requests and the catalog.

Python's `json.loads` accepts `NaN`, `Infinity` and numbers that overflow to `inf` (`1e999`), and keeps lone
UTF-16 surrogates (`"\\ud800"`) as they are. None of these can be written back: `json.dumps(allow_nan=False)`
refuses the floats, UTF-8 refuses the surrogates, and a value nested hundreds deep breaks serializers with a
recursion limit. An item holding one is stored fine and then fails every response, snapshot and log line that
meets it; so such values are refused where they come in (a 422 from the service, a problem on its line in
`read_catalog`), naming the field.

The walk is iterative (no recursion), so a value nested thousands deep is one named problem, not a RecursionError.
No torch, no pydantic: catalog.py and serve/ both import it.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from typing import Any, Iterator, NamedTuple

__all__ = ["MAX_DEPTH", "JsonProblem", "json_problems", "safe_value", "has_lone_surrogate", "parse_line"]

MAX_DEPTH = 32  # objects/arrays inside one another; an item's own structure is 3 deep (item -> std -> list)
_SHOWN = 60  # characters of a bad value echoed back


class JsonProblem(NamedTuple):
    """`path`: dotted location ("title", "std.color.1", "extra.a.b"); `value`: a JSON-safe stand-in for the value."""

    path: str
    value: Any
    message: str


def has_lone_surrogate(text: str) -> bool:
    """True if `text` holds a UTF-16 surrogate (U+D800..U+DFFF) that UTF-8 cannot encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


_REPR = reprlib.Repr()  # bounded depth and size: the repr of a value 10,000 deep is fine
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, _SHOWN, _SHOWN


def _short(value: Any) -> str:
    """A writable stand-in, at most 60 characters: a string with its surrogates as `\\udXXX` escapes (other text
    kept), anything else a bounded repr."""
    if isinstance(value, str):
        text = value[: _SHOWN * 2].encode("utf-8", "backslashreplace").decode("utf-8")
    else:
        text = _REPR.repr(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def json_problems(obj: Any, where: str = "", max_depth: int = MAX_DEPTH, limit: int = 10) -> list[JsonProblem]:
    """What in `obj` JSON cannot hold: non-finite floats, strings (values or keys) with lone surrogates, keys and
    values of types JSON has no form for, nesting deeper than `max_depth`. At most `limit` problems.

    Args:
        obj: a parsed JSON value (or any Python value meant to become one).
        where: the path prefix of `obj` ("" for a whole request body or catalog line).
        max_depth: most objects/arrays inside one another (the outermost counts as 1).
        limit: stop after this many problems (a megabyte of NaNs is one message, not a million).

    Returns:
        The problems in document order; [] when `obj` can be written back as JSON.
    """
    if _fast_ok(obj, max_depth):
        return []
    out: list[JsonProblem] = []
    # Depth-first over iterators of children: document order, no recursion, and nothing is built for the part of a
    # huge list that comes after the `limit`-th problem.
    stack: list[Iterator[tuple[Any, str, int]]] = [iter([(obj, where, 0)])]
    while stack and len(out) < limit:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        value, path, depth = step
        if value is None or isinstance(value, (bool, int)):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                out.append(JsonProblem(path or "body", repr(value),
                                       "not a finite number (NaN, Infinity or too large for a double); "
                                       "JSON cannot hold it: send a finite number, a string or null"))
        elif isinstance(value, str):
            if has_lone_surrogate(value):
                out.append(JsonProblem(path or "body", _short(value),
                                       "holds a lone UTF-16 surrogate (\\ud800-\\udfff), which UTF-8 cannot "
                                       "encode: fix the text's encoding (a surrogate pair cut in half?)"))
        elif isinstance(value, (dict, list, tuple)):
            if depth + 1 > max_depth:
                out.append(JsonProblem(path or "body", f"<{type(value).__name__} nested deeper than {max_depth}>",
                                       f"nested more than {max_depth} levels deep; flatten it"))
            else:
                stack.append(_children(value, path, depth + 1, out))
        else:
            out.append(JsonProblem(path or "body", _short(value),
                                   f"a {type(value).__name__}, which JSON has no form for"))
    return out[:limit]


def _children(value: dict | list | tuple, path: str, depth: int,
              out: list[JsonProblem]) -> Iterator[tuple[Any, str, int]]:
    """(child, its path, its depth) of a container, lazily; a key JSON cannot write is reported into `out`."""
    if not isinstance(value, dict):
        for i, child in enumerate(value):
            yield child, _join(path, i), depth
        return
    for key, child in value.items():
        # json.dumps writes int/float/bool/None keys as strings; anything else it cannot write
        if not isinstance(key, (str, int, float, bool, type(None))) or \
                (isinstance(key, str) and has_lone_surrogate(key)):
            out.append(JsonProblem(_join(path, _short(key)), _short(key),
                                   "a key that JSON cannot write (not a string, or a string with a lone surrogate)"))
            continue
        yield child, _join(path, key), depth


def _fast_ok(obj: Any, max_depth: int) -> bool:
    """True when `obj` is certainly fine, by C-speed means: it serializes strictly, and it has fewer brackets than
    `max_depth` (a bound on its nesting). False means "walk it to find out" (the walk is several times slower)."""
    try:
        text = json.dumps(obj, allow_nan=False, ensure_ascii=False, check_circular=False)
        text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    if not isinstance(obj, (dict, list)):
        return True
    return text.count("[") + text.count("{") <= max_depth


def safe_value(value: Any) -> Any:
    """`value` if it can be written as JSON (echoed back in an error as it was sent), else a short repr of it
    (ASCII, at most 60 characters). Used for the `value` of every error, so that reporting a bad value never fails."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return value if not has_lone_surrogate(value) else _short(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if not json_problems(value, max_depth=8, limit=1):
        return value
    return _short(value)


class _NotFinite(ValueError):
    """Raised by the parse hooks of read_catalog: the line holds NaN, Infinity or a number that overflows."""


def _refuse_constant(literal: str) -> float:
    raise _NotFinite(literal)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 -> inf
        raise _NotFinite(text)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_line(text: str) -> tuple[Any, bool]:
    """json.loads of one catalog line (read_catalog's parser), and whether it is certainly JSON-safe (then check_item skips the jsonsafe
    walk, a quarter of reading a catalog: BENCHMARKS.md, "Bad input"): no non-finite number (the hooks), no surrogate escape (UTF-8 text cannot
    hold a raw surrogate), fewer brackets than MAX_DEPTH. Raises what json.loads raises."""
    try:
        obj = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite:
        return json.loads(text), False  # parsed as Python does; check_item's walk names the field
    safe = _SURROGATE_ESCAPE.search(text) is None and text.count("[") + text.count("{") <= MAX_DEPTH
    return obj, safe
