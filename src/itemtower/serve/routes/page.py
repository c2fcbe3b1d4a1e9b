"""The page for people at `/` (plain HTML + one vanilla script from serve/static/, no build step) and the read-only
GET /schema it fills its filter dropdowns from.

The page talks to the public API only (/schema, /items/{id}/similar, /search, /items/{id}/explain, PUT
/items/{id}, GET /photos/{id}), so anything it shows can be reproduced with curl. GET /photos/{id} serves an
indexed item's photo file, read only inside ITEMTOWER_IMAGE_ROOT (serve/photos.py's check: no `..`, no path
elsewhere, no symlink out). /schema lists, per STD field, the closed
vocabulary of the model's schema, or for an open field the values that the indexed items hold most often.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from itemtower.serve.deps import EmbedderDep, IndexDep, SettingsDep
from itemtower.serve.routes.responses import NO_MODEL, NOT_FOUND
from itemtower.serve.validation import ApiError

__all__ = ["router", "STATIC_DIR", "STATIC_URL"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # index.html, page.js, page.css
STATIC_URL = "/static"  # where create_app mounts STATIC_DIR

router = APIRouter(tags=["page"])

# The page runs its own script only, and talks to this server only; product images may come from anywhere.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'")

_SCAN_ITEMS = 5000  # items read to find an open field's values: bounded, so /schema stays fast at any index size
_TOP_VALUES = 100  # values listed per open field
_CACHE_SECONDS = 30.0


class StdFieldOut(BaseModel):
    name: str
    values: list[str] = Field(description="the vocabulary (closed field) or the most frequent indexed values (open)")
    closed: bool = Field(description="true: the schema lists every value; false: open, other values are allowed")


class SchemaResponse(BaseModel):
    name: str
    std_fields: list[StdFieldOut]
    re_fields: list[str]
    n_items: int = Field(description="items in the index")


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The page itself; its script and style are under /static."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                        headers={"Content-Security-Policy": PAGE_CSP})


def _indexed_values(index: Any, fields: list[str], cache: dict[str, Any]) -> dict[str, list[str]]:
    """The most frequent values of `fields` among the first _SCAN_ITEMS indexed items. `cache` (the app's own
    dict) keeps the answer for _CACHE_SECONDS while the index size stays the same."""
    if not fields:
        return {}
    hit = cache.get("values")
    if hit is not None and hit[0] is index and hit[1] == len(index) and time.monotonic() - hit[2] < _CACHE_SECONDS:
        return hit[3]
    counts: dict[str, Counter] = {f: Counter() for f in fields}
    for n, item_id in enumerate(index.ids()):
        if n >= _SCAN_ITEMS:
            break
        std = (index.get(item_id) or {}).get("std") or {}
        for f in fields:
            counts[f].update(v for v in std.get(f) or () if isinstance(v, str))
    out = {f: sorted(v for v, _ in c.most_common(_TOP_VALUES)) for f, c in counts.items()}
    cache["values"] = (index, len(index), time.monotonic(), out)
    return out


@router.get(
    "/schema",
    response_model=SchemaResponse,
    summary="The model's fields and their values (for filter dropdowns)",
    responses=NO_MODEL,
)
def schema(request: Request, embedder: EmbedderDep, index: IndexDep) -> SchemaResponse:
    """Per STD field, the values a filter can take: the schema's vocabulary for a closed field, else up to 100 of
    the values the indexed items hold most often (from the first 5,000 items). And the RE (free-text) fields."""
    s = embedder.schema
    open_fields = [f for f, vocab in s.std_fields.items() if vocab is None]
    cache = getattr(request.app.state, "schema_cache", None)
    if cache is None:
        cache = request.app.state.schema_cache = {}
    seen = _indexed_values(index, open_fields, cache)
    fields = [StdFieldOut(name=f, values=list(vocab) if vocab is not None else seen.get(f, []),
                          closed=vocab is not None)
              for f, vocab in s.std_fields.items()]
    return SchemaResponse(name=s.name, std_fields=fields, re_fields=list(s.re_fields), n_items=len(index))


@router.get("/photos/{item_id:path}", summary="An indexed item's photo (a file inside ITEMTOWER_IMAGE_ROOT)",
            response_class=FileResponse, responses={**NOT_FOUND, **NO_MODEL})
def photo(item_id: str, index: IndexDep, settings: SettingsDep) -> FileResponse:
    """The photo file the item's `image` names, if it is inside the image root; 404 otherwise (no photo, an
    http(s) URL, which the page shows itself, or a path the service may not read)."""
    from itemtower.serve.photos import inside_root

    item = index.get(item_id)
    if item is None:
        raise ApiError(404, f"no item with id {item_id!r}")
    value = item.get("image")
    if not isinstance(value, str) or value.lower().startswith(("http://", "https://", "data:")):
        raise ApiError(404, f"item {item_id!r} has no photo file")
    try:
        real = inside_root(value, Path(settings.image_root) if settings.image_root else None)
    except ValueError as e:
        raise ApiError(404, f"item {item_id!r}: {e}") from None
    return FileResponse(real, headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})
