"""POST /embed: vectors for items that need not be in the index (cold start: embed a product on arrival)."""

from __future__ import annotations

from fastapi import APIRouter

from itemtower.serve import photos
from itemtower.serve.deps import EmbedderDep, SettingsDep
from itemtower.serve.schemas import EmbedRequest, EmbedResponse, ProblemOut
from itemtower.serve.validation import ApiError, check_items
from itemtower.serve.routes.responses import NO_MODEL, TOO_LARGE, error

router = APIRouter(tags=["embed"])


@router.post(
    "/embed",
    response_model=EmbedResponse,
    summary="Embed items",
    responses={**TOO_LARGE, **error(422, "an item is malformed (the item index and field are named), or more "
                                         "items than max_batch"), **NO_MODEL},
)
def embed(body: EmbedRequest, embedder: EmbedderDep, settings: SettingsDep) -> EmbedResponse:
    """One L2-normalised vector per item, in request order. Items may be partial (a title only, std only).

    Unknown std fields or values are not errors: the model maps them to UNK, and they come back in `warnings`.
    """
    # A plain `def`: FastAPI runs it in a worker thread, so the CPU-bound model call does not block the event loop.
    if len(body.items) > settings.max_batch:
        # 422, not 413: the schema says maxItems (413 is the body-bytes limit, serve/app.py)
        raise ApiError(422, f"at most {settings.max_batch} items per request; got {len(body.items)}: "
                            "split the batch (or raise ITEMTOWER_MAX_BATCH)",
                       [ProblemOut(field="items", value=len(body.items), severity="error",
                                   message=f"more than max_batch ({settings.max_batch}) items")])
    items, warnings = check_items(body.items, embedder.schema, partial=True)
    with photos.prepare(embedder, settings, items, store=False) as (_, model_in, warn):
        vectors = embedder.embed(model_in) if items else []  # a sent photo lives as long as this call
    warnings = warnings + warn
    return EmbedResponse(dim=embedder.dim, embeddings=[v.tolist() for v in vectors], warnings=warnings)
