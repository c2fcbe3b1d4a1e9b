"""itemtower.catalog.jsonsafe: the one check of "can JSON (and UTF-8) hold this?" shared by the service and the catalog."""

from __future__ import annotations

import json
import math

import pytest

from itemtower.catalog.jsonsafe import MAX_DEPTH, json_problems, safe_value


def _nest(depth: int) -> list:
    out: list = []
    for _ in range(depth - 1):
        out = [out]
    return out


@pytest.mark.parametrize("value", [None, True, 0, 10**300, -1.5e308, "ok", "한글 👗", [], {}, {"a": [1, {"b": None}]},
                                   _nest(MAX_DEPTH)])
def test_what_json_holds_is_fine(value):
    """Finite numbers, huge ints, any encodable text, empty containers, nesting up to MAX_DEPTH: no problem."""
    assert json_problems(value) == []
    json.dumps(value, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("value,path,word", [
    (math.nan, "body", "finite"),
    ({"a": {"b": [1, -math.inf]}}, "a.b.1", "finite"),
    ({"t": "x\ud800"}, "t", "surrogate"),
    ({"k\udfff": 1}, "k\\udfff", "key"),
    ({"s": {1, 2}}, "s", "set"),
    ({"deep": _nest(MAX_DEPTH)}, "deep." + ".".join(["0"] * (MAX_DEPTH - 1)), "nested"),
])
def test_each_problem_names_its_path(value, path, word):
    """The first problem names the dotted path, a JSON-safe stand-in for the value, and what is wrong."""
    [p] = json_problems(value)
    assert p.path == path and word in p.message
    json.dumps(p.value, allow_nan=False).encode("utf-8")


def test_many_problems_are_bounded_and_in_document_order():
    """A million NaNs are ten problems; they come in document order."""
    found = json_problems({"a": [math.nan] * 1_000_000})
    assert len(found) == 10 and [p.path for p in found[:3]] == ["a.0", "a.1", "a.2"]


def test_deep_and_circular_values_do_not_recurse():
    """Nesting 100,000 deep and a value that contains itself: one problem each, no RecursionError."""
    assert len(json_problems(_nest(100_000))) == 1
    loop: list = []
    loop.append(loop)
    assert "nested" in json_problems(loop)[0].message


def test_safe_value_keeps_what_json_holds_and_shortens_the_rest():
    """safe_value: unchanged when JSON can write it, else a writable stand-in of at most 60 characters."""
    assert safe_value({"a": [1, "x"]}) == {"a": [1, "x"]}
    assert safe_value(math.inf) == "inf"
    assert safe_value("a\ud800 한") == "a\\ud800 한"
    assert len(safe_value(_nest(50_000))) <= 60
