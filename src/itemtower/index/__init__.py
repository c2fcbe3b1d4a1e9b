"""Vector indexes: string ids + L2-normalised vectors + item metadata, with filters, upsert and delete.

`FaissIndex` is the embedded default (exact inner product, in the process). `VectorIndex` is the interface the
service and the CLI rely on, so that another backend (Milvus) can stand in without touching them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from itemtower.index.faiss_index import FaissIndex

__all__ = ["VectorIndex", "FaissIndex"]


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

    def vector(self, id: str) -> np.ndarray | None:
        """The stored vector, float32 (D,), or None."""
        ...

    def search(
        self,
        query: np.ndarray,
        k: int,
        filters: dict[str, str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Up to k (id, score) pairs, best first. `filters` {field: value} keep items whose std[field] holds value;
        `exclude` ids never appear."""
        ...

    def ids(self) -> Iterator[str]:
        ...

    def __len__(self) -> int:
        ...

    def save(self, directory: str | Path) -> None:
        ...
