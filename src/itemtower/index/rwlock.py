"""A readers-writer lock for the index: many searches at once, or one mutation."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["RWLock"]


class RWLock:
    """Many concurrent readers (searches) or one writer (upsert/delete); a waiting writer blocks new readers so
    that a steady stream of searches cannot starve it. FAISS searches are safe to run concurrently; a search that
    overlaps a mutation of the same index is not.

    Writers hold it only for O(batch) work (tombstones, appends), never for an O(N) compaction, so that a write
    does not stall every search."""

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

    @property
    def state(self) -> tuple[int, bool]:
        """(readers holding it, whether a writer holds it): for tests of the lock itself."""
        with self._cond:
            return self._readers, self._writer
