"""The one way routes change the index: through the durable store when there is one (index/store.py: logged and
fsync'ed before the answer), else straight into the in-memory index a test passed in.

Both calls block (an fsync): call them from a plain `def` route, or via `run_in_threadpool` from an `async` one.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from itemtower.index.wal import UnstorableError
from itemtower.serve.deps import ServiceState
from itemtower.serve.validation import ApiError

__all__ = ["upsert", "delete"]


def upsert(state: ServiceState, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]
           ) -> list[bool]:
    """Add or replace items, all or nothing; per id, whether it was new. An item that cannot be stored as JSON
    is a 422 (and nothing is stored)."""
    try:
        if state.store is not None:
            created = state.store.upsert(ids, vectors, items)
        else:
            created = [i not in state.index for i in ids]
            state.index.upsert(ids, vectors, items)
    except UnstorableError as e:
        raise ApiError(422, f"the item cannot be stored: {e}") from None
    state.changed = True
    if state.neighbours is not None:  # after the index changed, before the answer (serve/neighbours.py)
        state.neighbours.note(state.index, ids, vectors)
    return created


def delete(state: ServiceState, item_id: str) -> bool:
    """Remove one item; False if it is not there."""
    done = state.store.delete(item_id) if state.store is not None else state.index.delete(item_id)
    if done:
        state.changed = True
        if state.neighbours is not None:
            state.neighbours.note(state.index, [item_id], None)
    return done
