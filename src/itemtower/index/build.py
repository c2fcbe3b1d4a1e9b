"""An index directory built from a catalog streamed (`itemtower index`, issue 13): memory flat in the items.

The in-memory path (FaissIndex.upsert of every item, then write_fresh_snapshot) holds each item as a dict and as
JSON text, plus the id maps and the vectors twice (~20 KB an item: 20 GB at a million). Here the items go by
once (IndexBuild.write): each chunk is embedded (artifacts.streaming.embed_chunks), its items.jsonl lines and its
vectors (raw float32) written to a temporary folder inside the index directory as they come; only the string ids
are kept. Then (IndexBuild.finish; the caller may free the model first) the FAISS index is built from the raw
file, read back in blocks into one reused buffer (the vectors exist once in memory, inside FAISS: a memmap's
pages would count in the resident set a second time), its storage reserved up front (growing it block by block
doubles a std::vector, briefly holding both copies), in the layout FaissIndex would pick (flat up to
AnnConfig.threshold items, HNSW above; internal ids 0..n-1, no tombstones). The snapshot is installed exactly as
write_fresh_snapshot installs one (store.FreshSnapshot: lock held for the whole build, "wal_seq" past every
logged write, prev/ removed, the log one mark record, files fsync'ed and renamed, ids.json last). Anything
raised before that leaves the directory as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

import faiss
import numpy as np

from itemtower.index import ann as annlib
from itemtower.index.ann import AnnConfig
from itemtower.index.checks import checked_upsert
from itemtower.index.snapshot import ITEMS_FILE, install_snapshot, item_to_json
from itemtower.index.store import FreshSnapshot

__all__ = ["BLOCK", "BUILD_PREFIX", "EmptyIndexError", "IndexBuild", "build_index", "faiss_from_raw"]

BLOCK = 16_384  # vectors read back and added to FAISS at a time (42 MB at D = 640)
BUILD_PREFIX = ".build-"  # the temporary folder inside the index directory (snapshot files ignore folders)
VECTORS_FILE = "vectors.f32"


class EmptyIndexError(ValueError):
    """No usable item: nothing is written, the directory keeps its index."""


class IndexBuild:
    """One build of an index directory, a context manager: the directory's lock (store.FreshSnapshot) and the
    temporary folder are held from entering to leaving. `write` embeds the items into the folder (once);
    `finish` builds FAISS and installs the snapshot. Between the two the caller may free what embedding needed
    (the model, the Korean analyser: cli/index_cmd.py does) before FAISS takes the vectors' memory. Leaving
    without `finish` (an exception, Ctrl+C) leaves the directory's index as it was.

    Raises DirectoryLocked on entering while a service writes the directory."""

    def __init__(self, directory: str | Path, ann: AnnConfig | None = None, block: int = BLOCK) -> None:
        self.directory = Path(directory)
        self.ann, self.block = ann or AnnConfig(), block
        self.ids: list[str] = []
        self.dim = 0

    def __enter__(self) -> "IndexBuild":
        self._fresh = FreshSnapshot(self.directory)
        try:
            _remove_stale_builds(self.directory)
            self._tmp = tempfile.TemporaryDirectory(prefix=BUILD_PREFIX, dir=self.directory)
        except BaseException:
            self._fresh.close()
            raise
        self._items_path = Path(self._tmp.name) / ITEMS_FILE
        self._vectors_path = Path(self._tmp.name) / VECTORS_FILE
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._tmp.cleanup()
        finally:
            self._fresh.close()

    def write(self, embedder, items: Iterable[dict[str, Any]], on_chunk: Callable[[int], None] | None = None,
              chunk: int | None = None) -> int:
        """Embed `items` chunk by chunk (`chunk`: embed_chunks' default), their items.jsonl lines and vectors
        written as they come; `on_chunk(n_done)` after each chunk. Returns the number of items. Raises what
        FaissIndex.upsert refuses (NaN vectors) and whatever the items' iterable raises."""
        if self.dim:
            raise RuntimeError("IndexBuild.write is called once per build")
        self.dim = int(embedder.dim)
        self.ids = _write_parts(embedder, items, self._items_path, self._vectors_path, self.dim, chunk, on_chunk)
        return len(self.ids)

    def finish(self) -> int:
        """FAISS from the written vectors, installed as the directory's fresh snapshot. Returns the number of
        items. Raises EmptyIndexError (no item) and ValueError for an id twice (as FaissIndex.upsert)."""
        n = len(self.ids)
        if not n:
            raise EmptyIndexError(f"no items to index; {self.directory} is left as it was")
        _check_unique(self.ids)
        kind = self.ann.kind_for(n)
        index = faiss_from_raw(self._vectors_path, n, self.dim, kind, self.ann, self.block)
        self._vectors_path.unlink()  # before the index is written out: the disk never holds the vectors 3 times
        self._fresh.commit(lambda extra: install_snapshot(
            self.directory, index, self._items_path, dim=self.dim, kind=kind, ids=self.ids, int_ids=range(n),
            extra=extra))
        return n


def build_index(embedder, items: Iterable[dict[str, Any]], directory: str | Path, *, ann: AnnConfig | None = None,
                on_chunk: Callable[[int], None] | None = None, chunk: int | None = None,
                block: int = BLOCK) -> int:
    """Embed `items` (normalized item dicts, any iterable: catalog.CatalogStream) into the index directory, which
    they replace as a fresh snapshot with an empty log (IndexBuild's write, then finish). Returns the number of
    items. `ann`: the layout's threshold and HNSW parameters (AnnConfig()); `on_chunk(n_done)` after each chunk
    (progress); `chunk`: items embedded at a time, `block`: vectors added to FAISS at a time.

    Raises DirectoryLocked (before reading anything) while a service writes the directory, EmptyIndexError when
    no item came, ValueError as FaissIndex.upsert refuses (an id twice, NaN vectors), and whatever the items'
    iterable raises; in every case the directory's index is left as it was."""
    with IndexBuild(directory, ann, block) as build:
        build.write(embedder, items, on_chunk, chunk)
        return build.finish()


def _write_parts(embedder, items: Iterable[dict[str, Any]], items_path: Path, vectors_path: Path, dim: int,
                 chunk: int | None, on_chunk: Callable[[int], None] | None) -> list[str]:
    """Embed chunk by chunk; items.jsonl lines and raw vectors written as they come (both fsync'ed). Returns the
    ids, in order."""
    from itemtower.artifacts.streaming import embed_chunks

    ids: list[str] = []
    with open(items_path, "w", encoding="utf-8") as texts, open(vectors_path, "wb") as raw:
        parts = embed_chunks(embedder, _stored(items, texts), **({"chunk": chunk} if chunk else {}))
        for part_ids, vecs in parts:
            part_ids, vecs = checked_upsert(part_ids, vecs, None, dim)  # what FaissIndex.upsert refuses
            raw.write(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
            ids.extend(part_ids)
            if on_chunk:
                on_chunk(len(ids))
        for f in (texts, raw):
            f.flush()
            os.fsync(f.fileno())
    return ids


def _stored(items: Iterable[dict[str, Any]], out: TextIO) -> Iterator[dict[str, Any]]:
    """The items as they go to the embedder, each one's stored JSON line (what FaissIndex keeps) written first."""
    for item in items:
        out.write(item_to_json(str(item["id"]), item) + "\n")
        yield item


def _check_unique(ids: list[str]) -> None:
    """An id twice is refused as FaissIndex.upsert refuses it (CatalogStream never yields one: it skips the later
    line as a duplicate id)."""
    if len(set(ids)) != len(ids):
        dups = sorted(i for i, c in Counter(ids).items() if c > 1)
        raise ValueError(f"duplicate ids in one upsert: {dups[:5]}")


def faiss_from_raw(vectors_path: Path, n: int, dim: int, kind: str, ann: AnnConfig,
                   block: int = BLOCK) -> faiss.IndexIDMap2:
    """The IndexIDMap2 of `kind` (annlib.build's) holding the raw file's n vectors under ids 0..n-1, added
    `block` at a time from one reused buffer, its storage (and an HNSW graph's neighbour lists) reserved first."""
    index = annlib.build(kind, dim, np.zeros((0, dim), np.float32), np.zeros(0, np.int64), ann)
    _reserve(index, n, kind, ann)
    buf = np.empty((min(block, n), dim), np.float32)
    with open(vectors_path, "rb") as f:
        for start in range(0, n, block):
            m = min(block, n - start)
            view = buf[:m]
            if f.readinto(memoryview(view).cast("B")) != view.nbytes:
                raise ValueError(f"{vectors_path}: shorter than {n} vectors of dimension {dim}")
            index.add_with_ids(view, np.arange(start, start + m, dtype=np.int64))
    return index


def _reserve(index: faiss.IndexIDMap2, n: int, kind: str, ann: AnnConfig) -> None:
    """Grow the empty index's vectors to their final capacity at once (a std::vector keeps its capacity when
    resized down), so that adding block by block never reallocates, i.e. never holds two copies."""
    inner = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if kind == annlib.HNSW else inner
    _grow(storage.codes, n * storage.code_size)
    if kind == annlib.HNSW:  # level 0 holds 2M neighbours a node, the levels above about M/(M-1) in all
        _grow(inner.hnsw.neighbors, n * (2 * ann.m + 2))


def _grow(vector: Any, size: int) -> None:
    vector.resize(size)
    vector.resize(0)


def _remove_stale_builds(directory: Path) -> None:
    """Temporary folders of builds killed before they could clean up (the lock is held: none is running)."""
    for p in directory.glob(BUILD_PREFIX + "*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
