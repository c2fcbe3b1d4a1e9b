"""Each stored item's nearest neighbours, kept so that similar-by-id is a lookup, not a search.

Similar-by-id asks the same question of the same vectors again and again: the answer for item y only changes
when an item near y is written. Similar-item services keep these lists (Gorse's item-to-item neighbours,
"people who viewed this" tables); here they live in memory beside the index and are kept current by every write:

- A list holds the top `depth` (id, score) of one item, unfiltered, without the item itself, as the index's own
  search returned them, with each entry's write version (how many times that id had been written).
- A delete or a replacement bumps the id's version: entries of the old version are skipped when a list is read,
  and a list whose own item was rewritten is recomputed. Skipping keeps a list exact for what it still serves
  (removing an item from a ranking does not reorder the rest); a full list that no longer has offset + k live
  entries is recomputed.
- An upsert is pushed into the lists it belongs in: the written vector's own top `reach` (the index's search,
  which gives the new item its own list as well), and for each of those items whose list it beats (a score above
  the list's last), an insertion. This is a reverse-neighbour step, as approximate as the HNSW search itself: an
  item y whose top `depth` the new item enters but that is not among the new item's top `reach` keeps its list
  (tests/test_neighbours.py and BENCHMARKS.md section 11f measure how often: recall against a fresh search).
- A list computed while writes were landing is checked against those writes exactly before it is kept.

The filler thread computes the lists of every item after start-up (one search each, in the background), so
that random ids hit from the first minutes; a miss on the request path computes the list and keeps it. Only
the plain query uses the lists (no filters, no diversity cap, offset + k <= depth); the rest searches. Only for
an index this process alone writes: another process's writes would not reach the lists (the Milvus backend).
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


@dataclass(frozen=True)
class _List:
    """One item's neighbours, best first; replaced whole (never changed in place) so readers need no lock."""

    own: int  # the item's own write version when the list was made
    ids: tuple[str, ...]
    scores: np.ndarray  # float32, 4 bytes an entry (Python floats would be 24)
    versions: tuple[int, ...]  # each neighbour's write version when it entered

    def with_entry(self, item_id: str, score: float, version: int, depth: int) -> "_List":
        keep = [(i, s, v) for i, s, v in zip(self.ids, self.scores.tolist(), self.versions) if i != item_id]
        pos = next((n for n, (_, s, _) in enumerate(keep) if score > s), len(keep))
        keep.insert(pos, (item_id, score, version))
        ids, scores, versions = zip(*keep[:depth])
        return _List(self.own, ids, np.asarray(scores, dtype=np.float32), versions)


class NeighbourCache:
    """Nearest-neighbour lists of stored items, kept current by every write (see the module docstring)."""

    def __init__(self, depth: int = 30, max_items: int = 200_000, reach: int | None = None,
                 recent: int = 1024) -> None:
        if depth < 1 or max_items < 0 or recent < 1:
            raise ValueError("depth and recent must be >= 1, max_items >= 0")
        self.depth = depth
        self.reach = reach if reach is not None else 3 * depth
        self.max_items = max_items
        self._lists: dict[str, _List] = {}
        self._version: dict[str, int] = {}  # ids written since start-up -> times written (absent: 0)
        self._gen = 0  # writes so far
        self._recent: collections.deque = collections.deque(maxlen=recent)  # (gen, id, vector or None)
        self._lock = threading.Lock()  # guards list replacement and the write log; reads take none
        self.hits = self.misses = self.filled = 0
        self._stop = threading.Event()

    def __len__(self) -> int:
        return len(self._lists)

    # ------------------------------------------------------------------ reads

    def lookup(self, item_id: str, k: int, offset: int = 0) -> list[tuple[str, float]] | None:
        """Results offset .. offset+k-1 of similar-by-id from item_id's list, or None (search instead)."""
        need = offset + k
        entry = self._lists.get(item_id)
        version = self._version
        if need > self.depth or entry is None or entry.own != version.get(item_id, 0):
            self.misses += 1
            return None
        live = [(i, s) for i, s, v in zip(entry.ids, entry.scores.tolist(), entry.versions)
                if version.get(i, 0) == v]
        if len(live) < need and len(entry.ids) >= self.depth:  # deletes left too few: the rest is unknown
            self.misses += 1
            return None
        self.hits += 1
        return live[offset:need]

    def compute(self, index: VectorIndex, item_id: str) -> list[tuple[str, float]] | None:
        """Search item_id's top `depth`, keep it as its list, return it; None when the item is not in the index."""
        gen, own = self._gen, self._version.get(item_id, 0)  # before the search: later writes are replayed
        vector = index.vector(item_id)
        if vector is None:
            return None
        hits = index.search(vector, self.depth, exclude={item_id})
        self._keep(item_id, own, hits, gen, vector)
        return hits

    # ------------------------------------------------------------------ writes

    def note(self, index: VectorIndex, ids: Sequence[str], vectors: np.ndarray | None) -> None:
        """The index has just changed: `ids` upserted with `vectors` (N, D), or deleted (`vectors` None).
        Call after the index write and before the write is acknowledged."""
        with self._lock:
            for n, item_id in enumerate(ids):
                self._gen += 1
                self._version[item_id] = self._version.get(item_id, 0) + 1
                self._recent.append((self._gen, item_id, None if vectors is None else
                                     np.asarray(vectors[n], dtype=np.float32)))
        if vectors is None:
            for item_id in ids:
                self._lists.pop(item_id, None)
            return
        for n, item_id in enumerate(ids):
            gen, own = self._gen, self._version[item_id]
            vec = np.asarray(vectors[n], dtype=np.float32)
            hits = index.search(vec, max(self.reach, self.depth), exclude={item_id})
            with self._lock:
                for other, score in hits:
                    entry = self._lists.get(other)
                    if entry is not None and (len(entry.ids) < self.depth or score > entry.scores[-1]):
                        self._lists[other] = entry.with_entry(item_id, score, own, self.depth)
            self._keep(item_id, own, hits[: self.depth], gen, vec)  # its own list, from the same search

    def _keep(self, item_id: str, own: int, hits: Sequence[tuple[str, float]], gen: int,
              vector: np.ndarray) -> None:
        """Keep `hits` (a search that began at write generation `gen`) as item_id's list, after replaying the
        writes that landed during the search exactly against it."""
        with self._lock:
            if self._version.get(item_id, 0) != own:
                return  # rewritten meanwhile: its next read computes a new list
            version = self._version
            entry = _List(own, tuple(h for h, _ in hits), np.asarray([s for _, s in hits], dtype=np.float32),
                          tuple(version.get(h, 0) for h, _ in hits))
            if self._gen != gen:
                if not self._recent or self._recent[0][0] > gen + 1:
                    return  # too many writes to replay: do not keep it
                for g, other, vec in self._recent:
                    if g > gen and vec is not None and other != item_id:
                        score = float(vec @ vector)
                        if len(entry.ids) < self.depth or score > entry.scores[-1]:
                            entry = entry.with_entry(other, score, version.get(other, 0), self.depth)
            if item_id not in self._lists and len(self._lists) >= self.max_items:
                if self.max_items == 0:
                    return
                self._lists.pop(next(iter(self._lists)))  # the oldest list makes room
            self._lists[item_id] = entry

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
        """For /health: how many lists, how deep, how many the filler made, how often they answered."""
        total = self.hits + self.misses
        return {"items": len(self._lists), "depth": self.depth, "filled": self.filled,
                "hit_rate": round(self.hits / total, 4) if total else None}
