"""Two real service processes (uvicorn) pointed at one Milvus server see each other's writes.

`milvus-lite server` runs as its own process (standing in for a Milvus cluster); two `uvicorn fault_app:app`
processes (the real service, with tests/fakes.FakeEmbedder for the model so each starts in about a second) get
ITEMTOWER_INDEX_BACKEND=milvus and its URI. A write through one is read through the other at once: GET, similar,
search, the item count, a replacement and a delete. Random ports; every process is killed at the end; each wait
is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from milvus_support import free_port, fresh_collection, lite_server_process, wait_for_port

REPO = Path(__file__).resolve().parents[1]
NEW = {"title": "blue denim jacket", "std": {"category": "01outer_02jacket", "color": "Blue", "gender": "both"}}


def _service(model_dir: Path, uri: str, collection: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ITEMTOWER_MODEL": str(model_dir), "ITEMTOWER_INDEX_BACKEND": "milvus",
           "ITEMTOWER_MILVUS_URI": uri, "ITEMTOWER_MILVUS_COLLECTION": collection}
    env.pop("ITEMTOWER_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fault_app:app", "--app-dir", str(REPO / "tests"),
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=REPO, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60.0) -> None:
    wait_for_port(int(url.rsplit(":", 1)[1]), timeout, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(url + "/health", timeout=5).json().get("model_loaded"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready; log: {log.read_text()[-2000:]}")


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [it["id"] for it in resp.json()["items"]]


def test_two_services_share_one_milvus(tmp_path):
    (tmp_path / "model").mkdir()  # fault_app's stub loads FakeEmbedder for any existing directory
    collection = fresh_collection()
    procs: list[subprocess.Popen] = []
    with lite_server_process(tmp_path / "milvus") as uri:
        try:
            urls = []
            for name in ("a", "b"):
                proc, url = _service(tmp_path / "model", uri, collection, tmp_path / f"{name}.log")
                procs.append(proc)
                urls.append(url)
            for proc, url, name in zip(procs, urls, "ab"):
                _ready(proc, url, tmp_path / f"{name}.log")
            a, b = (httpx.Client(base_url=u, timeout=10) for u in urls)
            assert a.get("/info").json()["index"]["backend"] == "milvus"

            assert a.put("/items/x1", json=NEW).status_code == 201  # written through a ...
            assert b.get("/items/x1").json()["title"] == NEW["title"]  # ... read through b
            assert b.put("/items/x2", json={**NEW, "title": "blue denim jacket zip"}).status_code == 201
            assert _ids(a.get("/items/x1/similar", params={"k": 5})) == ["x2"]
            assert sorted(_ids(b.post("/search", json={"item": {"title": "denim jacket"}, "k": 5}))) == ["x1", "x2"]
            assert a.get("/health").json()["n_items"] == b.get("/health").json()["n_items"] == 2

            assert b.put("/items/x1", json={**NEW, "title": "red coat"}).json()["created"] is False
            assert a.get("/items/x1").json()["title"] == "red coat"
            assert a.delete("/items/x2").status_code == 204
            assert b.get("/items/x2").status_code == 404 and b.delete("/items/x2").status_code == 404
            assert _ids(b.get("/items/x1/similar")) == []
            a.close()
            b.close()
        finally:
            for proc in procs:
                proc.kill()
            for proc in procs:
                proc.wait(timeout=10)
