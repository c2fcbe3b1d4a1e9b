"""DurableIndex: a FaissIndex whose acknowledged writes survive a crash (snapshot + write-ahead log + lock).

The index directory holds:
    ids.json, items.jsonl, index.faiss   the last snapshot (FaissIndex.save; ids.json also holds "wal_seq", the
                                         sequence number of the last write it contains; absent in old dirs: 0)
    wal.jsonl                            writes since (index/wal.py), fsync'ed before each write is answered
    prev/                                hard links to the snapshot before it, the fallback if the last is broken
    write.lock                           flock'ed by the one process that writes the directory (index/lock.py)

A write is: log it (fsync) -> apply it in memory -> return, in sequence-number order (a turnstile), so memory
always equals "snapshot + log". On open: load the snapshot (or prev/ if it is broken), replay the log past its
"wal_seq". Snapshots run in a background thread every `every_ops` writes or `every_seconds`, and at close; the
log is cut only after a snapshot is on disk (files and directory fsync'ed), and keeps what prev/ needs too.

Why replay after a stale "wal_seq" is still right: every operation sets or removes whole items by id, so applying
again a stretch of operations that a snapshot already holds ends in the same items.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from itemtower.index.faiss_index import IDS_FILE, FaissIndex
from itemtower.index.lock import LOCK_FILE, DirLock
from itemtower.index.wal import LOG_FILE, LogRecord, UnstorableError, WriteAheadLog, encode_record, fsync_dir, \
    read_log
from itemtower.index.checks import checked_upsert

__all__ = ["DurableIndex", "FreshSnapshot", "SEQ_KEY", "load_current", "write_fresh_snapshot"]

log = logging.getLogger("itemtower.index")

SEQ_KEY = "wal_seq"
_FAILED = "the last background snapshot failed"
PREV_DIR = "prev"
_T = TypeVar("_T")


def _snapshot_seq(directory: Path) -> int:
    """ids.json's "wal_seq" (0 for an index saved before the log existed, or one that cannot be read)."""
    try:
        return int(json.loads((directory / IDS_FILE).read_text(encoding="utf-8")).get(SEQ_KEY, 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _snapshot_files(directory: Path) -> list[Path]:
    """The snapshot's files: whatever FaissIndex.save wrote (not the log, the lock, temporaries or kept copies)."""
    return [p for p in sorted(directory.iterdir())
            if p.is_file() and p.name not in (LOG_FILE, LOCK_FILE)
            and not p.name.endswith(".tmp") and ".damaged-" not in p.name]


def _sync_files(directory: Path) -> None:
    """fsync the snapshot's files (faiss.write_index does not) and the directory: after this the snapshot is
    durable and the log before it may go."""
    for p in _snapshot_files(directory):
        fd = os.open(str(p), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(directory)


def _replay(index: FaissIndex, records: Sequence[LogRecord], after: int) -> tuple[int, list[str]]:
    """Apply the records with seq > after; a record that cannot apply is named and skipped, never fatal."""
    n, problems = 0, []
    for r in records:
        if r.seq <= after or r.op == "mark":
            continue
        try:
            if r.op == "upsert":
                index.upsert(r.ids, r.vectors, r.items)
            else:
                for i in r.ids:
                    index.delete(i)
            n += 1
        except ValueError as e:
            problems.append(f"log record {r.seq} ({r.op} {r.ids[:3]}) could not be replayed and was skipped: {e}")
    return n, problems


class DurableIndex:
    """Owns an index directory. Build it with `DurableIndex.open`; reads go to `.index` directly.

    Attributes:
        index: the in-memory FaissIndex (read it freely; write only through upsert/delete here).
        warnings: what went wrong at open or since (a torn log line, a broken snapshot, a failed snapshot).
    """

    def __init__(self, directory: Path, index: FaissIndex, wal: WriteAheadLog, lock: DirLock, *, snapshot_seq: int,
                 can_snapshot: bool, current_good: bool, every_ops: int, every_seconds: float,
                 warnings: list[str]) -> None:
        self.directory = directory
        self.index = index
        self.warnings = warnings
        self._wal, self._lock = wal, lock
        self._snapshot_seq = snapshot_seq  # the last write the snapshot on disk holds
        self._can_snapshot = can_snapshot  # False: the files on disk are broken and kept as they are
        self._current_good = current_good  # the snapshot files on disk load (worth keeping in prev/)
        self._every_ops, self._every_seconds = max(1, every_ops), max(0.01, every_seconds)
        self._applied = wal.last_seq  # the highest seq applied in memory
        self._turn = threading.Condition()  # applies in seq order; a snapshot holds it to see one seq's state
        self._snap_mutex = threading.Lock()
        self._last_snapshot = time.monotonic()
        self._retry_after = 0.0  # after a failed snapshot: not before this time (a full disk must not spin)
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._snapshot_loop, name="itemtower-snapshot", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ open

    @classmethod
    def open(cls, directory: str | Path, dim: int, *, every_ops: int = 1000, every_seconds: float = 60.0,
             build_hint: str = "`itemtower index --model DIR --catalog FILE`",
             index_options: dict[str, Any] | None = None) -> "DurableIndex":
        """Lock the directory, load the snapshot, replay the log. Never fails for broken files (they become
        `warnings`); raises DirectoryLocked when another process writes the directory. `index_options` are
        passed to FaissIndex(dim, **options) and FaissIndex.load(dir, **options) (e.g. the ANN settings)."""
        d = Path(directory)
        lock = DirLock.acquire(d)
        try:
            return cls._open_locked(d, dim, lock, every_ops, every_seconds, build_hint, index_options or {})
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, d: Path, dim: int, lock: DirLock, every_ops: int, every_seconds: float,
                     build_hint: str, options: dict[str, Any]) -> "DurableIndex":
        index, seq, can_snapshot, current_good, missing, warnings = _load_base(d, dim, build_hint, options)
        result = read_log(d / LOG_FILE)
        warnings += result.warnings
        if result.corrupt:
            copy = d / f"{LOG_FILE}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
            shutil.copyfile(d / LOG_FILE, copy)
            warnings.append(f"a copy of the damaged log is at {copy}")
        usable = [r for r in result.records if r.op != "upsert" or r.vectors.shape[1] == index.dim]
        if len(usable) < len(result.records):
            warnings.append(f"{len(result.records) - len(usable)} logged writes hold vectors of another dimension "
                            f"than the index ({index.dim}) and were not replayed")
        n, problems = _replay(index, usable, after=seq)
        warnings += problems
        if n:
            log.info("replayed %d logged writes past snapshot seq %d in %s", n, seq, d)
        last = max([seq] + [r.seq for r in result.records])
        wal = WriteAheadLog(d / LOG_FILE, next_seq=last + 1, good_bytes=result.good_bytes)
        if result.corrupt:
            wal.truncate_through(0)  # rewrite without the damaged line, so new records never follow it
        if missing and len(index) == 0:
            warnings.insert(0, f"no index ({missing}): similar and search return nothing until items are added "
                               f"with {build_hint} or PUT /items/{{id}}")
        for w in warnings:
            log.warning(w)
        return cls(d, index, wal, lock, snapshot_seq=seq, can_snapshot=can_snapshot, current_good=current_good,
                   every_ops=every_ops, every_seconds=every_seconds, warnings=warnings)

    # ------------------------------------------------------------------ writes

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]) -> list[bool]:
        """Add or replace items, durably, as one logged write (a batch is all or nothing). Returns, per id,
        whether it was new. Raises UnstorableError (nothing written) for what JSON cannot hold, ValueError for
        bad shapes."""
        ids, vecs = checked_upsert(ids, vectors, items, self.index.dim)  # before the log: a logged write applies
        stored = [{**item, "id": sid} for sid, item in zip(ids, items)]
        seq = self._wal.append("upsert", ids, stored, vecs)

        def apply() -> list[bool]:
            created = [sid not in self.index for sid in ids]
            self.index.upsert(ids, vecs, stored)
            return created

        return self._apply(seq, apply)

    def delete(self, id: str) -> bool:
        """Remove one item, durably. False (nothing logged) if it is not there."""
        if id not in self.index:
            return False
        seq = self._wal.append("delete", [id])
        return self._apply(seq, lambda: self.index.delete(id))

    def _apply(self, seq: int, fn: Callable[[], _T]) -> _T:
        with self._turn:
            while self._applied < seq - 1:  # an earlier write is still between its fsync and its apply
                self._turn.wait()
            try:
                return fn()
            except Exception:
                log.exception("write %d is logged but could not be applied in memory; a restart replays it", seq)
                raise
            finally:
                self._applied = seq
                self._turn.notify_all()
                if self._applied - self._snapshot_seq >= self._every_ops:
                    self._wake.set()

    # ------------------------------------------------------------------ snapshots

    @property
    def pending(self) -> int:
        """Writes applied since the snapshot on disk (what a crash would leave to the log)."""
        return self._applied - self._snapshot_seq

    def snapshot(self) -> bool:
        """Save the index as it is now, then cut the log. False if there was nothing to do (or the files on disk
        are broken and kept for inspection)."""
        with self._snap_mutex:
            if not self._can_snapshot:
                return False
            with self._turn:  # writes keep being logged meanwhile; they wait to be applied
                seq = self._applied
                if seq == self._snapshot_seq and self._current_good:
                    return False
                keep_after = self._keep_previous()
                try:
                    self.index.save(self.directory, extra={SEQ_KEY: seq})
                except BaseException:
                    self._current_good = False  # the files may be half replaced: never copy them to prev/
                    raise
            _sync_files(self.directory)
            self._snapshot_seq, self._current_good = seq, True
            self._last_snapshot = time.monotonic()
            self.warnings[:] = [w for w in self.warnings if not w.startswith(_FAILED)]
            self._wal.truncate_through(seq if keep_after is None else keep_after)
            log.info("snapshot of %d items at seq %d in %s", len(self.index), seq, self.directory)
            return True

    def _keep_previous(self) -> int | None:
        """Hard-link the current snapshot into prev/ (the fallback if the new one is found broken) and return its
        seq: the log must keep what comes after it. None when there is no prev/ to fall back to."""
        prev = self.directory / PREV_DIR
        if not self._current_good:  # the files on disk are broken: keep prev/ as it is, if there is one
            return _snapshot_seq(prev) if (prev / IDS_FILE).exists() else None
        files = _snapshot_files(self.directory)
        if not files:
            return None
        tmp = self.directory / (PREV_DIR + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for f in files:
                os.link(f, tmp / f.name)
            fsync_dir(tmp)
            shutil.rmtree(prev, ignore_errors=True)
            os.replace(tmp, prev)
            fsync_dir(self.directory)
        except OSError as e:  # e.g. a file system without hard links: snapshots still work, without a fallback
            log.warning("could not keep the previous snapshot in %s (%s)", prev, e)
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(prev, ignore_errors=True)
            return None
        return self._snapshot_seq

    def _snapshot_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=min(1.0, self._every_seconds))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            due = now >= self._retry_after and (self.pending >= self._every_ops or (
                self.pending > 0 and now - self._last_snapshot >= self._every_seconds))
            if due:
                try:
                    self.snapshot()
                except Exception as e:  # the log still holds every write: nothing is lost, but say so
                    log.exception("background snapshot of %s failed; the log keeps the writes", self.directory)
                    msg = f"{_FAILED} ({type(e).__name__}: {e}); the log keeps the writes, nothing is lost"
                    if msg not in self.warnings:
                        self.warnings.append(msg)
                    self._retry_after = time.monotonic() + self._every_seconds

    def close(self) -> None:
        """Stop the background thread, take a last snapshot if anything changed, release the directory."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        try:
            if self.pending > 0:
                self.snapshot()
        except Exception:
            log.exception("could not snapshot %s at shutdown; the log keeps the writes, replayed at the next start",
                          self.directory)
        finally:
            self._wal.close()
            self._lock.release()


def _load_base(d: Path, dim: int, build_hint: str, options: dict[str, Any]
               ) -> tuple[FaissIndex, int, bool, bool, str | None, list[str]]:
    """The snapshot to replay onto: (index, its seq, can_snapshot, current_good, why missing, warnings)."""
    def empty() -> FaissIndex:
        return FaissIndex(dim, **options)

    try:
        index = FaissIndex.load(d, **options)
    except FileNotFoundError as e:  # a new directory, or a service that crashed before its first snapshot
        return empty(), 0, True, False, str(e), []
    except ValueError as e:
        prev = d / PREV_DIR
        try:
            index = FaissIndex.load(prev, **options)
        except (FileNotFoundError, ValueError):
            return empty(), 0, False, False, None, [
                f"the index at {d} is broken and was not loaded ({e}); serving the writes in its log "
                f"({LOG_FILE}) on an empty index; the broken files are kept and never saved over: restore them and "
                f"restart (the log is replayed onto them), or rebuild with {build_hint} (which clears the log)"]
        if index.dim != dim:
            return empty(), 0, False, False, None, [f"the index at {d} is broken ({e}) and {prev} is "
                                                            f"from another model; rebuild with {build_hint}"]
        return index, _snapshot_seq(prev), True, False, None, [
            f"the last snapshot at {d} is broken ({e}); recovered from the previous one in {prev} and its log, "
            "nothing is lost; the next snapshot replaces the broken files"]
    if index.dim != dim:
        return empty(), 0, False, False, None, [
            f"the index at {d} holds vectors of dimension {index.dim}, the model makes {dim}: it is from another "
            f"model; rebuild with {build_hint}"]
    return index, _snapshot_seq(d), True, True, None, []


def load_current(directory: str | Path) -> FaissIndex:
    """Read-only: the snapshot with the log replayed onto it, what a service on `directory` serves (or served when
    it stopped). No lock, nothing written; for readers such as `itemtower explain`. Raises like FaissIndex.load."""
    d = Path(directory)
    index = FaissIndex.load(d)
    _replay(index, [r for r in read_log(d / LOG_FILE).records
                    if r.op != "upsert" or r.vectors.shape[1] == index.dim], after=_snapshot_seq(d))
    return index


class FreshSnapshot:
    """`itemtower index`'s rebuild of a directory: the lock taken at construction (DirectoryLocked while a
    service writes the directory) and held until `close`, so that a build streamed over minutes owns the
    directory from its first item; `commit(save)` makes what `save` writes the snapshot, with an empty log.

    `save(extra)` writes the snapshot files (FaissIndex.save, or index/build.py's streamed files) with `extra`
    in ids.json: its "wal_seq" is past every logged write, so a crash before the log is emptied cannot replay old
    writes onto the new catalog. Then the files are fsync'ed, prev/ (a fallback to the replaced catalog) removed
    and the log replaced by one "mark" record at that seq (numbering goes on above it)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = DirLock.acquire(self.directory, purpose="`itemtower index`")

    def commit(self, save: Callable[[dict[str, Any]], None]) -> None:
        d = self.directory
        seq = max([_snapshot_seq(d)] + [r.seq for r in read_log(d / LOG_FILE).records])
        save({SEQ_KEY: seq})
        _sync_files(d)
        shutil.rmtree(d / PREV_DIR, ignore_errors=True)
        tmp = d / (LOG_FILE + ".tmp")
        with open(tmp, "wb") as f:
            f.write(encode_record(seq, "mark", []))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, d / LOG_FILE)
        fsync_dir(d)

    def close(self) -> None:
        self._lock.release()

    def __enter__(self) -> "FreshSnapshot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_fresh_snapshot(directory: str | Path, index: FaissIndex) -> None:
    """Make the in-memory `index` the directory's snapshot, with an empty log (the rebuild replaces every
    earlier write; FreshSnapshot says how). Raises DirectoryLocked while a service writes the directory.
    `itemtower index` streams instead: index/build.py, the same FreshSnapshot."""
    with FreshSnapshot(directory) as fresh:
        fresh.commit(lambda extra: index.save(fresh.directory, extra=extra))


__all__ += ["UnstorableError"]
