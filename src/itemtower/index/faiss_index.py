"""FaissIndex: inner-product search over string-keyed items, with metadata filters, upsert and delete.

FAISS knows only int64 ids, so the index keeps a two-way map between the caller's string ids and internal int64
ids, assigned from a counter and never reused. `IndexIDMap2` (not `IndexIDMap`) because it keeps the reverse map
that `reconstruct` needs to return an item's vector by id.

Layout (index/ann.py): exact `IndexFlatIP` up to `AnnConfig.threshold` live items, `IndexHNSWFlat` (inner product)
above it; the switch is a rebuild from the stored vectors, done the first time the index grows past the threshold.
With a GPU (`AnnConfig.gpu`, index/gpu.py) the layout is flat at every size and searches go to a GPU copy of it
(`GpuMirror`), which every write, rebuild and load keeps in step; the CPU index stays the one read and saved.

Writes never compact under the write lock. A replaced or deleted item's vector stays in FAISS as a tombstone: its
internal id simply has no string id any more, searches skip it, and a replacement gets a fresh internal id. The
tombstones are dropped when the index is saved (the snapshot on disk is compact) and, in memory, by a rebuild
outside the write lock once they pass `AnnConfig.compact_fraction` of the stored vectors.

On disk (`save` / `load`): a directory of three files, index.faiss, items.jsonl and ids.json, written atomically
and cross-checked on read (index/snapshot.py, which also says what old directories hold). The filtered search,
over-fetching and widening until k items pass, is index/widening.py.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import faiss
import numpy as np

from itemtower.index import ann as annlib
from itemtower.index import gpu as gpulib
from itemtower.index.ann import AnnConfig
from itemtower.index.rwlock import RWLock
from itemtower.index.snapshot import IDS_FILE, INDEX_FILE, ITEMS_FILE, item_to_json, read_snapshot, write_snapshot
from itemtower.index.widening import widening_search
from itemtower.index.checks import checked_upsert

__all__ = ["FaissIndex", "AnnConfig", "IDS_FILE", "INDEX_FILE", "ITEMS_FILE"]

log = logging.getLogger("itemtower.index")

_omp = threading.local()  # .threads: the OpenMP thread count this thread last set for FAISS


class FaissIndex:
    """Inner-product index over (string id, vector, item) triples: exact when small, HNSW when large.

    Args:
        dim: vector dimension D.
        ann: when to switch to HNSW and its parameters (AnnConfig); `configure` changes it later.

    Vectors are stored as given (float32); the embedder L2-normalises them, so scores are cosine similarities.
    All public methods are thread-safe: searches run concurrently, upsert/delete exclusively (and briefly).
    """

    def __init__(self, dim: int, ann: AnnConfig | None = None) -> None:
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer; got {dim!r}")
        self.dim = int(dim)
        self.ann = ann or AnnConfig()
        self._use_gpu = gpulib.use_gpu(self.ann.gpu)  # GpuUnavailable for "on" without a GPU
        self.gpu_error: str | None = None  # why the GPU copy was given up (a FAISS error), if it was
        self._index = annlib.build(annlib.FLAT, self.dim, np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64),
                                self.ann)
        self._kind = annlib.FLAT
        self._gpu = self._mirror_of(self._index, self._kind)  # the GPU copy searched instead of _index, or None
        self._int_of: dict[str, int] = {}  # string id -> internal int64 id (live items only)
        self._str_of: dict[int, str] = {}  # internal int64 id -> string id; a stored id missing here is a tombstone
        self._items: dict[str, dict[str, Any]] = {}  # insertion order = the order save() writes
        self._json: dict[str, str] = {}  # the same items as JSON text: what save() writes and get_json() returns
        self._groups: dict[str, dict[str, None]] = {}  # item["group"] -> its ids (an ordered set)
        self._next_int = 0
        self._lock = RWLock()
        self._rebuilding = threading.Lock()  # one background rebuild at a time
        self.search_threads: int | None = 1  # OpenMP threads per search; None leaves FAISS's default

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, id: object) -> bool:
        return id in self._items

    @property
    def kind(self) -> str:
        """"flat" (exact) or "hnsw" (approximate)."""
        return self._kind

    @property
    def on_gpu(self) -> bool:
        """Searches run on a GPU (a GpuMirror of the flat index)."""
        return self._gpu is not None

    def gpu_info(self) -> dict[str, Any]:
        """What /info says about the GPU: used or not, the setting, the faiss build, and a FAISS error that ended it."""
        info: dict[str, Any] = {"used": self._gpu is not None, "setting": self.ann.gpu, "faiss": gpulib.faiss_build()}
        if self.gpu_error:
            info["error"] = self.gpu_error
        return info

    @property
    def tombstones(self) -> int:
        """Vectors held by FAISS that belong to no live item (replaced or deleted since the last rebuild)."""
        return self._index.ntotal - len(self._str_of)

    def ids(self) -> Iterator[str]:
        """The ids, in insertion order (a snapshot: safe to iterate while the index changes)."""
        return iter(list(self._items))

    def get(self, id: str) -> dict[str, Any] | None:
        """The stored item (a fresh copy, so callers cannot change the index by mutating it), or None."""
        text = self._json.get(id)
        return json.loads(text) if text is not None else None

    def get_json(self, id: str) -> str | None:
        """The stored item as JSON text (a JSON object), or None: the cheapest way to put it in a response."""
        return self._json.get(id)

    def group_ids(self, group: str) -> list[str]:
        """The ids of the items whose "group" is `group` (colour/size variants of one product)."""
        return list(self._groups.get(group, ()))

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

        Filters, exclusions and tombstones are applied by over-fetching: k (+ exclusions) candidates, k * 4 with
        filters, then 4 times more each round, until k pass or every stored vector has been looked at; with HNSW
        a round past a few hundred candidates is an exact scan, so a rare filter still returns its true top k.
        """
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
        if q.shape[0] != self.dim:
            raise ValueError(f"query has dimension {q.shape[0]}; this index holds vectors of dimension {self.dim}")
        if k <= 0:
            return []
        filters = dict(filters or {})
        exclude = set(exclude or ())
        q = q.reshape(1, self.dim)  # (1, D): faiss searches a batch of queries
        if self.search_threads is not None and getattr(_omp, "threads", None) != self.search_threads:
            # Per calling thread (an OpenMP ICV), so once per thread: every FAISS call releases and retakes the
            # GIL, and under load each such hand-off costs the event loop more than the call itself.
            faiss.omp_set_num_threads(self.search_threads)
            _omp.threads = self.search_threads

        with self._lock.read():
            target = self._gpu if self._gpu is not None else self._index  # the mirror is always flat
            return widening_search(target, self._kind, q, k, filters, exclude, str_of=self._str_of,
                                   int_of=self._int_of, items=self._items, ef_search=self.ann.ef_search)

    # ------------------------------------------------------------------ writing

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]) -> None:
        """Add items; an id already present is replaced (vector and item).

        Args:
            ids: N distinct string ids.
            vectors: float32 (N, D).
            items: N item dicts, stored as JSON (their "id" is set to the id given here).

        Under the write lock this is O(N) in the batch, never in the index: a replaced item's old vector becomes
        a tombstone. Growing past `ann.threshold` starts one rebuild into HNSW (in the calling thread; a service
        that must not wait calls `rebuild_in_background` instead, see `needs_rebuild`).
        """
        ids, vecs = checked_upsert(ids, vectors, items, self.dim)
        if not ids:
            return
        # Serialized now: an item that cannot be saved later is refused here, not at the next snapshot.
        texts = [item_to_json(sid, item) for sid, item in zip(ids, items)]
        stored = [json.loads(t) for t in texts]

        with self._lock.write():
            iids = np.arange(self._next_int, self._next_int + len(ids), dtype=np.int64)
            self._next_int += len(ids)
            vecs = np.ascontiguousarray(vecs)
            self._index.add_with_ids(vecs, iids)
            if self._gpu is not None:
                self._gpu = self._mirror_add(self._gpu, vecs, iids)
            for sid, iid, item, text in zip(ids, iids.tolist(), stored, texts):
                old = self._int_of.get(sid)
                if old is not None:
                    del self._str_of[old]  # the old vector stays, as a tombstone
                    self._ungroup(sid)
                self._int_of[sid] = iid
                self._str_of[iid] = sid
                self._items[sid] = item
                self._json[sid] = text
                self._group(sid, item)
        self._maybe_rebuild()

    def delete(self, id: str) -> bool:
        """Remove one item (its vector becomes a tombstone). Returns False (and changes nothing) if unknown."""
        with self._lock.write():
            iid = self._int_of.pop(id, None)
            if iid is None:
                return False
            del self._str_of[iid]
            self._ungroup(id)
            del self._items[id]
            del self._json[id]
        self._maybe_rebuild()
        return True

    def _group(self, sid: str, item: dict[str, Any]) -> None:
        g = item.get("group")
        if isinstance(g, str) and g:
            self._groups.setdefault(g, {})[sid] = None

    def _ungroup(self, sid: str) -> None:
        g = self._items[sid].get("group")
        members = self._groups.get(g) if isinstance(g, str) else None
        if members is not None:
            members.pop(sid, None)
            if not members:
                del self._groups[g]

    # ------------------------------------------------------------------ layout

    background_rebuilds = False  # True: upsert/delete start a thread for a needed rebuild instead of waiting

    def configure(self, ann: AnnConfig | None = None, search_threads: int | None = 1,
                  background_rebuilds: bool | None = None) -> None:
        """Change the ANN settings (a loaded index keeps the defaults until told); rebuilds when the layout the
        new threshold asks for differs from the current one (at once, in this thread)."""
        if background_rebuilds is not None:
            self.background_rebuilds = background_rebuilds
        self.search_threads = search_threads
        if ann is not None:
            use = gpulib.use_gpu(ann.gpu)  # raises (nothing changed) for "on" without a GPU
            with self._lock.write():
                self.ann, self._use_gpu, self.gpu_error = ann, use, None
                annlib.set_ef_search(self._index, ann.ef_search)
                if not use:
                    self._gpu = None
                elif self._gpu is None:  # a flat index gets its GPU copy now (O(N)); HNSW in the rebuild below
                    self._gpu = self._mirror_of(self._index, self._kind)
        self._maybe_rebuild()

    def _target_kind(self) -> str:
        if self._use_gpu:  # exact on the GPU at any size: HNSW's reason to exist, CPU time per query, is gone
            return annlib.FLAT
        live = len(self._str_of)
        # Hysteresis: back to flat only well under the threshold, so that a few deletes do not flip-flop.
        if self._kind == annlib.HNSW and live > self.ann.threshold // 2:
            return annlib.HNSW
        return self.ann.kind_for(live)

    def needs_rebuild(self) -> bool:
        """The size asks for the other layout, or tombstones passed `ann.compact_fraction` of the stored vectors."""
        n = self._index.ntotal
        return self._target_kind() != self._kind or (n > 0 and self.tombstones > self.ann.compact_fraction * n)

    def _maybe_rebuild(self) -> None:
        if self.needs_rebuild():
            if self.background_rebuilds:
                self.rebuild_in_background()
            else:
                self.rebuild()

    def rebuild(self) -> None:
        """Rebuild the FAISS index from the live vectors, in the layout its size asks for, without tombstones.

        Only the copy of the live vectors (read lock) and the swap (write lock, plus the few items written
        meanwhile) hold the lock; the O(N) build, HNSW's insertions included, holds none, so searches and writes
        go on while it runs."""
        with self._rebuilding:
            with self._lock.read():
                kind = self._target_kind()
                since = self._next_int  # internal ids only grow: anything >= since was written during the build
                vecs, iids = annlib.live_vectors(self._index, set(self._str_of))
            new = annlib.build(kind, self.dim, vecs, iids, self.ann)
            mirror = self._mirror_of(new, kind)  # its copy to the GPU holds no lock either
            with self._lock.write():
                newer = np.asarray(sorted(i for i in self._str_of if i >= since), dtype=np.int64)
                if len(newer):
                    rows = np.stack([self._index.reconstruct(int(i)) for i in newer])
                    new.add_with_ids(rows, newer)
                    if mirror is not None:
                        mirror = self._mirror_add(mirror, rows, newer)
                if mirror is None or not self._use_gpu:  # configure changed the setting meanwhile (rare): now
                    mirror = self._mirror_of(new, kind)
                self._index, self._kind, self._gpu = new, kind, mirror
            log.info("index rebuilt: %s, %d items", kind, len(self._str_of))

    def _mirror_of(self, index: faiss.IndexIDMap2, kind: str) -> gpulib.GpuMirror | None:
        """A GPU copy of `index` when the setting and the layout ask for one; None after a FAISS error (logged)."""
        if not (self._use_gpu and kind == annlib.FLAT):
            return None
        try:
            return gpulib.GpuMirror(index)
        except RuntimeError as e:  # FAISS's errors, e.g. out of GPU memory
            self._gpu_failed(e)
            return None

    def _mirror_add(self, mirror: gpulib.GpuMirror, vecs: np.ndarray, iids: np.ndarray) -> gpulib.GpuMirror | None:
        try:
            mirror.add_with_ids(vecs, iids)
            return mirror
        except RuntimeError as e:  # the rows are in the CPU index already: it serves on alone
            self._gpu_failed(e)
            return None

    def _gpu_failed(self, e: Exception) -> None:
        """Give the GPU up: searches go to the CPU index, whose layout follows the threshold again."""
        self._use_gpu, self.gpu_error = False, f"{type(e).__name__}: {e}"
        log.error("FAISS on the GPU failed (%s); searching on the CPU from now on (configure() tries again)",
                  self.gpu_error)

    def rebuild_in_background(self) -> threading.Thread | None:
        """Start `rebuild` in a daemon thread unless one runs already; returns the thread (or None)."""
        if self._rebuilding.locked():
            return None
        t = threading.Thread(target=self.rebuild, name="itemtower-index-rebuild", daemon=True)
        t.start()
        return t

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write index.faiss, items.jsonl and ids.json into `directory` (created if needed), each atomically.
        `extra` keys go into ids.json (index/store.py keeps the write-ahead log's sequence number there).

        A flat index is saved compact (its tombstones dropped: a copy of the live vectors, O(N) but cheap); an
        HNSW index is saved as it is, with its tombstones listed, since dropping them means rebuilding the graph
        (the in-memory rebuild does that once they pass `ann.compact_fraction`)."""
        # A read lock is enough: saving does not change the index, it only must not overlap a mutation.
        with self._lock.read():
            ids = list(self._items)
            tombstones: list[int] = []
            if self._kind == annlib.FLAT and self.tombstones:
                vecs, iids = annlib.live_vectors(self._index, set(self._str_of))
                to_write = annlib.build(annlib.FLAT, self.dim, vecs, iids, self.ann)
            else:
                to_write = self._index
                if self.tombstones:
                    stored = faiss.vector_to_array(self._index.id_map).tolist()
                    tombstones = [i for i in stored if i not in self._str_of]
            write_snapshot(directory, to_write, dim=self.dim, kind=self._kind, ids=ids,
                           int_ids=[self._int_of[s] for s in ids], texts=[self._json[s] for s in ids],
                           tombstones=tombstones, extra=extra)

    @classmethod
    def load(cls, directory: str | Path, ann: AnnConfig | None = None) -> "FaissIndex":
        """Read an index written by `save` (format version 1 or 2), in the layout it was saved in.

        Raises:
            FileNotFoundError: the directory or one of its three files is missing (the message names it).
            ValueError: a file is unreadable or the files disagree (the message names the file and the problem).
        """
        snap = read_snapshot(directory)
        self = cls(snap.dim, ann)
        self._index, self._kind = snap.index, snap.kind
        annlib.set_ef_search(snap.index, self.ann.ef_search)
        for sid, iid, text in zip(snap.ids, snap.int_ids, snap.texts):
            self._int_of[sid] = iid
            self._str_of[iid] = sid
            self._items[sid] = json.loads(text)
            self._json[sid] = text
            self._group(sid, self._items[sid])
        self._next_int = snap.next_int
        self._gpu = self._mirror_of(self._index, self._kind)
        if self._use_gpu and self._kind != annlib.FLAT:  # a saved HNSW index: flat and on the GPU, as configured
            self.rebuild()
        return self

    def __repr__(self) -> str:
        gpu = ", gpu" if self._gpu is not None else ""
        return f"FaissIndex(dim={self.dim}, n={len(self)}, kind={self._kind!r}, tombstones={self.tombstones}{gpu})"

