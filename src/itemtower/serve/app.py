"""The FastAPI app factory.

`create_app(settings, embedder, index)` builds a fresh app: nothing is loaded at import time, so tests build as
many apps as they like with a fake embedder, and `main.py` builds the real one. The lifespan loads the model and
the index from `settings.model_dir` (unless they were passed in): a snapshot plus a write-ahead log that makes
every acknowledged write durable (index/store.py); on shutdown, a last snapshot. Without a model the app still
starts: /health says how to train one and the model routes answer 503.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from itemtower import __version__
from itemtower.index import FaissIndex, VectorIndex
from itemtower.serve import backend_state
from itemtower.serve.deps import EmbedderLike, ServiceState
from itemtower.serve.metrics import Metrics, MetricsMiddleware
from itemtower.serve.docs import add_offline_docs
from itemtower.serve import tuning
from itemtower.serve.routes import batch, embed, items, page, recommend, search, service
from itemtower.serve.guard import JsonBodyGuard, unreadable_body
from itemtower.serve.methods import MethodGuard
from itemtower.serve.openapi import conform_openapi
from itemtower.serve.settings import Settings
from itemtower.serve.validation import ApiError, problems_from_pydantic, summary

__all__ = ["create_app"]

log = logging.getLogger("itemtower.serve")

_DESCRIPTION = """\
Item embeddings for a fashion catalog: embed products (even brand-new ones), find similar items, search by a partial
item, and keep the index current with PUT/DELETE. Scores are cosine similarities of L2-normalised vectors.

Errors have the body `{"detail": "...", "errors": [{"item", "field", "value", "message"}]}`.
"""


def no_model_message(model_dir: Path) -> str:
    return (
        f"no trained model at {model_dir}: run `make demo` or `itemtower train --catalog FILE --out DIR` then "
        "`itemtower index --model DIR --catalog FILE`; set ITEMTOWER_MODEL=DIR"
    )


def _load(settings: Settings, embedder: EmbedderLike | None, index: VectorIndex | None) -> ServiceState:
    """Build the service state: the given embedder/index, or those saved in settings.model_dir."""
    state = ServiceState(settings=settings)
    model_dir = Path(settings.model_dir)

    if embedder is not None:
        # The caller owns what it passed in: an injected embedder gets an in-memory index that is never saved,
        # so that a test can never write into a real model directory.
        if index is not None and index.dim != embedder.dim:
            raise ValueError(f"index dimension {index.dim} != embedder dimension {embedder.dim}")
        state.embedder = embedder
        if index is None and backend_state.wants_milvus(settings, injected=True):  # an explicit Milvus URI
            index = backend_state.open_milvus_index(settings, model_dir, embedder.dim)
        state.index = index if index is not None else FaissIndex(embedder.dim)
        return state

    if not model_dir.exists():  # checked before importing artifacts: that import pulls in torch (seconds)
        state.message = no_model_message(model_dir)
        log.warning(state.message)
        return state
    try:
        from itemtower.artifacts import Embedder

        loaded = Embedder.load(model_dir)
        if settings.device != "cpu":  # ITEMTOWER_DEVICE; ValueError (cuda without a GPU): no model is served
            loaded = loaded.to(settings.device)
        if isinstance(loaded, Embedder):  # ITEMTOWER_PRECISION; ValueError (bf16 without bf16 kernels): no model
            loaded.precision = settings.precision
            loaded.bf16
        state.embedder = loaded
        state.embedder.image_cache = settings.image_cache  # a photo model's feature cache (serve/photos.py)
    except FileNotFoundError:  # includes artifacts.ModelNotFoundError: a directory without a model in it
        state.message = no_model_message(model_dir)
        log.warning(state.message)
        return state
    except ValueError as e:  # artifacts.ModelLoadError: a named file, what is wrong, what to do; no traceback
        state.message = f"the model at {model_dir} cannot be used: {e}"
        log.error(state.message)
        return state
    except Exception as e:  # a broken model: keep serving /health with the reason, and log the traceback
        log.exception("could not load the model at %s", model_dir)
        state.message = (f"the model at {model_dir} could not be loaded ({type(e).__name__}: {e}); retrain it "
                         "with `itemtower train --catalog FILE --out DIR`, or set ITEMTOWER_MODEL to another DIR")
        return state

    if index is not None:
        if index.dim != state.embedder.dim:
            raise ValueError(f"index dimension {index.dim} != model dimension {state.embedder.dim}")
        state.index = index
        return state

    if backend_state.wants_milvus(settings, injected=False):  # Milvus keeps the items durable: no log, lock, snapshot
        state.index = backend_state.open_milvus_index(settings, model_dir, state.embedder.dim)
        return state

    # The directory's snapshot + write-ahead log, locked against a second writer (index/store.py); a broken or
    # missing snapshot is a warning, a second writer (DirectoryLocked) stops the start-up.
    from itemtower.index.store import DurableIndex

    state.store = DurableIndex.open(model_dir / "index", state.embedder.dim,
                                    every_ops=settings.snapshot_every_ops,
                                    every_seconds=settings.snapshot_every_seconds,
                                    build_hint=f"`itemtower index --model {model_dir} --catalog FILE`")
    state.store.warnings[0:0] = state.warnings  # one list: /health also shows what the store finds later
    state.index, state.index_dir, state.warnings = state.store.index, state.store.directory, state.store.warnings
    return state


def _save_if_changed(state: ServiceState) -> None:
    if backend_state.close_if_opened(state.index):  # Milvus: every write is durable there already
        return
    if state.store is not None:  # a last snapshot if anything changed; every write is in the log already
        state.store.close()
        return
    if not state.changed or state.index is None:
        return
    if state.index_dir is None:
        if state.embedder is not None:
            log.info("index changed but is not persisted (it was passed in, or the saved one was unusable)")
        return
    try:
        state.index.save(state.index_dir)
        log.info("saved the index (%d items) to %s", len(state.index), state.index_dir)
    except Exception:
        # Shutdown must go on, but losing the writes must not be silent.
        log.exception("could not save the index to %s: changes since startup are lost", state.index_dir)


def _model_schema(app: FastAPI) -> Any:
    """The loaded model's schema (its std fields are the filters), None before start-up or without a model."""
    state = getattr(app.state, "service", None)
    return state.embedder.schema if state is not None and state.embedder is not None else None


def _too_large(max_bytes: int) -> str:
    return (f"request body larger than {max_bytes} bytes: send fewer items per request "
            "(or raise ITEMTOWER_MAX_BODY_BYTES)")


class _BodySizeLimit:
    """413 for a request body over `max_bytes`: at once when Content-Length says so, else (a chunked body) as
    soon as the bytes read pass the limit. (FastAPI's own max_body_size answers in plain text, replacing the
    JSON body every other error has; hence this.)"""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"detail": _too_large(self.max_bytes), "errors": []}, status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # An HTTPException passes through FastAPI's body parsing unchanged, to _http_error below.
                raise StarletteHTTPException(413, _too_large(self.max_bytes))
            return message

        await self.app(scope, counting_receive, send)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers the same body, {"detail": str, "errors": [...]}: ours, FastAPI's validation errors,
    Starlette's 404/405/413 and, for a bug, a 500 that points at the log."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "errors": jsonable_encoder([e.model_dump() for e in exc.errors])},
            status_code=exc.status,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = problems_from_pydantic(exc.errors())
        return JSONResponse(
            {"detail": "invalid request: " + summary(problems),
             "errors": jsonable_encoder([p.model_dump() for p in problems])},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a bad request: log the traceback with the request, and tell the client where to look.
        log.exception("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}) in {request.method} {request.url.path}; "
                       "the traceback is in the service log", "errors": []},
            status_code=500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 404 for an unknown path, 405, 413 from the body limit: the same body shape as every other error.
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return await _api_error(request, unreadable_body(exc.__cause__))  # FastAPI's undocumented 400
        detail = exc.detail
        return JSONResponse({"detail": str(detail), "errors": []}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))


def create_app(
    settings: Settings | None = None,
    embedder: EmbedderLike | None = None,
    index: VectorIndex | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: defaults to `Settings()` (the environment: ITEMTOWER_MODEL, ITEMTOWER_API_KEY, ...).
        embedder: a ready embedder (tests pass a fake); None loads `artifacts.Embedder` from settings.model_dir.
        index: a ready index; None loads settings.model_dir/index when the model was loaded from disk (and saves it
            there on shutdown if it changed), or starts an empty in-memory index for an injected embedder.

    Returns:
        The FastAPI app; the model is loaded when it starts (lifespan), not here.
    """
    settings = settings if settings is not None else Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = _load(settings, embedder, index)
        await tuning.start(state, settings)  # ANN layout, search threads, the batching queue in front of the model
        app.state.service = state
        metrics.track_index_size(lambda: len(state.index) if state.index is not None else 0)
        yield
        await tuning.stop(state)
        _save_if_changed(state)

    app = FastAPI(
        title="itemtower",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: add_offline_docs below, from packaged files (no CDN)
        redoc_url=None,
    )
    # the OpenAPI document states the error body, the limits and the model's std fields (serve/openapi.py)
    conform_openapi(app, settings.max_k, settings.max_batch, lambda: _model_schema(app))
    app.state.metrics = metrics

    for module in (service, embed, batch, recommend, items, search, page):  # recommend: before /items/{id}
        app.include_router(module.router)
    app.mount(page.STATIC_URL, StaticFiles(directory=page.STATIC_DIR), name="static")  # the page at /
    add_offline_docs(app)

    _add_error_handlers(app)

    # Added last = outermost: an oversized body is refused before anything reads it; metrics see every response.
    # a JSON body holding NaN, Infinity, a lone surrogate or deep nesting: a 422 before any route reads it
    app.add_middleware(JsonBodyGuard)
    app.add_middleware(MethodGuard, router=app.router)  # 405 with the owning path's methods in Allow
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(_BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
