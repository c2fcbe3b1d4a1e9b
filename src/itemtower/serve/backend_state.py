"""The service's side of the index backend setting (index/backend.py): open the Milvus store at start-up, close
it at shutdown, and say in /info which backend holds the index and where its durability comes from.

With ITEMTOWER_INDEX_BACKEND=milvus the service keeps no index of its own: no write-ahead log, snapshots or
directory lock (those are the FAISS backend's, index/store.py); Milvus makes each write durable before it is
acknowledged, and every process pointed at the same URI reads the same items.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

from itemtower.index.backend import MILVUS, backend_of, faiss_info, milvus_uri, open_milvus

__all__ = ["wants_milvus", "open_milvus_index", "close_if_opened", "index_info"]

log = logging.getLogger("itemtower.serve")

_opened: "weakref.WeakSet[Any]" = weakref.WeakSet()  # the Milvus indexes this module opened (and must close)


def wants_milvus(settings: Any, injected: bool) -> bool:
    """The settings ask for Milvus. With an injected embedder (tests), only at an explicit ITEMTOWER_MILVUS_URI:
    such an app never writes into a model directory's default milvus-lite file."""
    return backend_of(settings) == MILVUS and (not injected or bool(settings.milvus_uri))


def open_milvus_index(settings: Any, model_dir: Path, dim: int) -> Any:
    """The MilvusIndex of the settings. Errors (nothing at the URI, a locked milvus-lite file, a collection of
    another dimension) are logged with what to do and stop the start-up, as a second FAISS writer does."""
    from itemtower.index.milvus_store import MilvusUnavailable

    uri = milvus_uri(settings, model_dir)
    try:
        index = open_milvus(settings, model_dir, dim)
    except (MilvusUnavailable, ValueError) as e:
        log.error("%s", e)
        raise
    _opened.add(index)
    log.info("index: %r (writes durable in Milvus; no write-ahead log or directory lock here)", index)
    if not settings.milvus_uri:
        log.info("the milvus-lite file %s serves this process only; for several, see README 'Scaling out'", uri)
    return index


def close_if_opened(index: Any) -> bool:
    """Close a Milvus index opened by `open_milvus_index` (a passed-in one is its caller's). True if it was one."""
    if index is None or not getattr(index, "self_persisting", False):
        return False
    if index in _opened:
        _opened.discard(index)
        index.close()
    return True


def index_info(state: Any) -> dict[str, Any]:
    """/info's "index": the backend, where it is, and what makes writes durable."""
    index = state.index
    if index is not None and hasattr(index, "info") and getattr(index, "self_persisting", False):
        return index.info()
    return faiss_info(state.index_dir, index)
