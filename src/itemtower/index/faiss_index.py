"""FaissIndex: exact inner-product search over string-keyed items, with metadata filters, upsert and delete.

FAISS knows only int64 ids, so the index keeps a two-way map between the caller's string ids and internal int64
ids (assigned from a counter, never reused within one index). `IndexIDMap2` (not `IndexIDMap`) because it keeps
the reverse map that `reconstruct` needs to return an item's vector by id.

On disk (`save` / `load`), a directory of three files:
    index.faiss   faiss.write_index of the IndexIDMap2(IndexFlatIP)
    items.jsonl   one stored item per line, in the order of ids.json
    ids.json      {"format", "version", "dim", "count", "ids": [str], "int_ids": [int]}
Each file is written to a temporary name and renamed into place, ids.json last; `load` checks that the three
agree, so a save interrupted between renames is reported as an inconsistent index, never half-loaded.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import faiss
import numpy as np

__all__ = ["FaissIndex"]

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
ITEMS_FILE = "items.jsonl"
_FORMAT = "itemtower-faiss-index"
_VERSION = 1

# Filtered search first fetches k * _GROWTH candidates, then _GROWTH times more each round, until k survive the
# filter or the whole index has been scanned (which is what makes a rare filter still exact).
_GROWTH = 4


class _RWLock:
    """Many concurrent readers (searches) or one writer (upsert/delete); a waiting writer blocks new readers so
    that a steady stream of searches cannot starve it. FAISS searches are safe to run concurrently; a search that
    overlaps a mutation of the same index is not."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _std_values(item: dict[str, Any], field: str) -> list[str]:
    """item["std"][field] as a list; a bare string (an item that skipped normalize_item) counts as one value."""
    std = item.get("std") or {}
    v = std.get(field)
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return list(v)


class FaissIndex:
    """Exact inner-product index over (string id, vector, item) triples.

    Args:
        dim: vector dimension D.

    Vectors are stored as given (float32); the embedder L2-normalises them, so scores are cosine similarities.
    All public methods are thread-safe: searches run concurrently, upsert/delete exclusively.
    """

    def __init__(self, dim: int) -> None:
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer; got {dim!r}")
        self.dim = int(dim)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._int_of: dict[str, int] = {}  # string id -> internal int64 id
        self._str_of: dict[int, str] = {}  # internal int64 id -> string id
        self._items: dict[str, dict[str, Any]] = {}  # insertion order = the order save() writes
        self._next_int = 0
        self._lock = _RWLock()

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, id: object) -> bool:
        return id in self._items

    def ids(self) -> Iterator[str]:
        """The ids, in insertion order (a snapshot: safe to iterate while the index changes)."""
        return iter(list(self._items))

    def get(self, id: str) -> dict[str, Any] | None:
        """The stored item (a copy, so callers cannot change the index by mutating it), or None."""
        item = self._items.get(id)
        return json.loads(json.dumps(item)) if item is not None else None

    def vector(self, id: str) -> np.ndarray | None:
        """The stored vector, float32 (D,), or None if the id is unknown."""
        with self._lock.read():
            iid = self._int_of.get(id)
            if iid is None:
                return None
            return np.asarray(self._index.reconstruct(iid), dtype=np.float32)

    def search(
        self,
        query: np.ndarray,
        k: int,
        filters: dict[str, str] | None = None,
        exclude: set[str] | None = None,
    ) -> list[tuple[str, float]]:
        """The k items with the highest inner product with `query`, among those that pass the filters.

        Args:
            query: float32 (D,) (a (1, D) array is accepted too).
            k: how many results at most; fewer when fewer items pass the filters.
            filters: {std field: value}; an item passes when item["std"][field] (a list of strings) contains
                value, for every field given (AND). Items without the field do not pass.
            exclude: ids never returned (e.g. the query item itself).

        Returns:
            [(id, score)], best first.

        Filtering is done by over-fetching from the exact index: k * 4 candidates, then 4 times more each round,
        until k pass or every item has been scanned, so a rare filter still returns its true top k.
        """
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
        if q.shape[0] != self.dim:
            raise ValueError(f"query has dimension {q.shape[0]}; this index holds vectors of dimension {self.dim}")
        if k <= 0:
            return []
        filters = dict(filters or {})
        exclude = set(exclude or ())
        q = q.reshape(1, self.dim)  # (1, D): faiss searches a batch of queries

        with self._lock.read():
            n = self._index.ntotal
            if n == 0:
                return []
            n_excluded = sum(1 for e in exclude if e in self._int_of)
            fetch = min(n, k + n_excluded if not filters else (k + n_excluded) * _GROWTH)
            verdict: dict[int, bool] = {}  # internal id -> passes; filters are evaluated once per item
            while True:
                scores, labels = self._index.search(q, fetch)  # (1, fetch) each
                out: list[tuple[str, float]] = []
                for score, iid in zip(scores[0].tolist(), labels[0].tolist()):
                    if iid < 0:  # faiss pads with -1 when fewer than `fetch` vectors exist
                        continue
                    ok = verdict.get(iid)
                    if ok is None:
                        sid = self._str_of[iid]
                        ok = sid not in exclude and self._passes(self._items[sid], filters)
                        verdict[iid] = ok
                    if ok:
                        out.append((self._str_of[iid], float(score)))
                        if len(out) == k:
                            return out
                if fetch >= n:
                    return out
                fetch = min(n, fetch * _GROWTH)

    @staticmethod
    def _passes(item: dict[str, Any], filters: dict[str, str]) -> bool:
        return all(value in _std_values(item, field) for field, value in filters.items())

    # ------------------------------------------------------------------ writing

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]) -> None:
        """Add items; an id already present is replaced (vector and item).

        Args:
            ids: N distinct string ids.
            vectors: float32 (N, D).
            items: N item dicts, stored as JSON (their "id" is set to the id given here).
        """
        ids = [str(i) for i in ids]
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim == 1 and len(ids) == 1:
            vecs = vecs.reshape(1, -1)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (N, {self.dim}); got {vecs.shape}")
        if not (len(ids) == vecs.shape[0] == len(items)):
            raise ValueError(f"got {len(ids)} ids, {vecs.shape[0]} vectors and {len(items)} items; they must match")
        if len(set(ids)) != len(ids):
            dups = sorted(i for i, c in Counter(ids).items() if c > 1)
            raise ValueError(f"duplicate ids in one upsert: {dups[:5]}")
        if not np.isfinite(vecs).all():
            raise ValueError("vectors contain NaN or infinity")
        if not ids:
            return
        # Round-trip through JSON now: an item that cannot be saved later is refused here, not at shutdown.
        stored = [json.loads(json.dumps({**item, "id": sid}, ensure_ascii=False)) for sid, item in zip(ids, items)]

        with self._lock.write():
            replaced = [self._int_of[s] for s in ids if s in self._int_of]
            if replaced:
                self._index.remove_ids(np.asarray(replaced, dtype=np.int64))
            iids = np.empty(len(ids), dtype=np.int64)
            for j, sid in enumerate(ids):
                iid = self._int_of.get(sid)
                if iid is None:  # a replaced item keeps its internal id
                    iid = self._next_int
                    self._next_int += 1
                    self._int_of[sid] = iid
                    self._str_of[iid] = sid
                iids[j] = iid
            self._index.add_with_ids(np.ascontiguousarray(vecs), iids)
            for sid, item in zip(ids, stored):
                self._items[sid] = item

    def delete(self, id: str) -> bool:
        """Remove one item. Returns False (and changes nothing) if the id is unknown."""
        with self._lock.write():
            iid = self._int_of.pop(id, None)
            if iid is None:
                return False
            self._index.remove_ids(np.asarray([iid], dtype=np.int64))
            del self._str_of[iid]
            del self._items[id]
            return True

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write index.faiss, items.jsonl and ids.json into `directory` (created if needed), each atomically.
        `extra` keys go into ids.json (index/store.py keeps the write-ahead log's sequence number there)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        # A read lock is enough: saving does not change the index, it only must not overlap a mutation.
        with self._lock.read():
            ids = list(self._items)
            meta = {
                "format": _FORMAT,
                "version": _VERSION,
                "dim": self.dim,
                "count": len(ids),
                "ids": ids,
                "int_ids": [self._int_of[s] for s in ids],
                **(extra or {}),
            }
            tmp_index = d / (INDEX_FILE + ".tmp")
            faiss.write_index(self._index, str(tmp_index))
            tmp_items = d / (ITEMS_FILE + ".tmp")
            with open(tmp_items, "w", encoding="utf-8") as f:
                for s in ids:
                    f.write(json.dumps(self._items[s], ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            tmp_ids = d / (IDS_FILE + ".tmp")
            with open(tmp_ids, "w", encoding="utf-8") as f:
                json.dump(meta, f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp_index, d / INDEX_FILE)
        os.replace(tmp_items, d / ITEMS_FILE)
        os.replace(tmp_ids, d / IDS_FILE)  # last: ids.json is what makes the new files a consistent set

    @classmethod
    def load(cls, directory: str | Path) -> "FaissIndex":
        """Read an index written by `save`.

        Raises:
            FileNotFoundError: the directory or one of its three files is missing (the message names it).
            ValueError: a file is unreadable or the files disagree (the message names the file and the problem).
        """
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"no index directory at {d}")
        for name in (IDS_FILE, ITEMS_FILE, INDEX_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(f"index at {d} is incomplete: {d / name} is missing")

        ids_path = d / IDS_FILE
        try:
            meta = json.loads(ids_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{ids_path}: not valid JSON: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError(f"{ids_path}: not an itemtower index file (expected \"format\": \"{_FORMAT}\")")
        if meta.get("version") != _VERSION:
            raise ValueError(f"{ids_path}: index format version {meta.get('version')!r}; this code reads {_VERSION}")
        try:
            dim = int(meta["dim"])
            ids = [str(s) for s in meta["ids"]]
            int_ids = [int(i) for i in meta["int_ids"]]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{ids_path}: missing or malformed key: {e}") from None
        if len(ids) != len(int_ids) or len(set(ids)) != len(ids) or len(set(int_ids)) != len(int_ids):
            raise ValueError(f"{ids_path}: ids and int_ids must be equally long and free of duplicates")

        index_path = d / INDEX_FILE
        try:
            raw = faiss.read_index(str(index_path))
        except RuntimeError as e:  # faiss reports every read failure as RuntimeError with a C++ trace
            first = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
            raise ValueError(f"{index_path}: not a readable FAISS index: {first}") from None
        if not isinstance(raw, faiss.IndexIDMap2):
            raise ValueError(f"{index_path}: expected an IndexIDMap2, found {type(raw).__name__}")
        if raw.d != dim:
            raise ValueError(f"{index_path}: vectors have dimension {raw.d}, but {ids_path} says {dim}")
        stored_iids = faiss.vector_to_array(raw.id_map)
        if raw.ntotal != len(ids) or set(stored_iids.tolist()) != set(int_ids):
            raise ValueError(
                f"{index_path} holds {raw.ntotal} vectors but {ids_path} lists {len(ids)} ids (or different ones): "
                "the files are from different saves; rebuild the index"
            )

        items_path = d / ITEMS_FILE
        items: list[dict[str, Any]] = []
        with open(items_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{items_path}: line {lineno}: not valid JSON: {e.msg}") from None
                if not isinstance(obj, dict):
                    raise ValueError(f"{items_path}: line {lineno}: expected a JSON object")
                items.append(obj)
        if len(items) != len(ids):
            raise ValueError(f"{items_path} has {len(items)} items but {ids_path} lists {len(ids)} ids")
        for lineno, (sid, item) in enumerate(zip(ids, items), 1):
            if item.get("id") != sid:
                raise ValueError(f"{items_path}: item {lineno} has id {item.get('id')!r}; {ids_path} says {sid!r}")

        self = cls(dim)
        self._index = raw
        for sid, iid, item in zip(ids, int_ids, items):
            self._int_of[sid] = iid
            self._str_of[iid] = sid
            self._items[sid] = item
        self._next_int = max(int_ids, default=-1) + 1
        return self

    def __repr__(self) -> str:
        return f"FaissIndex(dim={self.dim}, n={len(self)})"
