"""Vector indexes: string ids + L2-normalised vectors + item metadata, with filters, upsert and delete.

`FaissIndex` is the embedded default (in the process: exact inner product when small, HNSW when large; index/ann.py). `VectorIndex` is the interface the
service and the CLI rely on, so that another backend can stand in without touching them: `MilvusIndex`
(index/milvus_store.py), a Milvus collection several processes share, chosen by ITEMTOWER_INDEX_BACKEND.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from itemtower.index.ann import AnnConfig
from itemtower.index.faiss_index import FaissIndex

__all__ = ["VectorIndex", "FaissIndex", "AnnConfig", "MilvusIndex"]


def __getattr__(name: str) -> Any:
    """`MilvusIndex` (index/milvus_store.py; index/backend.py picks the backend) on first use: importing pymilvus
    costs half a second, and the FAISS backend needs none of it."""
    if name == "MilvusIndex":
        from itemtower.index.milvus_store import MilvusIndex

        return MilvusIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@runtime_checkable
class VectorIndex(Protocol):
    """What a vector index offers. Scores are inner products: cosine similarity for L2-normalised vectors."""

    dim: int

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]) -> None:
        """Add items, replacing any whose id is already present. `vectors`: float32 (N, D)."""
        ...

    def delete(self, id: str) -> bool:
        """Remove one item; False if the id was not there."""
        ...

    def get(self, id: str) -> dict[str, Any] | None:
        """The stored item, or None."""
        ...

    def get_json(self, id: str) -> str | None:
        """The stored item as JSON text (a JSON object), or None: what responses are built from."""
        ...

    def group_ids(self, group: str) -> list[str]:
        """The ids of the items whose "group" is `group`."""
        ...

    def vector(self, id: str) -> np.ndarray | None:
        """The stored vector, float32 (D,), or None."""
        ...

    def search(self, query: np.ndarray, k: int, filters: dict[str, str] | None = None,
               exclude: set[str] | None = None) -> list[tuple[str, float]]:
        """Up to k (id, score) pairs, best first. `filters` {field: value} keep items whose std[field] holds value;
        `exclude` ids never appear."""
        ...

    def ids(self) -> Iterator[str]:
        ...

    def __len__(self) -> int:
        ...

    def __contains__(self, id: object) -> bool:
        ...

    def save(self, directory: str | Path) -> None:
        ...
