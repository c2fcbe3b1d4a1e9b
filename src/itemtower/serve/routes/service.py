"""The service itself: health (works without a model), model info, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from itemtower.serve import backend_state
from itemtower.serve.deps import EmbedderDep, StateDep
from itemtower.serve.schemas import ErrorResponse, HealthResponse

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse, summary="Is the service up, and is a model loaded?")
def health(state: StateDep) -> HealthResponse:
    """Always 200 while the process runs; `status` says whether the model routes work and, if not, how to fix it."""
    if state.embedder is None:
        return HealthResponse(status="no_model", model_loaded=False, n_items=0, message=state.message)
    n = len(state.index) if state.index is not None else 0
    return HealthResponse(
        status="degraded" if state.warnings else "ok",
        model_loaded=True,
        n_items=n,
        message="; ".join(state.warnings) or None,
        warnings=list(state.warnings),
        neighbours=state.neighbours.info() if state.neighbours is not None else None,
    )


@router.get("/info", response_model=dict[str, Any], summary="The model's manifest",
            responses={503: {"model": ErrorResponse, "description": "no model loaded"}})
def info(state: StateDep, embedder: EmbedderDep) -> dict[str, Any]:
    """The manifest saved with the model: config, vocabulary sizes, training run, library versions; and under
    "index", the index backend (faiss or milvus), where it is, and what makes writes durable; under "serving",
    the precision new items are embedded in (ITEMTOWER_PRECISION resolved on the device: bf16 or fp32)."""
    inner = getattr(embedder, "inner", embedder)  # the BatchingEmbedder's model
    serving = {"precision": "bf16" if getattr(inner, "bf16", False) else "fp32"}
    return {**embedder.manifest, "index": backend_state.index_info(state), "serving": serving}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    """Request counts and latency histograms per route, and the index size, in the Prometheus text format."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
