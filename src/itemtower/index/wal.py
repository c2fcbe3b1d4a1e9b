"""The write-ahead log: every index write, one checksummed JSON line, on disk before the write is acknowledged.

A line is a JSON object whose last key is its checksum, e.g.

    {"seq":7,"op":"upsert","ids":["a"],"items":[{...}],"dim":32,"vectors":"<base64 float32>","crc":"1c291ca3"}
    {"seq":8,"op":"delete","ids":["a"],"crc":"0b1e4f22"}
    {"seq":6,"op":"mark","ids":[],"crc":"..."}   the first line after a cut: no operation; it keeps the
                                                  numbering above what the cut snapshot holds

`crc` is the CRC-32 of the line's UTF-8 bytes with `,"crc":"........"` cut out (so the check is on bytes, not on
a re-serialisation). Vectors are logged (base64 of little-endian float32, N x D) so that replay gives back the very
vectors that were served, without the model. Sequence numbers rise by one per record (a batch write is one
record); `read_log` refuses a line whose number does not rise.

`append` returns only after the line is flushed and fdatasync'ed. Concurrent writers share fsyncs (group commit): each
writes its line under the lock, and one of them fsyncs everything written so far while the others wait for it.

`read_log` is the replay side: a last line that is incomplete or fails its checksum is a write cut off by a crash
(it was never acknowledged); it is reported and dropped. A bad line in the middle is reported as lost and skipped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["LOG_FILE", "LogRecord", "LogReadResult", "UnstorableError", "WriteAheadLog", "encode_record",
           "fsync_dir", "read_log"]

LOG_FILE = "wal.jsonl"

_CRC_TAIL = re.compile(rb',"crc":"([0-9a-f]{8})"\}$')


class UnstorableError(ValueError):
    """The write cannot be logged as JSON (NaN, a lone surrogate, ...): it is refused before anything is written."""


@dataclass
class LogRecord:
    """One logged operation: `op` is "upsert" (ids, items, vectors (N, D)), "delete" (ids) or "mark" (none)."""

    seq: int
    op: str
    ids: list[str]
    items: list[dict[str, Any]] = field(default_factory=list)
    vectors: np.ndarray | None = None  # float32 (N, D) for upserts


@dataclass
class LogReadResult:
    records: list[LogRecord]
    warnings: list[str]
    good_bytes: int  # length of the prefix that ends with the last intact line: where appending resumes
    corrupt: bool  # a bad line before the end: the file should be kept for inspection


def _crc(data: bytes) -> str:
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def encode_record(seq: int, op: str, ids: Sequence[str], items: Sequence[dict[str, Any]] = (),
                  vectors: np.ndarray | None = None) -> bytes:
    """One log line (bytes, ending in a newline). Raises UnstorableError for what JSON cannot hold."""
    body: dict[str, Any] = {"seq": int(seq), "op": op, "ids": [str(i) for i in ids]}
    if op == "upsert":
        vecs = np.ascontiguousarray(np.asarray(vectors, dtype="<f4"))  # (N, D)
        body["items"] = list(items)
        body["dim"] = int(vecs.shape[1])
        body["vectors"] = base64.b64encode(vecs.tobytes()).decode("ascii")
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        data = text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate (before ValueError: it is one)
        raise UnstorableError(f"the write holds a string that is not valid Unicode ({e.reason} at position "
                              f"{e.start}): send UTF-8 text") from None
    except (ValueError, TypeError, RecursionError) as e:  # NaN/inf, a non-JSON type, nesting too deep
        raise UnstorableError(f"the write cannot be stored as JSON: {e}") from None
    return data[:-1] + b',"crc":"' + _crc(data).encode() + b'"}\n'


def _decode_line(line: bytes) -> LogRecord:
    """bytes without the newline -> LogRecord; ValueError says what is wrong."""
    m = _CRC_TAIL.search(line)
    if not m:
        raise ValueError("no checksum at the end of the line")
    data = line[: m.start()] + b"}"
    if _crc(data) != m.group(1).decode():
        raise ValueError("checksum mismatch")
    obj = json.loads(data.decode("utf-8"))
    op, ids = obj["op"], [str(i) for i in obj["ids"]]
    if op in ("delete", "mark"):
        return LogRecord(seq=int(obj["seq"]), op=op, ids=ids)
    if op != "upsert":
        raise ValueError(f"unknown op {op!r}")
    dim = int(obj["dim"])
    vecs = np.frombuffer(base64.b64decode(obj["vectors"]), dtype="<f4").astype(np.float32)
    vecs = vecs.reshape(len(ids), dim)  # (N, D)
    items = obj["items"]
    if len(items) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(items)} items")
    return LogRecord(seq=int(obj["seq"]), op=op, ids=ids, items=items, vectors=vecs)


def read_log(path: str | Path) -> LogReadResult:
    """Every intact record of the log at `path` (none if it does not exist), in file order, with what was wrong."""
    p = Path(path)
    if not p.exists():
        return LogReadResult([], [], 0, False)
    raw = p.read_bytes()
    pieces = raw.split(b"\n")
    # Every piece but the last ended with a newline; the last is an unfinished line (b"" when the file ends cleanly).
    entries = [(line, True) for line in pieces[:-1]] + ([(pieces[-1], False)] if pieces[-1] else [])
    records: list[LogRecord] = []
    warnings: list[str] = []
    good_bytes = offset = 0
    last_seq = -1  # a "mark" may carry seq 0
    corrupt = False
    for lineno, (line, has_newline) in enumerate(entries, 1):
        offset += len(line) + has_newline
        try:
            if not has_newline:
                raise ValueError("the line has no newline")
            rec = _decode_line(line)
            if rec.seq <= last_seq:
                raise ValueError(f"sequence number {rec.seq} does not follow {last_seq}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            if lineno == len(entries):
                warnings.append(f"{p}: the last line (line {lineno}, {len(line)} bytes) is incomplete or damaged "
                                f"({e}): a write cut off by a crash, never acknowledged; it was ignored")
            else:
                corrupt = True
                warnings.append(f"{p}: line {lineno} is damaged ({e}) and was skipped: that operation is lost")
                good_bytes = offset
            continue
        records.append(rec)
        last_seq = rec.seq
        good_bytes = offset
    return LogReadResult(records, warnings, good_bytes, corrupt)


# fdatasync: the data and the file size, not the mtime (what a replay needs, one metadata write less per commit).
_datasync = getattr(os, "fdatasync", os.fsync)


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a new file in `directory` durable (its entry is in the directory's own blocks)."""
    fd = os.open(str(directory), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """The append side of the log at `path`: thread-safe, durable on return, group-committed.

    Args:
        path: the log file; created if missing. Bytes past `good_bytes` (a torn last line) are cut off first, so
            that a new record never follows garbage.
        next_seq: the sequence number of the next record.
        good_bytes: see above; None keeps the whole file.
        fsync: False only for benchmarks that measure what fsync costs.
    """

    def __init__(self, path: str | Path, next_seq: int, good_bytes: int | None = None, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._cond = threading.Condition()
        self._next_seq = int(next_seq)
        self._written = self._next_seq - 1  # highest seq handed to the OS
        self._synced = self._next_seq - 1  # highest seq known durable
        self._syncing = False
        self._error: BaseException | None = None
        new = not self.path.exists()
        self._f = open(self.path, "ab")
        if good_bytes is not None and self._f.tell() > good_bytes:
            self._f.truncate(good_bytes)
            os.fsync(self._f.fileno())
        if new:
            fsync_dir(self.path.parent)

    @property
    def last_seq(self) -> int:
        """The highest sequence number handed out (durable once its `append` returned)."""
        with self._cond:
            return self._next_seq - 1

    def append(self, op: str, ids: Sequence[str], items: Sequence[dict[str, Any]] = (),
               vectors: np.ndarray | None = None) -> int:
        """Log one operation; returns its sequence number once it is on disk.

        Raises:
            UnstorableError: the operation cannot be written as JSON (nothing was written).
            OSError: the disk refused (this and every later append then fail: after a failed fsync the state of the
                file is unknown, so the service must restart and replay).
        """
        with self._cond:
            if self._error is not None:
                raise OSError(f"the write-ahead log {self.path} failed earlier ({self._error}); restart the service")
            seq = self._next_seq
            line = encode_record(seq, op, ids, items, vectors)  # UnstorableError before the seq is used
            try:
                self._f.write(line)
            except OSError as e:
                self._error = e
                raise
            self._next_seq += 1
            self._written = seq
            while self._synced < seq:
                if self._error is not None:
                    raise OSError(f"could not write the write-ahead log {self.path}: {self._error}")
                if self._syncing:  # another writer's fsync is under way: it may cover this line too
                    self._cond.wait()
                    continue
                self._sync_locked()
            return seq

    def _sync_locked(self) -> None:
        """Flush under the lock, fsync without it (others keep appending meanwhile), then wake the waiters."""
        self._syncing = True
        target = self._written
        try:
            self._f.flush()
            fd = self._f.fileno()
            self._cond.release()
            try:
                if self._fsync:
                    _datasync(fd)
            finally:
                self._cond.acquire()
            self._synced = max(self._synced, target)
        except OSError as e:
            self._error = e
            raise
        finally:
            self._syncing = False
            self._cond.notify_all()

    def truncate_through(self, seq: int) -> int:
        """Drop the records with sequence numbers <= seq (they are in a durable snapshot). Returns how many stay.

        The new log starts with a "mark" record at `seq`, so the numbering never restarts below it (a broken
        snapshot cannot be read for its seq). The kept records are written to a new file, fsync'ed and renamed
        over the log, so a crash leaves either the old log or the new one. Appends wait meanwhile (the log is
        short: a snapshot's worth of operations).
        """
        with self._cond:
            while self._syncing:
                self._cond.wait()
            self._f.flush()
            result = read_log(self.path)
            keep = [r for r in result.records if r.seq > seq]
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(encode_record(seq, "mark", []))
                for r in keep:
                    f.write(encode_record(r.seq, r.op, r.ids, r.items, r.vectors))
                f.flush()
                os.fsync(f.fileno())
            self._f.close()
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            self._f = open(self.path, "ab")
            return len(keep)

    def close(self) -> None:
        with self._cond:
            while self._syncing:
                self._cond.wait()
            if not self._f.closed:
                self._f.flush()
                if self._fsync:
                    os.fsync(self._f.fileno())
                self._f.close()
