"""Milvus for the tests: milvus-lite's gRPC server, standing in for a Milvus server or cluster.

`milvus_uri` (a session fixture; import it into a test module to use it) runs one milvus-lite server in this
process, on a free port, over a temporary directory; each test takes its own collection (`fresh_collection`), so
tests neither share data nor pay for a server each. `lite_server_process` runs `milvus-lite server` as its own
process, for tests where several service processes share one store.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_collection() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """http://127.0.0.1:PORT of a milvus-lite server running in this process for the whole session."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path_factory.mktemp("milvus")), port=0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=0)
        db.close()


def drop(index) -> None:
    """Drop a test's collection and close its client."""
    try:
        index._client.drop_collection(index.collection)
    finally:
        index.close()


@contextlib.contextmanager
def lite_server_process(data_dir: Path, timeout: float = 30.0) -> Iterator[str]:
    """`milvus-lite server` as a child process on a free port (as README "Scaling out" runs it); yields its URI
    once it answers, kills it after."""
    for attempt in range(3):  # a free port can be taken by another process before the server binds it
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
                                 "--host", "127.0.0.1", "--port", str(port),
                                 "--max-workers", "1"],  # one request at a time: milvus-lite's safe way for writers
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
        try:
            wait_for_port(port, timeout, proc)
            break
        except RuntimeError:  # it exited before listening
            proc.wait(timeout=10)
            if attempt == 2:
                raise
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened: {err}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")
