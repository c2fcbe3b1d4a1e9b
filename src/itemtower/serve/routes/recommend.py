"""POST /recommend (more like these, less like those) and GET /items/{id}/variants (the rest of its group).

Declared in their own router, included before /items' catch-all `/{item_id:path}` so that `.../variants` is not
read as an item id. The ranking itself is serve/similarity.py's, shared with similar and search.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from itemtower.serve import similarity
from itemtower.serve.deps import EmbedderDep, IndexDep, SettingsDep
from itemtower.serve.schemas import RecommendRequest, SimilarResponse
from itemtower.serve.validation import check_filters, check_k
from itemtower.serve.routes.responses import NO_MODEL, NOT_FOUND, error

router = APIRouter(tags=["recommend"])


@router.post(
    "/recommend",
    response_model=SimilarResponse,
    summary="Items like the positives and unlike the negatives",
    responses={**error(404, "a positive or negative id is not in the index"),
               **error(422, "k out of range, unknown filter or group_by field"), **NO_MODEL},
)
def recommend(body: RecommendRequest, embedder: EmbedderDep, index: IndexDep, settings: SettingsDep) -> Response:
    """Rank the index by similarity to unit(mean of the positives) - negative_weight * unit(mean of the
    negatives): e.g. the items a shopper viewed as positives, the ones they dismissed as negatives. The positives
    and negatives themselves are left out. Filters, offset and per_group work as in /search."""
    check_k(body.k, settings.max_k)
    check_filters(body.filters, embedder.schema, prefix="filters.")
    diversity = similarity.diversity_from(body.per_group, body.group_by, embedder.schema)
    vector = similarity.recommend_vector(index, body.positive, body.negative, body.negative_weight)
    exclude = set(body.positive) | set(body.negative)
    hits = similarity.ranked(index, vector, body.k, body.filters, exclude, body.offset, diversity)
    return similarity.similar_response(index, hits)


@router.get(
    "/items/{item_id:path}/variants",
    response_model=SimilarResponse,
    summary="The other items of an item's group, most similar first",
    responses={**NOT_FOUND, **error(422, "k out of range"), **NO_MODEL},
    tags=["items"],
)
def item_variants(
    item_id: str,
    index: IndexDep,
    settings: SettingsDep,
    k: int = Query(10, ge=1, description="how many results (at most the service's max_k)"),
    offset: int = Query(0, ge=0, le=1000, description="skip this many results"),
) -> Response:
    """The items sharing `item_id`'s `group` (its colour/size variants), ranked by similarity to it; empty when
    the item has no group. The inverse of `per_group`: what diversity hides, this lists."""
    check_k(k, settings.max_k)
    return similarity.similar_response(index, similarity.variants(index, item_id, k, offset))
