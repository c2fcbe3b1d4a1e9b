"""An index directory built from a catalog streamed (`itemtower index`, issue 13): memory flat in the items.

The in-memory path (FaissIndex.upsert of every item, then write_fresh_snapshot) holds each item as a dict and as
JSON text, plus the id maps and the vectors twice (~20 KB an item: 20 GB at a million). Here the items go by
once: each chunk is embedded (artifacts.streaming.embed_chunks), its items.jsonl lines and its vectors (raw
float32) written to a temporary folder inside the index directory as they come; only the string ids are kept.
At the end the FAISS index is built from the raw file, read back in blocks into one reused buffer (the vectors
exist once in memory, inside FAISS: a memmap's pages would count in the resident set a second time), its
storage reserved up front (growing it block by block doubles a std::vector, briefly holding both copies), in
the layout FaissIndex would pick (flat up to AnnConfig.threshold items, HNSW above; internal ids 0..n-1, no
tombstones). The snapshot is then installed exactly as write_fresh_snapshot installs one (store.FreshSnapshot:
lock held for the whole build, "wal_seq" past every logged write, prev/ removed, the log one mark record,
files fsync'ed and renamed, ids.json last). Anything raised before that leaves the directory as it was.
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

__all__ = ["BLOCK", "BUILD_PREFIX", "EmptyIndexError", "build_index"]

BLOCK = 16_384  # vectors read back and added to FAISS at a time (42 MB at D = 640)
BUILD_PREFIX = ".build-"  # the temporary folder inside the index directory (snapshot files ignore folders)
VECTORS_FILE = "vectors.f32"


class EmptyIndexError(ValueError):
    """No usable item: nothing is written, the directory keeps its index."""


def build_index(embedder, items: Iterable[dict[str, Any]], directory: str | Path, *, ann: AnnConfig | None = None,
                on_chunk: Callable[[int], None] | None = None, chunk: int | None = None,
                block: int = BLOCK) -> int:
    """Embed `items` (normalized item dicts, any iterable: catalog.CatalogStream) into the index directory, which
    they replace as a fresh snapshot with an empty log. Returns the number of items. `ann`: the layout's
    threshold and HNSW parameters (AnnConfig()); `on_chunk(n_done)` after each chunk (progress); `chunk`: items
    embedded at a time (embed_chunks' default), `block`: vectors added to FAISS at a time.

    Raises DirectoryLocked (before reading anything) while a service writes the directory, EmptyIndexError when
    no item came, ValueError as FaissIndex.upsert refuses (an id twice, NaN vectors), and whatever the items'
    iterable raises; in every case the directory's index is left as it was."""
    ann = ann or AnnConfig()
    dim = int(embedder.dim)
    with FreshSnapshot(directory) as fresh:
        _remove_stale_builds(fresh.directory)
        with tempfile.TemporaryDirectory(prefix=BUILD_PREFIX, dir=fresh.directory) as tmp:
            items_path, vectors_path = Path(tmp) / ITEMS_FILE, Path(tmp) / VECTORS_FILE
            ids = _write_parts(embedder, items, items_path, vectors_path, dim, chunk, on_chunk)
            if not ids:
                raise EmptyIndexError(f"no items to index; {fresh.directory} is left as it was")
            _check_unique(ids)
            kind = ann.kind_for(len(ids))
            index = faiss_from_raw(vectors_path, len(ids), dim, kind, ann, block)
            vectors_path.unlink()  # before the snapshot is copied to disk: the disk holds the vectors once more
            fresh.commit(lambda extra: install_snapshot(
                fresh.directory, index, items_path, dim=dim, kind=kind, ids=ids, int_ids=range(len(ids)),
                extra=extra))
    return len(ids)


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

