"""Which vector store holds the index: the setting (ITEMTOWER_INDEX_BACKEND=faiss|milvus) turned into an index.

"faiss" (the default) is the embedded FaissIndex in the model directory, made durable by index/store.py (a
write-ahead log, snapshots, one writer per directory). "milvus" is a MilvusIndex (index/milvus_store.py) at
ITEMTOWER_MILVUS_URI, by default a milvus-lite file in the model's index directory (MODEL/index/milvus.db);
Milvus makes the writes durable and any number of processes can share it through a Milvus server.

The service (serve/app.py) and `itemtower index` both call `open_milvus` with their Settings, so both read the
same variables. Settings are read by attribute (this module sits below serve/ and does not import it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BACKENDS", "FAISS", "MILVUS", "backend_of", "default_milvus_uri", "milvus_uri", "open_milvus",
           "rebuild_milvus", "faiss_info"]

FAISS, MILVUS = "faiss", "milvus"
BACKENDS = (FAISS, MILVUS)
LITE_FILE = "milvus.db"


def backend_of(settings: Any) -> str:
    """The backend a Settings asks for; an unknown name is a ValueError that lists the known ones."""
    name = str(getattr(settings, "index_backend", FAISS) or FAISS).lower()
    if name not in BACKENDS:
        raise ValueError(f"ITEMTOWER_INDEX_BACKEND={name!r} is not a backend; use one of {', '.join(BACKENDS)}")
    return name


def default_milvus_uri(model_dir: str | Path) -> str:
    """The milvus-lite file in the model's index directory."""
    return str(Path(model_dir) / "index" / LITE_FILE)


def milvus_uri(settings: Any, model_dir: str | Path) -> str:
    return getattr(settings, "milvus_uri", None) or default_milvus_uri(model_dir)


def open_milvus(settings: Any, model_dir: str | Path, dim: int) -> Any:
    """The MilvusIndex the settings describe (the collection is created when missing).

    Raises:
        MilvusUnavailable: nothing answers at the URI (the message names it and what to do).
        ValueError: the collection holds another dimension (rebuild with `itemtower index`).
    """
    from itemtower.index.milvus_store import MilvusIndex

    return MilvusIndex.connect(
        milvus_uri(settings, model_dir), dim,
        collection=getattr(settings, "milvus_collection", "itemtower"),
        index_type=getattr(settings, "milvus_index_type", "HNSW"),
        hnsw_m=getattr(settings, "hnsw_m", 32),
        ef_search=getattr(settings, "ef_search", 32),
        token=getattr(settings, "milvus_token", None),
        read_cache_seconds=getattr(settings, "milvus_read_cache_seconds", 1.0),
    )


def rebuild_milvus(settings: Any, model_dir: str | Path, ids: list[str], vectors: Any, items: list[dict]) -> str:
    """`itemtower index` with the milvus backend: the collection is dropped and loaded with the catalog (every
    earlier write replaced, as the FAISS rebuild empties its log); returns where it went. A service reading it
    meanwhile sees the collection empty, then filling. Raises as `open_milvus`."""
    index = open_milvus(settings, model_dir, int(vectors.shape[1]))
    try:
        index.recreate()
        index.load_all(ids, vectors, items)
        from itemtower.index.milvus_connect import redact

        return f"Milvus collection {index.collection!r} at {redact(milvus_uri(settings, model_dir))}"
    finally:
        index.close()


def faiss_info(index_dir: Path | None, index: Any = None) -> dict[str, Any]:
    """What /info says about the FAISS backend (with `index`, a FaissIndex: whether it searches on a GPU)."""
    info = {"backend": FAISS, "directory": str(index_dir) if index_dir is not None else None,
            "durability": "write-ahead log and snapshots in the index directory; one writer process per "
                          "directory (a lock); more processes need the milvus backend"
            if index_dir is not None else "in memory only (the index was passed in)"}
    if hasattr(index, "gpu_info"):
        info["gpu"] = index.gpu_info()
    return info
