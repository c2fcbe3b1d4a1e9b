"""PUT /items: add or replace up to ITEMTOWER_MAX_BATCH items in one request, all or nothing.

One request is one model call (all items embedded together) and one write-ahead log record, so a batch is applied
entirely or not at all, crash included. The body is `{"items": [...]}` like POST /embed's, and every problem is
named with the item's position in that list.
"""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from itemtower.serve import photos, writes
from itemtower.serve.deps import EmbedderDep, IndexDep, SettingsDep, StateDep, require_api_key
from itemtower.serve.schemas import ItemFull, ProblemOut
from itemtower.serve.validation import ApiError, check_items, summary
from itemtower.serve.routes.responses import NO_MODEL, TOO_LARGE, WRITE_AUTH, error

router = APIRouter(prefix="/items", tags=["items"])


class BatchUpsertRequest(BaseModel):
    # ItemFull: the schema says what check_items(partial=False) requires (an id and a title); maxItems is added
    # from the settings (serve/openapi.py)
    items: list[ItemFull] = Field(description="full items, each with its own id; at most the service's max_batch",
                                  json_schema_extra={"minItems": 1})

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [
        {"id": "1528", "title": "Puma Men Ferrari Black Fleece Jacket", "std": {"color": "Black"}},
        {"id": "1529", "title": "Puma Men Ferrari White Fleece Jacket", "std": {"color": "White"}},
    ]}]})


class BatchUpsertEntry(BaseModel):
    id: str
    created: bool = Field(description="true: a new item; false: it replaced the item with this id")


class BatchUpsertResponse(BaseModel):
    items: list[BatchUpsertEntry] = Field(description="one entry per item, in request order")
    created: int = Field(description="how many items were new")
    replaced: int = Field(description="how many replaced an item with the same id")
    warnings: list[ProblemOut] = Field(default_factory=list, description="unknown fields/values (mapped to UNK)")


def _id_problems(items: list[ItemFull]) -> list[ProblemOut]:
    """No two items with one id (which would win is not a question a batch should ask); a missing id is
    check_item's to report."""
    problems, seen = [], defaultdict(list)
    for i, item in enumerate(items):
        if item.id is not None and item.id.strip():
            seen[item.id.strip()].append(i)
    for item_id, where in seen.items():
        for i in where[1:]:
            problems.append(ProblemOut(item=i, field="id", value=item_id, severity="error",
                                       message=f"the same id as item {where[0]}: each id once per batch"))
    return problems


@router.put(
    "",
    response_model=BatchUpsertResponse,
    summary="Add or replace many items (all or nothing)",
    dependencies=[Depends(require_api_key)],
    responses={**TOO_LARGE, **error(422, "a malformed item (its position and field are named), or more items "
                                         "than max_batch; nothing was stored"),
               **WRITE_AUTH, **error(409, "two items with one id; nothing was stored"), **NO_MODEL},
)
def put_items(body: BatchUpsertRequest, embedder: EmbedderDep, index: IndexDep, settings: SettingsDep,
              state: StateDep) -> BatchUpsertResponse:
    """Validate every item, embed them all in one model call and store them as one durable write: either every
    item is in the index when this answers, or (any 4xx) none of them changed. Each item needs its `id`."""
    n = len(body.items)
    if n > settings.max_batch:
        raise ApiError(422, f"at most {settings.max_batch} items per request; got {n}: split the batch "
                            "(or raise ITEMTOWER_MAX_BATCH)",  # 422 as /embed: the schema's maxItems
                       [ProblemOut(field="items", value=n, severity="error",
                                   message=f"more than max_batch ({settings.max_batch}) items")])
    if n == 0:
        raise ApiError(422, "no items: send {\"items\": [item, ...]}",
                       [ProblemOut(field="items", value=[], severity="error", message="empty list")])
    problems = _id_problems(body.items)
    try:
        normalized, warnings = check_items(body.items, embedder.schema, partial=False, numbered=True)
    except ApiError as e:
        problems += e.errors
    if problems and all(p.message.startswith("the same id as item") for p in problems):
        # well-formed items (the schema cannot say "ids unique"), but they conflict: 409, nothing stored
        raise ApiError(409, "conflicting ids in one batch, nothing stored: " + summary(problems), problems)
    if problems:
        problems.sort(key=lambda p: (p.item if p.item is not None else -1))
        raise ApiError(422, "invalid batch, nothing stored: " + summary(problems), problems)
    ids = [item["id"] for item in normalized]
    with photos.prepare(embedder, settings, normalized, store=True) as (normalized, model_in, warn):
        vectors = embedder.embed(model_in)  # (N, D): one model call for the batch (photos: serve/photos.py)
    warnings = warnings + warn
    created = writes.upsert(state, ids, vectors, normalized)
    return BatchUpsertResponse(
        items=[BatchUpsertEntry(id=i, created=c) for i, c in zip(ids, created)],
        created=sum(created), replaced=n - sum(created), warnings=warnings,
    )
