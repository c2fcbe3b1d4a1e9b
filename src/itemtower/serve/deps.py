"""The service's state and the typed dependencies the routes declare (`EmbedderDep`, `IndexDep`, ...).

Routes never reach into `app.state` themselves: they ask for what they need, and a missing model turns into one
503 with the how-to-train message, here, rather than in every route.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, Sequence, runtime_checkable

import numpy as np
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from itemtower.index import VectorIndex
from itemtower.catalog.schema import Schema
from itemtower.serve.settings import Settings
from itemtower.serve.validation import ApiError

__all__ = [
    "EmbedderLike",
    "Explainer",
    "ServiceState",
    "SettingsDep",
    "StateDep",
    "EmbedderDep",
    "IndexDep",
    "model_and_index",
    "require_api_key",
]


class EmbedderLike(Protocol):
    """What the service needs from `artifacts.Embedder` (tests pass a fake with the same surface)."""

    schema: Schema
    manifest: dict[str, Any]
    dim: int

    def embed(self, items: Sequence[dict[str, Any]]) -> np.ndarray:
        """Normalized items -> float32 (N, D), L2-normalised."""
        ...


@runtime_checkable
class Explainer(Protocol):
    """An embedder that can say why it embeds an item as it does (the explain route's capability check)."""

    def explain(self, item: dict[str, Any], top: int = 5) -> dict[str, Any]:
        """Per STD field, the tokens it attended to most (explain.explain_item)."""
        ...


@dataclass
class ServiceState:
    """Everything the lifespan loaded. `embedder is None` means no model: `message` says how to get one."""

    settings: Settings
    embedder: EmbedderLike | None = None
    index: VectorIndex | None = None
    message: str | None = None  # why there is no model, and what to run
    warnings: list[str] = field(default_factory=list)  # the model works, but something is off (e.g. no index)
    index_dir: Path | None = None  # where the index is saved on shutdown; None: the caller owns the index
    changed: bool = False  # PUT/DELETE happened since the index was loaded
    store: Any = None  # index.store.DurableIndex when the index is the model directory's (writes go through it)
    neighbours: Any = None  # serve.neighbours.NeighbourCache: similar-by-id lists, kept right on every write


async def get_state(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if state is None:
        # Only happens when the lifespan did not run, e.g. TestClient(app) used without `with`.
        raise RuntimeError("the app's lifespan has not run (in tests: `with TestClient(app) as client:`)")
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_embedder(state: StateDep) -> EmbedderLike:
    if state.embedder is None:
        raise ApiError(503, state.message or "no model loaded")
    return state.embedder


EmbedderDep = Annotated[EmbedderLike, Depends(get_embedder)]


async def get_index(state: StateDep) -> VectorIndex:
    if state.embedder is None or state.index is None:
        raise ApiError(503, state.message or "no model loaded")
    return state.index


IndexDep = Annotated[VectorIndex, Depends(get_index)]


def model_and_index(request: Request) -> tuple[ServiceState, EmbedderLike, VectorIndex]:
    """State, embedder and index in one plain call (the same checks and 503 as the dependencies above), for the
    similar-by-id hot path: FastAPI's resolution of four dependencies cost more CPU than the HNSW search itself
    (BENCHMARKS.md, section 11)."""
    state = getattr(request.app.state, "service", None)
    if state is None:
        raise RuntimeError("the app's lifespan has not run (in tests: `with TestClient(app) as client:`)")
    if state.embedder is None or state.index is None:
        raise ApiError(503, state.message or "no model loaded")
    return state, state.embedder, state.index

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="needed for PUT and DELETE when the service has ITEMTOWER_API_KEY set")


async def require_api_key(settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    """Writes need X-API-Key when the service has an API key; reads never do."""
    if settings.api_key is None:
        return
    if not key:
        raise ApiError(401, "this service needs an API key for writes: send it in the X-API-Key header")
    # compare_digest: the time taken must not reveal how much of the key was right
    if not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        raise ApiError(403, "wrong API key in the X-API-Key header")
