"""What the similar, search, recommend and variants routes share: ranking, diversity, paging, the response.

The routes stay thin (parse, check, call one function here); the functions take a `VectorIndex`, never a concrete
backend. The response is written straight to JSON bytes from the index's stored JSON (`get_json`) instead of
being validated item by item by pydantic: on the similar-by-id hot path that was most of the time not spent in
FAISS (BENCHMARKS.md, section 11). The bytes follow `schemas.SimilarResponse`, which stays the documented model.
"""

from __future__ import annotations

import asyncio
import json
import os
import collections
import queue
import threading
import weakref
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
from fastapi import Response

from itemtower.index import VectorIndex
from itemtower.serve.schemas import ProblemOut
from itemtower.serve.validation import ApiError

__all__ = ["Diversity", "diversity_from", "ranked", "ranked_off_loop", "similar_to", "similar_off_loop", "similar_listed",
           "similar_response", "recommend_vector", "variants", "not_found"]

_T = TypeVar("_T")
_GROWTH = 4  # a diversity cap that drops hits asks the index for this many times more, until enough survive


class Diversity:
    """At most `per_group` results per group: the item's `group`, or the values of the std field `field`.
    An item without a group (or without the field) is a group of its own."""

    def __init__(self, per_group: int | None, field: str | None = None) -> None:
        self.per_group = per_group
        self.field = field

    def key(self, item_id: str, item: dict[str, Any]) -> Any:
        if self.field is None:
            g = item.get("group")
            return ("group", g) if g not in (None, "") else ("id", item_id)
        values = (item.get("std") or {}).get(self.field)
        if not values:
            return ("id", item_id)
        return ("std", tuple(values) if isinstance(values, list) else (values,))

    def apply(self, index: VectorIndex, hits: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        if not self.per_group:
            return list(hits)
        seen: dict[Any, int] = {}
        out = []
        for hit_id, score in hits:
            item = index.get(hit_id)
            if item is None:
                continue
            key = self.key(hit_id, item)
            if seen.get(key, 0) < self.per_group:
                seen[key] = seen.get(key, 0) + 1
                out.append((hit_id, score))
        return out


def ranked(index: VectorIndex, vector: np.ndarray, k: int, filters: dict[str, str] | None = None,
           exclude: set[str] | None = None, offset: int = 0,
           diversity: Diversity | None = None) -> list[tuple[str, float]]:
    """Results offset .. offset+k-1 of the ranking by similarity to `vector`, after filters, exclusions and the
    diversity cap. Pages are consistent: page 2 (offset=k) starts where page 1 ended, for the same index."""
    need = offset + k
    if diversity is None or not diversity.per_group:
        return index.search(vector, need, filters=filters or None, exclude=exclude)[offset:]
    fetch = need
    while True:
        hits = index.search(vector, fetch, filters=filters or None, exclude=exclude)
        kept = diversity.apply(index, hits)
        if len(kept) >= need or len(hits) < fetch:  # enough, or the index has nothing more that passes
            return kept[offset:need]
        fetch *= _GROWTH


def similar_response(index: VectorIndex, hits: Sequence[tuple[str, float]],
                     warnings: Sequence[ProblemOut] = ()) -> Response:
    """A SimilarResponse body for `hits`, built from the stored JSON of each item plus its score.

    An item deleted between the search and this (a concurrent DELETE) is skipped rather than failing."""
    parts = []
    for hit_id, score in hits:
        text = index.get_json(hit_id)
        if text is None:
            continue
        # The stored text is a JSON object with at least "id": splice the score in before its closing brace.
        parts.append(f'{text[:-1]},"score":{float(score)!r}}}')
    warn = json.dumps([w.model_dump() for w in warnings], ensure_ascii=False) if warnings else "[]"
    body = '{"items":[' + ",".join(parts) + '],"warnings":' + warn + "}"
    return Response(body.encode("utf-8"), media_type="application/json")


def not_found(item_id: str, index: VectorIndex) -> ApiError:
    return ApiError(404, f"no item with id {item_id!r} in the index ({len(index)} items); "
                         "add it with PUT /items/{id}")


def recommend_vector(index: VectorIndex, positive: Sequence[str], negative: Sequence[str],
                     negative_weight: float) -> np.ndarray:
    """unit(mean of the positives' vectors) - negative_weight * unit(mean of the negatives'), made unit length:
    near what the client liked, away from what it did not (the "average vector" strategy of Qdrant's recommend).

    Raises ApiError 404 naming every id that is not in the index."""
    missing = [i for i in [*positive, *negative] if i not in index]
    if missing:
        raise ApiError(404, f"not in the index: {', '.join(repr(m) for m in missing[:10])}"
                            f"{' ...' if len(missing) > 10 else ''}; add them with PUT /items/{{id}} or drop them",
                       [ProblemOut(field="positive" if m in positive else "negative", value=m, severity="error",
                                   message="no item with this id in the index") for m in missing[:50]])

    def unit_mean(ids: Sequence[str]) -> np.ndarray:
        vecs = [index.vector(i) for i in ids]
        m = np.mean([v for v in vecs if v is not None], axis=0)
        norm = float(np.linalg.norm(m))
        return m / norm if norm > 0 else m

    q = unit_mean(positive)
    if negative:
        q = q - negative_weight * unit_mean(negative)
    norm = float(np.linalg.norm(q))
    return (q / norm if norm > 0 else q).astype(np.float32)


def variants(index: VectorIndex, item_id: str, k: int, offset: int = 0) -> list[tuple[str, float]]:
    """The other items of `item_id`'s group, best first by similarity to it (exact: a group is small).
    An item without a group has no variants."""
    item = index.get(item_id)
    if item is None:
        raise not_found(item_id, index)
    group = item.get("group")
    if group in (None, ""):
        return []
    q = index.vector(item_id)
    members = [m for m in index.group_ids(group) if m != item_id]
    scored = []
    for m in members:
        v = index.vector(m)
        if v is not None:
            scored.append((m, float(np.dot(q, v))))
    scored.sort(key=lambda t: (-t[1], t[0]))
    return scored[offset: offset + k]


def diversity_from(per_group: int | None, group_by: str | None, schema: Any, prefix: str = "") -> Diversity | None:
    """The Diversity a request asks for, or None; a `group_by` that is not a std field of the model is a 422."""
    if group_by is not None and group_by not in schema.std_fields:
        raise ApiError(422, f"group_by {group_by!r} is not a std field of this model; use one of "
                            f"{', '.join(sorted(schema.std_fields))}, or leave it out to group by `group`",
                       [ProblemOut(field=f"{prefix}group_by", value=group_by, severity="error",
                                   message="not a std field of the model's schema")])
    return Diversity(per_group, group_by) if per_group else None


class _SearchThreads:
    """A few daemon threads that run searches for the event loop: a queue in, a per-loop inbox out.

    What `loop.run_in_executor` does, minus its layers (a concurrent Future chained to an asyncio Future, a work
    item, the pool's idle-thread bookkeeping) and with fewer GIL hand-offs, which is what the event loop pays for
    under load (BENCHMARKS.md, section 11e): results that finish while the loop is busy share one wake-up
    (`_Inbox`), and a job does all its FAISS calls in the worker (the route's vector lookup included)."""

    def __init__(self, n: int) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._inboxes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its _Inbox
        for i in range(n):
            threading.Thread(target=self._work, name=f"itemtower-search-{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            inbox, future, fn, args = self._queue.get()
            try:
                result, error = fn(*args), None
            except BaseException as e:  # handed to the awaiting request, which raises it there
                result, error = None, e
            inbox.put(future, result, error)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inboxes[loop] = _Inbox(loop)
        future = loop.create_future()
        self._queue.put((inbox, future, fn, args))
        return await future


class _Inbox:
    """Finished searches for one event loop. Workers append; only the first result since the loop last drained
    wakes it (call_soon_threadsafe writes to the loop's self-pipe: a syscall and a GIL hand-off each)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: collections.deque = collections.deque()
        self.scheduled = False

    def put(self, future: asyncio.Future, result: Any, error: BaseException | None) -> None:  # a worker thread
        self.done.append((future, result, error))  # before the flag test: a drain that cleared it will see this
        if not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop closed meanwhile (shutdown): nobody waits for these results
                pass

    def drain(self) -> None:  # the loop's thread
        self.scheduled = False  # first: a result appended from now on schedules another drain
        while self.done:
            _settle(*self.done.popleft())


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


_search_threads: _SearchThreads | None = None
_start_lock = threading.Lock()


def _threads() -> _SearchThreads:
    global _search_threads
    if _search_threads is None:
        with _start_lock:
            if _search_threads is None:
                _search_threads = _SearchThreads(max(1, min(4, os.cpu_count() or 1)))
    return _search_threads


async def ranked_off_loop(*args: Any) -> list[tuple[str, float]]:
    """`ranked(*args)` in the search threads: FAISS releases the GIL, so a search runs on the other core while the
    event loop parses and answers other requests. A small dedicated set of threads (one per core), not the shared
    worker pool: more threads than cores would only take turns on them."""
    return await _threads().run(ranked, *args)


def similar_to(index: VectorIndex, item_id: str, k: int, filters: dict[str, str] | None = None, offset: int = 0,
               diversity: Diversity | None = None) -> list[tuple[str, float]]:
    """The ranking for similar-by-id: the item's stored vector, then `ranked` without the item itself.
    Raises ApiError 404 when the id is not in the index."""
    vector = index.vector(item_id)
    if vector is None:
        raise not_found(item_id, index)
    return ranked(index, vector, k, filters, {item_id}, offset, diversity)


async def similar_off_loop(*args: Any) -> list[tuple[str, float]]:
    """`similar_to(*args)` in the search threads: the vector lookup is a FAISS call too (a GIL hand-off), so it
    runs there with the search rather than on the event loop."""
    return await _threads().run(similar_to, *args)


async def similar_listed(neighbours: Any, index: VectorIndex, item_id: str, k: int, offset: int = 0
                         ) -> list[tuple[str, float]]:
    """Plain similar-by-id (no filters, no diversity cap) from the item's neighbour list (serve/neighbours.py):
    on the event loop when the list is still right, else the list is computed in the search threads and kept.
    Raises ApiError 404 when the id is not in the index."""
    hits = neighbours.lookup(item_id, k, offset)
    if hits is not None:
        return hits
    full = await _threads().run(neighbours.compute, index, item_id)
    if full is None:
        raise not_found(item_id, index)
    return full[offset: offset + k]
