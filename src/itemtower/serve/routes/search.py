"""POST /search: items most similar to a partial item (e.g. a category and a few title words)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from itemtower.serve import similarity
from itemtower.serve.deps import EmbedderDep, IndexDep, SettingsDep
from itemtower.serve.schemas import SearchRequest, SimilarResponse
from itemtower.serve.validation import check_filters, check_items, check_k
from itemtower.serve.routes.responses import NO_MODEL, error

router = APIRouter(tags=["search"])


@router.post(
    "/search",
    response_model=SimilarResponse,
    summary="Search by a partial item",
    responses={**error(422, "malformed item, unknown filter field or k out of range"), **NO_MODEL},
)
def search(body: SearchRequest, embedder: EmbedderDep, index: IndexDep, settings: SettingsDep) -> Response:
    """Embed `item` (any part may be missing) and return the k nearest indexed items that pass `filters`
    ({std field: value}: the item's std field must hold the value; several filters must all hold).
    `offset` pages through the ranking; `per_group` (with `group_by`) caps the results per group."""
    # A plain `def` (a worker thread): the model call waits for its batch (serve/batcher.py) off the event loop.
    check_k(body.k, settings.max_k)
    check_filters(body.filters, embedder.schema, prefix="filters.")
    diversity = similarity.diversity_from(body.per_group, body.group_by, embedder.schema)
    [item], warnings = check_items([body.item], embedder.schema, partial=True, numbered=False, prefix="item.")
    vector = embedder.embed([item])[0]  # (D,)
    hits = similarity.ranked(index, vector, body.k, body.filters, set(), body.offset, diversity)
    return similarity.similar_response(index, hits, warnings)
