"""THE fault test: a real `uvicorn main:app` over the tiny trained model, clients streaming PUT / batch PUT /
DELETE, `kill -9` at a random moment, restart. Every acknowledged write must be there, a write that was in flight
must be entirely there or entirely absent (a batch included), and the index must load.

Each client thread owns its ids and writes them one request at a time, so the state after its acknowledged writes
is known exactly; its one request in flight at the kill may or may not have landed, as a whole. Snapshots are
set to every 15 writes / 0.3 s, so kills land before, during and after snapshots and log cuts.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from itemtower.index import FaissIndex

REPO = Path(__file__).resolve().parents[1]
THREADS, IDS_PER_THREAD = 3, 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m uvicorn main:app` in its own process on 127.0.0.1, logs to a file."""

    def __init__(self, model_dir: Path, log_path: Path, app: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ITEMTOWER_MODEL": str(model_dir), "ITEMTOWER_SNAPSHOT_EVERY_OPS": "15",
               "ITEMTOWER_SNAPSHOT_EVERY_SECONDS": "0.3"}
        env.pop("ITEMTOWER_API_KEY", None)  # writes without a key
        self.log = open(log_path, "ab")
        extra = ["--app-dir", str(REPO / "tests")] if app != "main:app" else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, *extra, "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"], cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                return httpx.get(self.url + "/health", timeout=1.0).json()
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"the server did not answer /health within {timeout} s")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


class Writer(threading.Thread):
    """One client: random writes to its own ids, one at a time, until a request fails (the server died)."""

    def __init__(self, t: int, url: str, templates: list[dict], seed: int, acked: list) -> None:
        super().__init__(daemon=True)
        self.t, self.url, self.templates = t, url, templates
        self.rng = random.Random(seed * 100 + t)
        self.ids = [f"t{t}/item{j}" for j in range(IDS_PER_THREAD)]  # a "/" in ids, as catalogs have
        self.done: list[tuple[str, dict]] = []  # acknowledged ops: ("put", {id: rev}) / ("delete", {id: None})
        self.in_flight: tuple[str, dict] | None = None
        self.errors: list[str] = []
        self.acked = acked  # shared counter (list.append is atomic)

    def item(self, id: str, rev: str) -> dict:
        body = dict(self.rng.choice(self.templates))
        body.update(id=id, rev=rev, title=f"{body['title']} {rev}")
        return body

    def run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=30.0) as c:
            while True:
                n += 1
                roll = self.rng.random()
                try:
                    if roll < 0.55:
                        id, rev = self.rng.choice(self.ids), f"{self.t}-{n}"
                        self.in_flight = ("put", {id: rev})
                        r = c.put(f"/items/{id}", json=self.item(id, rev))
                        ok = r.status_code in (200, 201)
                    elif roll < 0.8:
                        ids = self.rng.sample(self.ids, self.rng.randint(2, 4))
                        revs = {i: f"{self.t}-{n}-{k}" for k, i in enumerate(ids)}
                        self.in_flight = ("put", revs)
                        r = c.put("/items", json={"items": [self.item(i, v) for i, v in revs.items()]})
                        ok = r.status_code == 200
                    else:
                        id = self.rng.choice(self.ids)
                        self.in_flight = ("delete", {id: None})
                        r = c.delete(f"/items/{id}")
                        ok = r.status_code in (204, 404)
                except httpx.HTTPError:
                    return  # the server is gone: in_flight stays, maybe applied, maybe not
                if not ok:
                    self.errors.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")
                    return
                self.done.append(self.in_flight)
                self.in_flight = None
                self.acked.append(1)

    def expected(self) -> tuple[dict, dict | None]:
        """(state after the acknowledged writes, state if the in-flight one landed too): {id: rev or None}."""
        state = {i: None for i in self.ids}
        for _, change in self.done:
            state.update(change)
        if self.in_flight is None:
            return state, None
        return state, {**state, **self.in_flight[1]}


def observed(url: str, ids: list[str]) -> dict:
    out = {}
    with httpx.Client(base_url=url, timeout=10.0) as c:
        for i in ids:
            r = c.get(f"/items/{i}")
            assert r.status_code in (200, 404), r.text
            out[i] = r.json()["rev"] if r.status_code == 200 else None
            if r.status_code == 200:
                assert r.json()["title"].endswith(" " + out[i]), r.json()  # the whole item, not a mix
    return out


def model_dir_for(app: str, request, tmp_path: Path) -> Path:
    """main:app: a copy of the tiny trained model's files (no index); fault_app: an empty directory."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    if app == "main:app":
        trained, _ = request.getfixturevalue("tiny_model")
        for p in Path(trained).iterdir():
            if p.is_file():
                shutil.copy(p, model_dir / p.name)
    return model_dir


@pytest.mark.parametrize("seed, app", [(0, "main:app"), (1, "fault_app:app"), (2, "fault_app:app")])
def test_kill_9_loses_no_acknowledged_write(tiny_items, request, tmp_path, seed, app):
    """kill -9 mid-stream, restart: acknowledged writes all there, the in-flight one all or nothing, /health ok,
    and after a clean stop the snapshot on disk loads with the same items. Seed 0 runs the shipped main:app over
    the tiny trained model; the other seeds the same service with the fake embedder (a one-second start). Seed 0
    also tears the log's last line, as a crash in mid-write would: a warning in /health, never an error."""
    templates = [{k: v for k, v in it.items() if k != "id"} for it in tiny_items[:30]]
    model_dir = model_dir_for(app, request, tmp_path)
    rng = random.Random(seed)
    server = Server(model_dir, tmp_path / "server.log", app)
    writers: list[Writer] = []
    try:
        health = server.wait_ready()
        assert health["model_loaded"], health
        with httpx.Client(base_url=server.url, timeout=60.0) as c:  # warm-up (the first model call is slow)
            assert c.put("/items/warm-up", json={**templates[0], "rev": "w"}).status_code == 201
            assert c.delete("/items/warm-up").status_code == 204
        acked: list = []
        writers = [Writer(t, server.url, templates, seed, acked) for t in range(THREADS)]
        for w in writers:
            w.start()
        target = rng.randint(15, 60)  # the random moment: after this many acknowledged writes, plus a jitter
        deadline = time.monotonic() + 30  # a bound for a slow machine; the kill comes then at the latest
        while len(acked) < target and time.monotonic() < deadline and any(w.is_alive() for w in writers):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        server.kill9()
        for w in writers:
            w.join(timeout=15)
    finally:
        server.stop()
    for w in writers:
        assert not w.errors, w.errors
    assert len(acked) >= 10, f"only {len(acked)} writes acknowledged before the kill; see {server.log.name}"

    index_dir = model_dir / "index"
    print(f"seed {seed}: {len(acked)} writes acknowledged, in flight at the kill: "
          f"{[w.in_flight for w in writers if w.in_flight]}; snapshot on disk: {(index_dir / 'ids.json').exists()}; "
          f"log: {(index_dir / 'wal.jsonl').stat().st_size} bytes")
    if seed == 0:  # a torn last line, as a kill in mid-write leaves it
        with open(model_dir / "index" / "wal.jsonl", "ab") as f:
            f.write(b'{"seq":999999,"op":"upsert","ids":["t0/item0"],"items":[{"title":"half')

    again = Server(model_dir, tmp_path / "server2.log", app)
    try:
        health = again.wait_ready()
        all_ids = [i for w in writers for i in w.ids]
        got = observed(again.url, all_ids)
        for w in writers:
            base, maybe = w.expected()
            mine = {i: got[i] for i in w.ids}
            assert mine == base or mine == maybe, (
                f"thread {w.t}: after restart {mine}; acknowledged state {base}; with the in-flight write {maybe}")
        assert health["n_items"] == sum(v is not None for v in got.values())
        torn = [w for w in health["warnings"] if "the last line" in w and "ignored" in w
                or (w.startswith("no index (") and health["n_items"] == 0)]  # (every item deleted, no snapshot)
        # a kill in the middle of a background snapshot: recovered from prev/ and the log (every write checked above)
        cut = [w for w in health["warnings"] if "the last snapshot" in w and "recovered from the previous one" in w
               and "nothing is lost" in w]
        assert [w for w in health["warnings"] if w not in torn + cut] == [], health  # crash artifacts, nothing else
        if seed == 0:
            assert health["status"] == "degraded" and len(torn) == 1, health
    finally:
        again.stop()
    index = FaissIndex.load(model_dir / "index")  # the shutdown snapshot: loads, holds exactly what was served
    assert {i: index.get(i)["rev"] for i in index.ids()} == {i: v for i, v in got.items() if v is not None}
    assert json.loads((model_dir / "index" / "ids.json").read_text())["wal_seq"] >= max(1, len(got) // 10)


def test_second_server_on_one_index_refuses_to_start(tmp_path):
    """Two real server processes on one model directory: the second exits at start-up, saying the index is
    locked by the first (its pid) and how to scale reads; the first keeps serving."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    first = Server(model_dir, tmp_path / "first.log", "fault_app:app")
    second = None
    try:
        first.wait_ready()
        second = Server(model_dir, tmp_path / "second.log", "fault_app:app")
        assert second.proc.wait(timeout=60) != 0
        text = Path(second.log.name).read_text()
        assert f"locked by another process (pid {first.proc.pid})" in text and "read replica" in text, text[-2000:]
        assert httpx.get(first.url + "/health", timeout=5).json()["model_loaded"]
    finally:
        first.stop()
        if second is not None:
            second.stop()
