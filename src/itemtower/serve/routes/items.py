"""/items: read, find similar, add or replace (embedded on arrival), delete."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response, status

from itemtower.index import FaissIndex
from itemtower.serve import writes
from itemtower.serve.deps import EmbedderDep, IndexDep, SettingsDep, StateDep, require_api_key
from itemtower.serve.schemas import ErrorResponse, ItemIn, ItemOut, ProblemOut, SimilarItem, SimilarResponse, \
    UpsertResponse
from itemtower.serve.validation import ApiError, check_filters, check_items, check_k, filters_from_query

# Ids may contain "/" (catalog ids like "men/tshirt/123"): every route takes the id as a `:path`, and the routes
# with a suffix (/similar, /explain) are declared before the bare /{item_id}, which would otherwise match them too.
# An id that itself ends in "/similar" or "/explain" is read as that route: use /search or /embed for those.
router = APIRouter(prefix="/items", tags=["items"])

_NO_MODEL = {503: {"model": ErrorResponse, "description": "no model loaded"}}
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no item with this id in the index"}}
_WRITE_AUTH = {
    401: {"model": ErrorResponse, "description": "API key required (the service has ITEMTOWER_API_KEY set)"},
    403: {"model": ErrorResponse, "description": "wrong API key"},
}


def _not_found(item_id: str, index: FaissIndex) -> ApiError:
    return ApiError(404, f"no item with id {item_id!r} in the index ({len(index)} items); "
                         "add it with PUT /items/{id}")


def similar_items(
    index: FaissIndex,
    vector: np.ndarray,
    k: int,
    filters: dict[str, str],
    exclude: set[str],
    warnings: list[ProblemOut] | None = None,
) -> SimilarResponse:
    """Search the index and attach each hit's stored item (shared by /items/{id}/similar and /search)."""
    hits = index.search(vector, k, filters=filters or None, exclude=exclude)
    out = []
    for hit_id, score in hits:
        item = index.get(hit_id)
        if item is not None:  # deleted between search and get by a concurrent request: skip rather than fail
            out.append(SimilarItem(**item, score=score))
    return SimilarResponse(items=out, warnings=warnings or [])


@router.get(
    "/{item_id:path}/similar",
    response_model=SimilarResponse,
    summary="Items similar to an indexed item",
    responses={**_NOT_FOUND, 422: {"model": ErrorResponse, "description": "k out of range or unknown filter field"},
               **_NO_MODEL},
)
def similar(
    item_id: str,
    request: Request,
    embedder: EmbedderDep,
    index: IndexDep,
    settings: SettingsDep,
    k: int = Query(10, ge=1, description="how many results (at most the service's max_k, 100 by default)"),
) -> SimilarResponse:
    """The k items nearest to `item_id` (which is itself left out), best first.

    Every query parameter other than `k` is a filter on a std field: `?k=5&gender=female&season=winter` keeps items
    whose `std.gender` holds "female" and whose `std.season` holds "winter". A field the model's schema does not
    have is a 422 naming it.
    """
    check_k(k, settings.max_k)
    filters = filters_from_query(request.query_params.multi_items(), reserved={"k"})
    check_filters(filters, embedder.schema)
    vector = index.vector(item_id)
    if vector is None:
        raise _not_found(item_id, index)
    return similar_items(index, vector, k, filters, exclude={item_id})


@router.get(
    "/{item_id:path}/explain",
    summary="Why the tower embeds an item as it does",
    responses={**_NOT_FOUND, 501: {"model": ErrorResponse, "description": "the loaded model has no attention"},
               **_NO_MODEL},
)
def explain(item_id: str, embedder: EmbedderDep, index: IndexDep,
            top: int = Query(5, ge=1, le=50, description="tokens per STD field")) -> dict[str, Any]:
    """For each STD field (a query of the cross-attention), the title and RE tokens it attended to most, and the
    weight it gave to nothing. Lets a merchandiser see which words made two products close."""
    item = index.get(item_id)
    if item is None:
        raise _not_found(item_id, index)
    if not hasattr(embedder, "tower"):
        raise ApiError(501, "the loaded model exposes no attention weights to explain")
    from itemtower.explain import explain_item

    return explain_item(embedder, item, top=top)


@router.get("/{item_id:path}", response_model=ItemOut, summary="Get an item", responses={**_NOT_FOUND, **_NO_MODEL})
def get_item(item_id: str, index: IndexDep) -> dict[str, Any]:
    """The stored item, normalized (every std/re value a list), extra keys as they were sent."""
    item = index.get(item_id)
    if item is None:
        raise _not_found(item_id, index)
    return item


@router.put(
    "/{item_id:path}",
    response_model=UpsertResponse,
    status_code=status.HTTP_200_OK,
    summary="Add or replace an item",
    dependencies=[Depends(require_api_key)],
    responses={
        201: {"model": UpsertResponse, "description": "a new item was added"},
        422: {"model": ErrorResponse, "description": "malformed item (the field is named)"},
        **_WRITE_AUTH, **_NO_MODEL,
    },
)
def put_item(
    item_id: str,
    body: ItemIn,
    response: Response,
    embedder: EmbedderDep,
    index: IndexDep,
    state: StateDep,
) -> UpsertResponse:
    """Validate the item (a full item: a non-empty title is required; the id comes from the path), embed it and
    put it in the index at once: it is searchable in the next request. 201 if new, 200 if it replaced one."""
    if body.id is not None and body.id != item_id:
        raise ApiError(422, f"the body's id {body.id!r} differs from the path's {item_id!r}; drop it or make them "
                            "equal", [ProblemOut(field="id", value=body.id, severity="error",
                                                 message=f"differs from the path id {item_id!r}")])
    body.id = item_id
    [item], warnings = check_items([body], embedder.schema, partial=False, numbered=False)
    vector = embedder.embed([item])  # (1, D)
    [created] = writes.upsert(state, [item_id], vector, [item])  # logged and fsync'ed before the answer
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return UpsertResponse(id=item_id, created=created, item=index.get(item_id), warnings=warnings)


@router.delete(
    "/{item_id:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an item",
    dependencies=[Depends(require_api_key)],
    responses={**_NOT_FOUND, **_WRITE_AUTH, **_NO_MODEL},
)
def delete_item(item_id: str, index: IndexDep, state: StateDep) -> Response:
    """Remove the item from the index (204), or 404 if it is not there."""
    if not writes.delete(state, item_id):
        raise _not_found(item_id, index)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
