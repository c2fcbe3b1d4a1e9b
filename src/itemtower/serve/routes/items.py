"""/items: read, find similar, add or replace (embedded on arrival), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from itemtower.index import VectorIndex
from itemtower.serve import photos, similar_query, similarity, writes
from itemtower.serve.deps import EmbedderDep, Explainer, IndexDep, SettingsDep, StateDep, model_and_index, \
    require_api_key
from itemtower.serve.schemas import ErrorResponse, ItemOut, ItemPut, ProblemOut, SimilarResponse, \
    UpsertResponse
from itemtower.serve.validation import ApiError, check_filters, check_items, check_k, filters_from_query
from itemtower.serve.routes.responses import NO_MODEL as _NO_MODEL, NOT_FOUND as _NOT_FOUND, WRITE_AUTH as _WRITE_AUTH

# Ids may contain "/" (catalog ids like "men/tshirt/123"): every route takes the id as a `:path`, and the routes
# with a suffix (/similar, /explain) are declared before the bare /{item_id}, which would otherwise match them too.
# An id that itself ends in "/similar" or "/explain" is read as that route: use /search or /embed for those.
router = APIRouter(prefix="/items", tags=["items"])



def _not_found(item_id: str, index: VectorIndex) -> ApiError:
    return similarity.not_found(item_id, index)


# Query parameters of /similar that are not filters.
SIMILAR_PARAMS = set(similar_query.NAMES)


@router.get(
    "/{item_id:path}/similar",
    response_model=SimilarResponse,
    summary="Items similar to an indexed item",
    responses={**_NOT_FOUND, 422: {"model": ErrorResponse, "description": "k out of range or unknown filter field"},
               **_NO_MODEL},
    # k, offset, per_group, group_by: documented here, parsed by similar_query.parse (the hot path)
    openapi_extra={"parameters": similar_query.PARAMETERS},
)
async def similar(item_id: str, request: Request) -> Response:
    """The k items nearest to `item_id` (which is itself left out), best first.

    Every query parameter other than `k`, `offset`, `per_group` and `group_by` is a filter on a std field:
    `?k=5&gender=female&season=winter` keeps items whose `std.gender` holds "female" and whose `std.season` holds
    "winter". A field the model's schema does not have is a 422 naming it.
    """
    # The hot path (BENCHMARKS.md, section 11): `async`, no dependencies to resolve (model_and_index does their
    # checks in one call), query parameters parsed by hand (similar_query.py: FastAPI's per-parameter validation
    # cost more than the rest of the route), no filter parsing when there are only known parameters; the search
    # runs in the search threads (the vector lookup too), on the other core, while the event loop answers
    # other requests.
    params = request.query_params
    q = similar_query.parse(params)
    state, embedder, index = model_and_index(request)
    check_k(q.k, state.settings.max_k)
    filters: dict[str, str] = {}
    if len(params) > q.given:
        filters = filters_from_query(params.multi_items(), reserved=SIMILAR_PARAMS)
        check_filters(filters, embedder.schema)
    diversity = similarity.diversity_from(q.per_group, q.group_by, embedder.schema)
    if state.neighbours is not None and not filters and diversity is None and q.offset + q.k <= state.neighbours.depth:
        hits = await similarity.similar_listed(state.neighbours, index, item_id, q.k, q.offset)  # 404 if unknown
    else:
        hits = await similarity.similar_off_loop(index, item_id, q.k, filters, q.offset, diversity)
    return similarity.similar_response(index, hits)


@router.get(
    "/{item_id:path}/explain",
    summary="Why the tower embeds an item as it does",
    responses={**_NOT_FOUND, 501: {"model": ErrorResponse, "description": "the loaded model has no attention"},
               **_NO_MODEL},
)
def explain(item_id: str, embedder: EmbedderDep, index: IndexDep, settings: SettingsDep,
            top: int = Query(5, ge=1, le=50, description="tokens per STD field")) -> dict[str, Any]:
    """For each STD field (a query of the cross-attention), the title and RE tokens it attended to most, and the
    weight it gave to nothing. Lets a merchandiser see which words made two products close."""
    item = index.get(item_id)
    if item is None:
        raise _not_found(item_id, index)
    if not isinstance(embedder, Explainer):
        raise ApiError(501, "the loaded model exposes no attention weights to explain")
    with photos.prepare(embedder, settings, [item], store=False, numbered=False) as (_, model_in, _warnings):
        return embedder.explain(model_in[0], top=top)  # a photo model reads the stored photo (in the root)


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
    body: ItemPut,
    response: Response,
    embedder: EmbedderDep,
    index: IndexDep,
    state: StateDep,
) -> UpsertResponse:
    """Validate the item (a full item: a non-empty title is required; the id comes from the path), embed it and
    put it in the index at once: it is searchable in the next request. 201 if new, 200 if it replaced one."""
    body_id = (body.model_extra or {}).get("id")  # not a declared field of ItemPut: the path names the item
    if body_id is not None and body_id != item_id:
        raise ApiError(422, f"the body's id {body_id!r} differs from the path's {item_id!r}; drop it or make them "
                            "equal", [ProblemOut(field="id", value=body_id, severity="error",
                                                 message=f"differs from the path id {item_id!r}")])
    body.id = item_id
    [item], warnings = check_items([body], embedder.schema, partial=False, numbered=False)
    with photos.prepare(embedder, state.settings, [item], store=True, numbered=False) as (stored, model_in, warn):
        vector = embedder.embed(model_in)  # (1, D); a photo model reads the photo (serve/photos.py)
    [item], warnings = stored, warnings + warn
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
