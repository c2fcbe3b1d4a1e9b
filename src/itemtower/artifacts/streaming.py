"""Embed a catalog chunk by chunk and write the vectors as they are made (`itemtower embed`, issue 13).

Encoding a whole catalog at once held every item's token ids as Python lists (a few KB per item: gigabytes at a
million items) and every vector until the end. Here one chunk's encodings and vectors exist at a time; the
vectors go to a raw float32 file beside the output, and the .npz (`ids`, `embeddings`, what np.savez writes and
np.load reads) is assembled from it at the end by streaming it into the zip. Within a chunk, batches are
length-sorted as Embedder.embed_encoded sorts them, so padding stays small.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from numpy.lib import format as npformat

__all__ = ["CHUNK", "EmptyCatalogError", "count_lines", "embed_catalog", "embed_chunks", "embed_to_npz"]

CHUNK = 8192  # items encoded at a time: large enough to length-sort well, small enough to bound memory


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    part: list[dict[str, Any]] = []
    for it in items:
        part.append(it)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def embed_chunks(embedder, items: Iterable[dict[str, Any]], batch_size: int | None = None,
                 chunk: int = CHUNK) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, float32 (n, D) L2-normalised vectors) per chunk of `chunk` items, in the items' order: one chunk's
    encodings and vectors in memory at a time (embed_to_npz and the shards of artifacts/shards.py use it)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    for part in _chunks(items, chunk):
        vecs = embedder.embed_encoded(embedder.featurizer.encode(part), batch_size,
                                      photos=embedder.photos_of(part))  # None for a text model
        yield [str(it["id"]) for it in part], np.ascontiguousarray(vecs, dtype=np.float32)


class EmptyCatalogError(ValueError):
    """Nothing to embed (no usable item): no file is written."""


def embed_to_npz(embedder, items: Iterable[dict[str, Any]], out: str | Path, batch_size: int | None = None,
                 chunk: int = CHUNK, on_chunk: Callable[[int], None] | None = None,
                 allow_empty: bool = True) -> tuple[int, int]:
    """Embed `items` (any iterable: a list or a reader's generator) into `out` (.npz with `ids`, catalog order,
    and `embeddings`, float32 [N, D], L2-normalised h). Returns (N, D). `on_chunk(n_done)` after each chunk
    (progress). The file appears whole or not at all (written beside, then renamed); with allow_empty=False,
    no items is an EmptyCatalogError and no file."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dim, ids = embedder.dim, []
    with tempfile.TemporaryDirectory(prefix=".embed-", dir=out.parent) as tmp:
        raw_path = Path(tmp) / "embeddings.f32"
        with raw_path.open("wb") as raw:
            for part_ids, vecs in embed_chunks(embedder, items, batch_size, chunk):
                raw.write(vecs.tobytes())
                ids.extend(part_ids)
                if on_chunk:
                    on_chunk(len(ids))
        if not ids and not allow_empty:
            raise EmptyCatalogError(f"no items to embed; nothing written to {out}")
        partial = Path(tmp) / out.name
        _write_npz(partial, ids, raw_path, dim)
        os.replace(partial, out)
    return len(ids), dim


def embed_catalog(embedder, catalog: str | Path, out: str | Path, batch_size: int | None = None, chunk: int = CHUNK,
                  on_chunk: Callable[[int], None] | None = None):
    """`itemtower embed`: the catalog read one record at a time (catalog.CatalogStream: only the ids seen are
    kept, for the duplicate check), embedded chunk by chunk into `out`. Returns (N, D, the stream: its
    `problems` and `report()` are complete). Peak memory does not grow with the item dicts (BENCHMARKS.md 14c).
    Raises what CatalogStream raises, and EmptyCatalogError when no record is usable."""
    from itemtower.catalog import CatalogStream

    stream = CatalogStream(catalog)
    n, dim = embed_to_npz(embedder, stream, out, batch_size, chunk, on_chunk, allow_empty=False)
    return n, dim, stream


def count_lines(path: str | Path) -> int:
    """Lines of a file (newlines, + 1 for a last line without one), read in blocks: a progress bar's total."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _write_npz(path: Path, ids: Sequence[str], raw_path: Path, dim: int) -> None:
    """The .npz np.savez would write for ids + embeddings, the embeddings copied from the raw file in blocks."""
    n = len(ids)
    header = {"descr": npformat.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": (n, dim)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("ids.npy", "w", force_zip64=True) as f:
            npformat.write_array(f, np.array(ids), allow_pickle=False)
        with zf.open("embeddings.npy", "w", force_zip64=True) as f, raw_path.open("rb") as raw:
            npformat.write_array_header_1_0(f, header)
            shutil.copyfileobj(raw, f, 16 << 20)
