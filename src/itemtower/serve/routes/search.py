"""POST /search: items most similar to a partial item (e.g. a category and a few title words)."""

from __future__ import annotations

from fastapi import APIRouter

from itemtower.serve.deps import EmbedderDep, IndexDep, SettingsDep
from itemtower.serve.routes.items import similar_items
from itemtower.serve.schemas import ErrorResponse, SearchRequest, SimilarResponse
from itemtower.serve.validation import check_filters, check_items, check_k

router = APIRouter(tags=["search"])


@router.post(
    "/search",
    response_model=SimilarResponse,
    summary="Search by a partial item",
    responses={
        422: {"model": ErrorResponse, "description": "malformed item, unknown filter field or k out of range"},
        503: {"model": ErrorResponse, "description": "no model loaded"},
    },
)
def search(body: SearchRequest, embedder: EmbedderDep, index: IndexDep, settings: SettingsDep) -> SimilarResponse:
    """Embed `item` (any part may be missing) and return the k nearest indexed items that pass `filters`
    ({std field: value}: the item's std field must hold the value; several filters must all hold)."""
    check_k(body.k, settings.max_k)
    check_filters(body.filters, embedder.schema, prefix="filters.")
    [item], warnings = check_items([body.item], embedder.schema, partial=True, numbered=False, prefix="item.")
    vector = embedder.embed([item])[0]  # (D,)
    return similar_items(index, vector, body.k, body.filters, exclude=set(), warnings=warnings)
