"""Each stored item's nearest neighbours, kept so that similar-by-id is a lookup, not a search.

Similar-by-id asks the same question of the same vectors again and again: the answer for item y only changes
when an item is written. Shops' similar-item services keep these lists (Gorse's item-to-item neighbours,
"people who viewed this" tables); here they are kept in memory beside the index and made right on writes:

- A list holds the top `depth` (id, score) of one item, unfiltered, without the item itself, as the index's own
  search returned them, and the write generation it was computed at.
- Every write (upsert or delete, from serve/writes.py, after the index has changed) is appended to a short log of
  recent writes with its vector. When a list is read, the writes since its generation are checked: a list that
  holds a written id, or whose item was written, is recomputed; a written vector that scores above the list's
  last entry (it belongs in the top `depth`) makes it recomputed too. Otherwise it is still exactly what a search
  would return, and is served. So a cached answer is never staler than the last acknowledged write.
- When more writes have happened than the log keeps (`recent`), older lists are recomputed on their next read.

The filler thread computes the lists of every item after start-up (one search each, in the background), so
that random ids hit from the first minutes; a miss on the request path computes the list and keeps it. Only
the plain query uses the lists (no filters, no diversity cap, offset + k <= depth); the rest searches.
Only for an index this process alone writes: another process's writes would not be seen (the Milvus backend).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from itemtower.index import VectorIndex

__all__ = ["NeighbourCache"]

log = logging.getLogger("itemtower.serve")


@dataclass
class _List:
    ids: tuple[str, ...]
    scores: np.ndarray  # float32 (len(ids),), best first
    gen: int  # the write generation the list is known to be right at


class NeighbourCache:
    """Nearest-neighbour lists of stored items, right as of the last write (see the module docstring)."""

    def __init__(self, depth: int = 30, max_items: int = 200_000, recent: int = 1024) -> None:
        if depth < 1 or max_items < 0 or recent < 1:
            raise ValueError("depth and recent must be >= 1, max_items >= 0")
        self.depth = depth
        self.max_items = max_items
        self._lists: dict[str, _List] = {}
        self._gen = 0  # writes so far
        self._log: collections.deque = collections.deque(maxlen=recent)  # (gen, id, vector or None)
        self._lock = threading.Lock()  # writers and list replacement; readers take a consistent view under it
        self.hits = 0
        self.misses = 0
        self.filled = 0  # lists computed by the filler so far
        self._stop = threading.Event()

    def __len__(self) -> int:
        return len(self._lists)

    # ------------------------------------------------------------------ writes

    def note(self, ids: Sequence[str], vectors: np.ndarray | None) -> None:
        """The index has just changed: `ids` upserted with `vectors` (N, D), or deleted (`vectors` None).
        Call after the index write, before the write is acknowledged."""
        with self._lock:
            for n, item_id in enumerate(ids):
                self._gen += 1
                vec = None if vectors is None else np.asarray(vectors[n], dtype=np.float32)
                self._log.append((self._gen, item_id, vec))
            for item_id in ids:  # its own list is void: its vector changed or it is gone
                self._lists.pop(item_id, None)

    # ------------------------------------------------------------------ reads

    def lookup(self, index: VectorIndex, item_id: str, k: int, offset: int = 0
               ) -> list[tuple[str, float]] | None:
        """Results offset .. offset+k-1 of similar-by-id from a list that is still right, or None (search)."""
        if offset + k > self.depth:
            return None
        entry = self._lists.get(item_id)
        if entry is None or not self._still_right(index, item_id, entry):
            self.misses += 1
            return None
        self.hits += 1
        end = offset + k
        return list(zip(entry.ids[offset:end], entry.scores[offset:end].tolist()))

    def _still_right(self, index: VectorIndex, item_id: str, entry: _List) -> bool:
        with self._lock:
            gen = self._gen
            if entry.gen == gen:
                return True
            if not self._log or self._log[0][0] > entry.gen + 1:
                return False  # writes since the list was made have left the log: recompute
            since = [(i, v) for g, i, v in self._log if g > entry.gen]
        if any(i == item_id or i in entry.ids for i, _ in since):
            return False
        vecs = [v for _, v in since if v is not None]
        if vecs:
            mine = index.vector(item_id)
            if mine is None:
                return False
            bar = float(entry.scores[-1]) if len(entry.ids) >= self.depth else -np.inf
            if float(np.max(np.stack(vecs) @ mine)) > bar:
                return False
        entry.gen = gen  # checked against every write up to gen: the next read need not look at them again
        return True

    def keep(self, item_id: str, hits: Sequence[tuple[str, float]], gen: int) -> None:
        """Keep `hits` (the top `depth` of a search that began at write generation `gen`) as item_id's list."""
        entry = _List(tuple(h for h, _ in hits), np.asarray([s for _, s in hits], dtype=np.float32), gen)
        with self._lock:  # writes since `gen` (the item's own included) are checked when the list is read
            if item_id not in self._lists and len(self._lists) >= self.max_items:
                if self.max_items == 0:
                    return
                self._lists.pop(next(iter(self._lists)))  # the oldest list makes room
            self._lists[item_id] = entry

    @property
    def generation(self) -> int:
        return self._gen

    def compute(self, index: VectorIndex, item_id: str) -> list[tuple[str, float]] | None:
        """Search item_id's top `depth` and keep it; None when the item is not in the index."""
        gen = self._gen  # read before the search: writes during it are checked on the next read
        vector = index.vector(item_id)
        if vector is None:
            return None
        hits = index.search(vector, self.depth, exclude={item_id})
        self.keep(item_id, hits, gen)
        return hits

    # ------------------------------------------------------------------ the filler

    def fill_in_background(self, index: VectorIndex) -> threading.Thread:
        """Compute the lists of the items stored now, one search at a time, in a daemon thread."""
        thread = threading.Thread(target=self._fill, args=(index,), name="itemtower-neighbours", daemon=True)
        thread.start()
        return thread

    def _fill(self, index: VectorIndex) -> None:
        try:
            for item_id in list(index.ids())[: self.max_items]:
                if self._stop.is_set():
                    return
                if item_id not in self._lists:
                    self.compute(index, item_id)
                    self.filled += 1
            log.info("neighbour lists ready: %d items", len(self._lists))
        except Exception:  # the service keeps serving by search; say why the lists stopped
            log.exception("computing the neighbour lists stopped; similar-by-id searches instead")

    def stop(self) -> None:
        self._stop.set()

    def info(self) -> dict[str, Any]:
        """For /health: how many lists, how full, how often they answered."""
        total = self.hits + self.misses
        return {"items": len(self._lists), "depth": self.depth, "filled": self.filled,
                "hit_rate": round(self.hits / total, 4) if total else None}
