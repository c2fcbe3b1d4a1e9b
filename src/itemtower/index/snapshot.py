"""FaissIndex's on-disk format: one snapshot directory of three files, written atomically, checked on read.

    index.faiss   faiss.write_index of the IndexIDMap2 (over IndexFlatIP or IndexHNSWFlat)
    items.jsonl   one stored item per line, in the order of ids.json
    ids.json      {"format", "version", "dim", "count", "kind", "ids": [str], "int_ids": [int], "tombstones": [int],
                   ...extra keys (index/store.py keeps the write-ahead log's "wal_seq" there)}

Each file is written to a temporary name and renamed into place, ids.json last; `read_snapshot` checks that the
three agree, so a save interrupted between renames is reported as an inconsistent index, never half-loaded.
Version 1 directories (flat, no tombstones) load unchanged. Kept apart from FaissIndex so that the format (what
old directories hold, what a reader must check) is in one place and the index class only holds and searches.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import faiss

from itemtower.index import ann as annlib

__all__ = ["INDEX_FILE", "IDS_FILE", "ITEMS_FILE", "Snapshot", "install_snapshot", "item_to_json", "read_snapshot",
           "write_snapshot"]

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
ITEMS_FILE = "items.jsonl"
_FORMAT = "itemtower-faiss-index"
_VERSION = 2
_READS = (1, 2)


def item_to_json(sid: str, item: dict[str, Any]) -> str:
    """The stored form of an item; refuses (ValueError naming the id) what could not be saved later."""
    try:
        text = json.dumps({**item, "id": sid}, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as e:
        raise ValueError(f"item {sid!r} cannot be stored as JSON ({type(e).__name__}: {e})") from None
    return text


@dataclass
class Snapshot:
    """What a snapshot directory holds, checked: the FAISS index, its layout, and the live items in save order."""

    index: faiss.IndexIDMap2
    kind: str  # annlib.FLAT or annlib.HNSW
    dim: int
    ids: list[str]
    int_ids: list[int]
    texts: list[str]  # items.jsonl's lines, one per id
    next_int: int  # the first internal id never used (one past the largest stored, tombstones included)


def write_snapshot(directory: str | Path, index: faiss.IndexIDMap2, *, dim: int, kind: str, ids: Sequence[str],
                   int_ids: Sequence[int], texts: Sequence[str], tombstones: Sequence[int],
                   extra: dict[str, Any] | None = None) -> None:
    """Write the three files into `directory` (created if needed), each to a temporary name, fsync'ed, then renamed
    into place, ids.json last. The caller holds whatever lock keeps `index` and the lists consistent meanwhile."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp_items = d / (ITEMS_FILE + ".tmp")
    with open(tmp_items, "w", encoding="utf-8") as f:
        for text in texts:
            f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    install_snapshot(d, index, tmp_items, dim=dim, kind=kind, ids=ids, int_ids=int_ids, tombstones=tombstones,
                     extra=extra)


def install_snapshot(directory: str | Path, index: faiss.IndexIDMap2, items_file: Path, *, dim: int, kind: str,
                     ids: Sequence[str], int_ids: Sequence[int], tombstones: Sequence[int] = (),
                     extra: dict[str, Any] | None = None) -> None:
    """write_snapshot's second half, for an items.jsonl already written and fsync'ed at `items_file` (on the
    directory's file system; one line per id, in their order; moved, not copied): index.faiss and ids.json to
    temporary names, then the three renamed into place, ids.json last (index/build.py streams the items file)."""
    d = Path(directory)
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "dim": dim,
        "count": len(ids),
        "kind": kind,
        "ids": list(ids),
        "int_ids": list(int_ids),
        "tombstones": list(tombstones),
        **(extra or {}),
    }
    tmp_index = d / (INDEX_FILE + ".tmp")
    faiss.write_index(index, str(tmp_index))
    tmp_ids = d / (IDS_FILE + ".tmp")
    with open(tmp_ids, "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_index, d / INDEX_FILE)
    os.replace(items_file, d / ITEMS_FILE)
    os.replace(tmp_ids, d / IDS_FILE)  # last: ids.json is what makes the new files a consistent set


def read_snapshot(directory: str | Path) -> Snapshot:
    """Read and cross-check a directory written by `write_snapshot` (format version 1 or 2).

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
    ids_path, index_path, items_path = d / IDS_FILE, d / INDEX_FILE, d / ITEMS_FILE
    dim, ids, int_ids, tombstones = _read_meta(ids_path)

    try:
        raw = faiss.read_index(str(index_path))
    except RuntimeError as e:  # faiss reports every read failure as RuntimeError with a C++ trace
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
        raise ValueError(f"{index_path}: not a readable FAISS index: {first}") from None
    if not isinstance(raw, faiss.IndexIDMap2):
        raise ValueError(f"{index_path}: expected an IndexIDMap2, found {type(raw).__name__}")
    try:
        kind = annlib.kind_of(raw)
    except ValueError as e:
        raise ValueError(f"{index_path}: {e}") from None
    if raw.d != dim:
        raise ValueError(f"{index_path}: vectors have dimension {raw.d}, but {ids_path} says {dim}")
    stored_iids = faiss.vector_to_array(raw.id_map)
    if raw.ntotal != len(ids) + len(tombstones) or set(stored_iids.tolist()) != set(int_ids) | set(tombstones):
        raise ValueError(
            f"{index_path} holds {raw.ntotal} vectors but {ids_path} lists {len(ids)} ids and "
            f"{len(tombstones)} tombstones (or different ones): the files are from different saves; rebuild "
            "the index"
        )
    texts = _read_items(items_path, ids_path, ids)
    next_int = int(stored_iids.max()) + 1 if len(stored_iids) else 0
    return Snapshot(raw, kind, dim, ids, int_ids, texts, next_int)


def _read_meta(ids_path: Path) -> tuple[int, list[str], list[int], list[int]]:
    try:
        meta = json.loads(ids_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{ids_path}: not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{ids_path}: not an itemtower index file (expected \"format\": \"{_FORMAT}\")")
    if meta.get("version") not in _READS:
        raise ValueError(f"{ids_path}: index format version {meta.get('version')!r}; this code reads "
                         f"{', '.join(map(str, _READS))}: upgrade itemtower, or rebuild the index")
    try:
        dim = int(meta["dim"])
        ids = [str(s) for s in meta["ids"]]
        int_ids = [int(i) for i in meta["int_ids"]]
        tombstones = [int(i) for i in meta.get("tombstones", [])]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{ids_path}: missing or malformed key: {e}") from None
    if len(ids) != len(int_ids) or len(set(ids)) != len(ids) or len(set(int_ids)) != len(int_ids):
        raise ValueError(f"{ids_path}: ids and int_ids must be equally long and free of duplicates")
    if set(tombstones) & set(int_ids):
        raise ValueError(f"{ids_path}: an internal id is both live and a tombstone; rebuild the index")
    return dim, ids, int_ids, tombstones


def _read_items(items_path: Path, ids_path: Path, ids: list[str]) -> list[str]:
    """items.jsonl's lines (JSON text, checked), one per id of ids.json, in its order."""
    texts: list[str] = []
    with open(items_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{items_path}: line {lineno}: not valid JSON: {e.msg}") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{items_path}: line {lineno}: expected a JSON object")
            if len(texts) < len(ids) and obj.get("id") != ids[len(texts)]:
                raise ValueError(f"{items_path}: item {len(texts) + 1} has id {obj.get('id')!r}; {ids_path} says "
                                 f"{ids[len(texts)]!r}")
            texts.append(line)
    if len(texts) != len(ids):
        raise ValueError(f"{items_path} has {len(texts)} items but {ids_path} lists {len(ids)} ids")
    return texts
