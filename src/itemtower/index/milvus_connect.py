"""Opening a pymilvus client for a URI, with errors that name the URI and say what to do (index/milvus_store.py).

A local path is a milvus-lite file: pymilvus starts milvus-lite's gRPC server inside this process for it
(`milvus_lite.server_manager`), and milvus-lite takes a lock on it, so a second process cannot open it. That
case is found before pymilvus tries (its own failure is a logged traceback and "Open local milvus failed").
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["open_client", "release_local", "redact", "share_hint"]

_LOCK_FILE = "LOCK"  # milvus_lite.constants.LOCK_FILENAME
_open_local: Counter = Counter()  # milvus-lite file (absolute) -> clients open on it in this process
_open_lock = threading.Lock()


def share_hint(path: str) -> str:
    return (f"a milvus-lite file serves one process; to share it, run `milvus-lite server --data-dir {path} "
            "--port 19530` and set ITEMTOWER_MILVUS_URI=http://127.0.0.1:19530 in every process")


def redact(uri: str) -> str:
    """The URI without a password (http://user:secret@host -> http://user:***@host)."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", uri)


def _served_here(path: str) -> bool:
    try:
        from milvus_lite import server_manager_instance
    except ImportError:
        return False
    return os.path.abspath(path) in getattr(server_manager_instance, "_servers", {})


def _check_local(path: str) -> None:
    """The milvus-lite file's folder exists, and no other process holds the file's lock."""
    from itemtower.index.milvus_store import MilvusUnavailable

    try:
        import milvus_lite  # noqa: F401  (pymilvus opens local files through it)
    except ImportError:
        raise MilvusUnavailable(f"ITEMTOWER_MILVUS_URI={path} is a milvus-lite file, but milvus-lite is not "
                                "installed: pip install 'itemtower[milvus]' (or point the URI at a Milvus "
                                "server, http://HOST:19530)") from None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = Path(path) / _LOCK_FILE
    if not lock.exists() or _served_here(path):
        return
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        raise MilvusUnavailable(f"the milvus-lite file {path} is open in another process: stop it, or "
                                f"{share_hint(path)}") from None
    finally:
        os.close(fd)


def open_client(uri: str, token: str | None = None, timeout: float = 10.0) -> Any:
    """A connected `pymilvus.MilvusClient` for `uri`.

    Raises:
        MilvusUnavailable: pymilvus is missing, nothing answers at `uri`, or the milvus-lite file is locked.
    """
    from itemtower.index.milvus_store import MilvusUnavailable, is_local_uri

    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError:
        raise MilvusUnavailable("the milvus index backend needs pymilvus: pip install 'itemtower[milvus]' "
                                "(or set ITEMTOWER_INDEX_BACKEND=faiss)") from None
    local = is_local_uri(uri)
    if local:
        if not uri.endswith(".db"):
            raise MilvusUnavailable(f"ITEMTOWER_MILVUS_URI={uri!r}: a milvus-lite file must end in .db; a Milvus "
                                    "server is http://HOST:PORT")
        _check_local(uri)
    try:
        client = MilvusClient(uri=uri, token=token or "", timeout=timeout)
    except MilvusException as e:
        what = "the milvus-lite file could not be opened" if local else "nothing answers there"
        todo = share_hint(uri) if local else ("start Milvus there (for a test stand-in: `milvus-lite server "
                                              "--data-dir DIR --port PORT`), or set ITEMTOWER_MILVUS_URI to "
                                              "where it runs (and ITEMTOWER_MILVUS_TOKEN if it needs one)")
        raise MilvusUnavailable(f"cannot connect to Milvus at {redact(uri)}: {what} ({e.message}); {todo}") \
            from None
    if local:
        with _open_lock:
            _open_local[os.path.abspath(uri)] += 1
    return client


def release_local(path: str) -> None:
    """One client on the file is closed: the last one stops the in-process milvus-lite server pymilvus started
    for it (which releases the file's lock, so another process may open it)."""
    key = os.path.abspath(path)
    with _open_lock:
        _open_local[key] -= 1
        if _open_local[key] > 0:
            return
        del _open_local[key]
    try:
        from milvus_lite import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(path)
