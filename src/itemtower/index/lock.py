"""One writer per index directory: an exclusive `fcntl.flock` on DIR/write.lock, held while the owner runs.

Two processes that both wrote one directory would each keep their own index in memory and overwrite each other's
snapshots (the last to save wins, and each log would be replayed onto the other's snapshot). The lock is released
by the kernel when the process ends, however it ends (kill -9 included), so a stale lock file never blocks a
restart. The file holds the owner's pid, for the message the next process shows.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_FILE", "DirectoryLocked", "DirLock"]

LOCK_FILE = "write.lock"

SCALE_READS_HINT = (
    "Only one process may write an index directory: run one service process per index (uvicorn --workers N "
    "stops at start-up for this reason). To scale reads, run read replicas: each its own copy of the index "
    "directory (taken from the writer's latest snapshot), with every write sent to the one writer"
)


class DirectoryLocked(RuntimeError):
    """Another process holds the write lock on the index directory."""


class DirLock:
    """An exclusive, non-blocking lock on `directory` (created if needed). Use `DirLock.acquire(dir)`."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: str | Path, purpose: str = "the service") -> "DirLock":
        """Take the lock or raise DirectoryLocked naming the holder and what to do."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / LOCK_FILE
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise DirectoryLocked(
                f"the index directory {d} is locked by another process (pid {holder}), so {purpose} cannot write "
                f"it; stop that process first. {SCALE_READS_HINT}") from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(d, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
