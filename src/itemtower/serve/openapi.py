"""The OpenAPI document, made to say what the service does (checked by schemathesis, tests/test_schemathesis.py).

FastAPI's generated schema is right about shapes but not about this service's rules:
- every 422 is the app's `ErrorResponse` (`{"detail": str, "errors": [...]}`), not FastAPI's HTTPValidationError
  (whose `detail` is an array), on every route, including routes that declare no 422 of their own;
- the limits are settings, known only when the app is built: `k` at most max_k, at most max_batch items a request;
- filters and `group_by` name the loaded model's std fields (a closed set: any other is a 422), filter values are
  not blank;
- a path's item id is not blank (PUT of a blank id is "empty id").
The document is built once, at the first request for it (after start-up, when the model is loaded) and cached.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import FastAPI

from itemtower.catalog.schema import Schema
from itemtower.serve.schemas import NONBLANK

__all__ = ["conform_openapi"]

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_422_TEXT = "malformed request: `errors` names each bad field (item index, field, value, what is wrong)"


def conform_openapi(app: FastAPI, max_k: int, max_batch: int, model_schema: Callable[[], Schema | None]) -> None:
    """Wrap `app.openapi` so that the generated document states the service's error body and limits."""
    generate = app.openapi
    done: list[dict[str, Any]] = []  # the document last edited (FastAPI rebuilds it when routes are added)

    def openapi() -> dict[str, Any]:
        doc = generate()  # cached by FastAPI in app.openapi_schema; edited in place, once per build
        if not done or done[0] is not doc:
            _conform(doc, max_k, max_batch, model_schema())
            done[:] = [doc]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _conform(doc: dict[str, Any], max_k: int, max_batch: int, schema: Schema | None) -> None:
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    body_refs: set[str] = set()
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            _error_bodies(op)
            for param in op.get("parameters", []):
                _limit_parameter(param, max_k)
                if param.get("name") == "group_by" and schema is not None:
                    _enum_of_strings(param.get("schema", {}), list(schema.std_fields))
            for media in op.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    body_refs.add(ref.rsplit("/", 1)[1])
    for name in body_refs:
        _limit_body(components.get(name, {}), max_k, max_batch, schema)
    if _FASTAPI_422 not in repr(doc.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _error_bodies(op: dict[str, Any]) -> None:
    """Every 4xx/5xx answers ErrorResponse: FastAPI's default 422 (an array `detail`) is replaced."""
    for status, resp in op["responses"].items():
        if not status.startswith(("4", "5")):
            continue
        content = resp.setdefault("content", {}).setdefault("application/json", {})
        schema = content.get("schema")
        if schema is None or schema.get("$ref") == _FASTAPI_422:
            content["schema"] = dict(_ERROR_REF)
            if status == "422" and resp.get("description") in (None, "Validation Error"):
                resp["description"] = _422_TEXT
    if "requestBody" in op or op.get("parameters"):
        op["responses"].setdefault("422", {"description": _422_TEXT,
                                           "content": {"application/json": {"schema": dict(_ERROR_REF)}}})
    if any(p.get("in") == "path" for p in op.get("parameters", [])):
        # Starlette's path patterns do not match a line break: `/items/a%0Ab` reaches no route
        op["responses"].setdefault("404", {"description": "no route for this path (a path parameter holding a "
                                                          "line break)",
                                           "content": {"application/json": {"schema": dict(_ERROR_REF)}}})


def _limit_parameter(param: dict[str, Any], max_k: int) -> None:
    schema = param.setdefault("schema", {})
    if param.get("in") == "query" and param.get("name") == "k":
        schema["maximum"] = min(schema.get("maximum", max_k), max_k)
    elif param.get("in") == "path" and param.get("name") == "item_id" and schema.get("type") == "string":
        schema.setdefault("pattern", NONBLANK)


def _limit_body(body: dict[str, Any], max_k: int, max_batch: int, schema: Schema | None) -> None:
    props = body.get("properties", {})
    k = props.get("k")
    if k is not None and k.get("type") == "integer":
        k["maximum"] = min(k.get("maximum", max_k), max_k)
    items = props.get("items")
    if items is not None and items.get("type") == "array":
        items["maxItems"] = min(items.get("maxItems", max_batch), max_batch)
    if "group_by" in props and schema is not None:
        _enum_of_strings(props["group_by"], list(schema.std_fields))
    filters = props.get("filters")
    if filters is not None and filters.get("type") == "object":
        values = filters.get("additionalProperties")
        if isinstance(values, dict) and values.get("type") == "string":
            values.setdefault("pattern", NONBLANK)
        if schema is not None:  # no model: the route answers 503 whatever the filters
            filters["propertyNames"] = {"enum": list(schema.std_fields)}


def _enum_of_strings(node: dict[str, Any], values: list[str]) -> None:
    """A string (or `string | null`) that must be one of `values`: the enum goes on the string branch."""
    if node.get("type") == "string":
        node["enum"] = values
    for branch in node.get("anyOf", []):
        if branch.get("type") == "string":
            branch["enum"] = values
