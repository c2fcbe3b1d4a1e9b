"""Snapshot + write-ahead log (index/store.py) and the service's durable writes, in process (the kill -9 test with
a real server is tests/test_fault.py)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fakes import FakeEmbedder
from itemtower.index import FaissIndex
from itemtower.index.lock import DirectoryLocked
from itemtower.index.store import DurableIndex, load_current, write_fresh_snapshot
from itemtower.index.wal import UnstorableError, encode_record, read_log
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings

DIM = 8


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(1, DIM)).astype(np.float32)
    return v / np.linalg.norm(v)


def put(store: DurableIndex, id: str, seed: int, **extra) -> bool:
    [created] = store.upsert([id], vec(seed), [{"title": f"item {id}", "rev": seed, **extra}])
    return created


def crash(store: DurableIndex) -> None:
    """What kill -9 leaves: no last snapshot, the log as written, the lock gone with the process."""
    store._stop.set()
    store._wake.set()
    store._thread.join()
    store._wal.close()
    store._lock.release()


def state_of(index: FaissIndex) -> dict:
    return {i: (index.get(i), index.vector(i).tolist()) for i in sorted(index.ids())}


def open_store(d, dim: int = DIM, **kw) -> DurableIndex:
    kw.setdefault("every_ops", 10_000)
    kw.setdefault("every_seconds", 3600)
    return DurableIndex.open(d, dim, **kw)


def wal_seq(d) -> int:
    return json.loads((d / "ids.json").read_text())["wal_seq"]


def logged(d) -> list[tuple[int, str, list[str]]]:
    """(seq, op, ids) of the log's records, marks included."""
    return [(r.seq, r.op, r.ids) for r in read_log(d / "wal.jsonl").records]


# ---------------------------------------------------------------------------------------------------- the store


def test_writes_survive_a_crash_without_any_snapshot(tmp_path):
    """Nothing was ever snapshotted: the log alone rebuilds the items and their vectors, exactly."""
    d = tmp_path / "index"
    s = open_store(d)
    assert put(s, "a", 1) and put(s, "b", 2) and not put(s, "a", 3)
    assert s.delete("b") and not s.delete("b")
    live = state_of(s.index)
    crash(s)
    assert not (d / "ids.json").exists()
    s2 = open_store(d)
    assert state_of(s2.index) == live and s2.index.get("a")["rev"] == 3 and s2.warnings == []
    s2.close()


def test_snapshot_then_more_writes_then_crash_round_trip(tmp_path):
    """Snapshot at seq 3 (stored in ids.json), two more writes, crash: the snapshot plus the replayed log equal
    what was served."""
    d = tmp_path / "index"
    s = open_store(d)
    for i in range(3):
        put(s, f"i{i}", i)
    assert s.snapshot() and wal_seq(d) == 3
    put(s, "i0", 10)
    s.delete("i1")
    live = state_of(s.index)
    crash(s)
    s2 = open_store(d)
    assert state_of(s2.index) == live
    s2.close()


def test_log_is_cut_only_to_what_the_snapshots_hold(tmp_path):
    """First snapshot: the log empties. Second: the log keeps what came after the first, which prev/ (the
    fallback snapshot) needs; nothing before."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    put(s, "b", 2)
    s.snapshot()
    assert logged(d) == [(2, "mark", [])]
    put(s, "c", 3)
    s.snapshot()
    assert logged(d) == [(2, "mark", []), (3, "upsert", ["c"])]
    assert json.loads((d / "prev" / "ids.json").read_text())["wal_seq"] == 2
    assert not s.snapshot()  # nothing new
    s.close()


def test_background_snapshot_after_every_n_ops(tmp_path):
    """every_ops=3: three writes and the background thread snapshots (within a few seconds)."""
    d = tmp_path / "index"
    s = open_store(d, every_ops=3)
    for i in range(3):
        put(s, f"i{i}", i)
    deadline = time.monotonic() + 10
    while not (d / "ids.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wal_seq(d) == 3
    s.close()


def test_background_snapshot_after_m_seconds(tmp_path):
    """every_seconds=0.2: a single write is snapshotted soon after, without waiting for more writes."""
    d = tmp_path / "index"
    s = open_store(d, every_seconds=0.2)
    put(s, "a", 1)
    deadline = time.monotonic() + 10
    while not (d / "ids.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wal_seq(d) == 1
    s.close()


def test_failed_background_snapshot_is_a_warning_and_loses_nothing(tmp_path, monkeypatch):
    """The disk refuses a snapshot: a warning (shown by /health), the log keeps every write; once saving works
    again the next snapshot succeeds and the warning goes."""
    d = tmp_path / "index"
    s = open_store(d, every_ops=1, every_seconds=0.2)
    real_save = s.index.save

    def full_disk(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(s.index, "save", full_disk)
    def failures() -> list[str]:
        return [w for w in s.warnings if "snapshot failed" in w]  # (the other one: "no index" at the start)

    put(s, "a", 1)
    deadline = time.monotonic() + 10
    while not failures() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(failures()) == 1 and "No space left" in failures()[0]
    monkeypatch.setattr(s.index, "save", real_save)
    put(s, "b", 2)
    while failures() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert failures() == [] and wal_seq(d) == 2
    crash(s)
    s2 = open_store(d)
    assert sorted(s2.index.ids()) == ["a", "b"]
    s2.close()


def test_close_snapshots_and_a_clean_restart_replays_nothing(tmp_path):
    """Shutdown takes a last snapshot; the next start finds an empty log."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    s.close()
    assert wal_seq(d) == 1 and logged(d) == [(1, "mark", [])]
    s2 = open_store(d)
    assert s2.index.get("a")["rev"] == 1
    s2.close()


def test_concurrent_writes_to_one_id_replay_to_what_was_served(tmp_path):
    """Eight threads replacing the same item: memory applies writes in log order, so after a crash the replay
    gives back the item that was being served, not another thread's version."""
    d = tmp_path / "index"
    s = open_store(d)

    def writer(t: int) -> None:
        for j in range(15):
            put(s, "x", 100 * t + j)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    live = state_of(s.index)
    crash(s)
    s2 = open_store(d)
    assert state_of(s2.index) == live
    s2.close()


def test_unstorable_item_is_refused_and_nothing_is_logged(tmp_path):
    """A lone surrogate cannot be written as JSON: UnstorableError, the index and the log unchanged."""
    d = tmp_path / "index"
    s = open_store(d)
    with pytest.raises(UnstorableError):
        put(s, "bad", 1, title="\ud800")
    assert "bad" not in s.index and read_log(d / "wal.jsonl").records == []
    s.close()


def test_old_index_without_a_sequence_number_loads_as_seq_0(tmp_path):
    """An index saved before the log existed (no wal_seq in ids.json) loads, and the log replays onto it."""
    d = tmp_path / "index"
    old = FaissIndex(DIM)
    old.upsert(["o"], vec(0), [{"title": "old"}])
    old.save(d)
    assert "wal_seq" not in json.loads((d / "ids.json").read_text())
    (d / "wal.jsonl").write_bytes(encode_record(1, "upsert", ["n"], [{"id": "n", "title": "new"}], vec(1)))
    s = open_store(d)
    assert sorted(s.index.ids()) == ["n", "o"]
    s.close()


def test_broken_snapshot_falls_back_to_the_previous_one_and_loses_nothing(tmp_path):
    """The last snapshot's files are damaged: prev/ plus the log (which keeps what prev/ needs) give back every
    write, with a warning; the next snapshot replaces the broken files."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    s.snapshot()
    put(s, "b", 2)
    s.snapshot()
    put(s, "c", 3)
    live = state_of(s.index)
    crash(s)
    (d / "items.jsonl").write_text("garbage\n")
    s2 = open_store(d)
    assert state_of(s2.index) == live
    assert "recovered from the previous one" in s2.warnings[0] and "items.jsonl" in s2.warnings[0]
    assert s2.snapshot()
    s2.close()
    s3 = open_store(d)
    assert state_of(s3.index) == live and s3.warnings == []
    s3.close()


def test_broken_snapshot_without_fallback_starts_keeps_the_files_and_the_log(tmp_path):
    """No usable snapshot at all: a clear warning (what is broken, what to do), the logged writes served, new
    writes logged, the broken files never saved over."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    s.snapshot()  # the first snapshot: no prev/ to fall back to
    put(s, "b", 2)
    crash(s)
    d.joinpath("ids.json").write_text("garbage")
    s2 = open_store(d)
    [w] = s2.warnings
    assert "broken" in w and "ids.json" in w and "restore them and restart" in w and "itemtower index" in w
    assert list(s2.index.ids()) == ["b"]
    put(s2, "c", 3)
    s2.close()
    assert d.joinpath("ids.json").read_text() == "garbage"
    assert logged(d) == [(1, "mark", []), (2, "upsert", ["b"]), (3, "upsert", ["c"])]


def test_restored_snapshot_gets_the_writes_made_while_it_was_broken(tmp_path):
    """The operator's path: ids.json broken, the service keeps logging (numbered above the broken snapshot's
    seq, thanks to the log's mark); the file restored, a restart replays those writes onto it."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    put(s, "b", 2)
    s.close()  # snapshot at seq 2, log cut to its mark
    good = d.joinpath("ids.json").read_bytes()
    d.joinpath("ids.json").write_text("garbage")
    s2 = open_store(d)
    assert len(s2.index) == 0 and "broken" in s2.warnings[0]
    put(s2, "c", 3)
    s2.close()
    assert logged(d)[-1][:2] == (3, "upsert")
    d.joinpath("ids.json").write_bytes(good)
    s3 = open_store(d)
    assert sorted(s3.index.ids()) == ["a", "b", "c"] and s3.warnings == []
    s3.close()


def test_torn_last_log_line_is_a_warning_not_an_error(tmp_path):
    """Half a record at the end (a crash in mid-write): named in warnings, ignored, every earlier write kept."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    crash(s)
    with open(d / "wal.jsonl", "ab") as f:
        f.write(encode_record(2, "upsert", ["b"], [{"id": "b"}], vec(2))[:30])
    s2 = open_store(d)
    assert list(s2.index.ids()) == ["a"]
    assert len(s2.warnings) == 1 and "incomplete" in s2.warnings[0] and "ignored" in s2.warnings[0]
    put(s2, "c", 3)  # appends after the cut, on a clean line
    crash(s2)
    s3 = open_store(d)
    assert sorted(s3.index.ids()) == ["a", "c"] and s3.warnings == []
    s3.close()


def test_load_current_is_the_snapshot_plus_the_log_read_only(tmp_path):
    """What `itemtower explain` reads: the served state, even while a service holds the lock, writing nothing."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    s.snapshot()
    put(s, "b", 2)
    s.delete("a")
    before = sorted(p.name for p in d.iterdir())
    assert state_of(load_current(d)) == state_of(s.index)
    assert sorted(p.name for p in d.iterdir()) == before
    s.close()


def test_fresh_snapshot_empties_the_log_and_outnumbers_it(tmp_path):
    """`itemtower index`: the new index replaces every logged write; its wal_seq is past them, so even a log left
    behind would not be replayed onto it."""
    d = tmp_path / "index"
    s = open_store(d)
    put(s, "a", 1)
    put(s, "b", 2)
    crash(s)
    fresh = FaissIndex(DIM)
    fresh.upsert(["z"], vec(9), [{"title": "z"}])
    write_fresh_snapshot(d, fresh)
    assert wal_seq(d) == 2 and logged(d) == [(2, "mark", [])]
    s2 = open_store(d)
    assert list(s2.index.ids()) == ["z"]
    with pytest.raises(DirectoryLocked, match="`itemtower index` cannot write it"):
        write_fresh_snapshot(d, fresh)
    s2.close()


# ---------------------------------------------------------------------------------------------------- the service


@pytest.fixture
def disk_model(tmp_path, monkeypatch):
    """A model directory whose model is a FakeEmbedder (no torch model), so the app uses the durable store."""
    import itemtower.artifacts as artifacts

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    embedder = FakeEmbedder()
    monkeypatch.setattr(artifacts.Embedder, "load", classmethod(lambda cls, d: embedder))
    return model_dir, embedder


def item(id: str, title: str = "black fleece jacket", **kw) -> dict:
    return {"id": id, "title": title, "std": {"color": "Black"}, **kw}


def test_batch_put_is_one_model_call_and_one_log_record(disk_model):
    """PUT /items with three items: one embed call, one log record holding the three, 201-like counts."""
    model_dir, embedder = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        c.put("/items/a", json=item("a"))
        embedder.calls.clear()
        r = c.put("/items", json={"items": [item("a", "red coat"), item("b"), item("c")]})
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 2 and r.json()["replaced"] == 1
        assert [e["created"] for e in r.json()["items"]] == [False, True, True]
        assert len(embedder.calls) == 1 and len(embedder.calls[0]) == 3
        records = read_log(model_dir / "index" / "wal.jsonl").records
        assert [r.ids for r in records] == [["a"], ["a", "b", "c"]]
        assert c.get("/items/a").json()["title"] == "red coat"


def test_batch_put_is_all_or_nothing(disk_model):
    """One malformed item (item 2's std.color) rejects the batch with its position and field; nothing is stored,
    nothing logged, nothing embedded."""
    model_dir, embedder = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        embedder.calls.clear()
        r = c.put("/items", json={"items": [item("a"), item("b"), item("c", std={"color": 5})]})
        assert r.status_code == 422
        [e] = r.json()["errors"]
        assert (e["item"], e["field"]) == (2, "std.color")
        r = c.put("/items", json={"items": [item("a"), item("b", title=" "), item("a")]})
        assert r.status_code == 422 and "nothing stored" in r.json()["detail"]
        assert {(e["item"], e["field"]) for e in r.json()["errors"]} == {(1, "title"), (2, "id")}
        assert c.get("/items/a").status_code == 404 and embedder.calls == []
        assert read_log(model_dir / "index" / "wal.jsonl").records == []


def test_batch_put_limits_and_api_key(disk_model):
    """More than max_batch items is a 422 saying what to do (the schema's maxItems, as /embed); an empty list a
    422; the API key guards it."""
    model_dir, _ = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir, max_batch=2, api_key="k"))) as c:
        body = {"items": [item("a"), item("b"), item("c")]}
        assert c.put("/items", json=body).status_code == 401
        r = c.put("/items", json=body, headers={"X-API-Key": "k"})
        assert r.status_code == 422 and "ITEMTOWER_MAX_BATCH" in r.json()["detail"]
        assert c.put("/items", json={"items": []}, headers={"X-API-Key": "k"}).status_code == 422
        assert c.put("/items", json={"items": body["items"][:2]}, headers={"X-API-Key": "k"}).status_code == 200


def test_acknowledged_put_is_on_disk_before_shutdown(disk_model):
    """The answer to PUT means the write is in the log already (no snapshot yet, the app still running)."""
    model_dir, _ = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        assert c.put("/items/a", json=item("a")).status_code == 201
        assert c.delete("/items/a").status_code == 204
        assert [(r.op, r.ids) for r in read_log(model_dir / "index" / "wal.jsonl").records] == [
            ("upsert", ["a"]), ("delete", ["a"])]


def test_second_service_on_one_index_refuses_to_start(disk_model):
    """While one app writes the index directory, a second one's start-up fails, naming the lock and how to
    scale reads instead."""
    model_dir, _ = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir))):
        with pytest.raises(DirectoryLocked, match="Only one process may write an index directory.*read replica"):
            with TestClient(create_app(Settings(model_dir=model_dir))):
                pass
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:  # free again after the first stopped
        assert c.get("/health").json()["model_loaded"]


def test_torn_log_line_shows_in_health_and_the_service_starts(disk_model):
    """A half-written last record: /health is degraded and names it; the earlier writes are served."""
    model_dir, _ = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        c.put("/items/a", json=item("a"))
    with open(model_dir / "index" / "wal.jsonl", "ab") as f:
        f.write(b'{"seq":99,"op":"upsert","ids":["b"')
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        h = c.get("/health").json()
        assert h["status"] == "degraded" and "incomplete" in h["message"] and "wal.jsonl" in h["message"]
        assert c.get("/items/a").status_code == 200 and c.get("/items/b").status_code == 404


def test_corrupted_snapshot_gives_a_clear_message_and_the_service_starts(disk_model):
    """Garbage in index.faiss with no previous snapshot: /health names the file and what to do; the logged writes
    are still served and new ones still logged."""
    model_dir, _ = disk_model
    with TestClient(create_app(Settings(model_dir=model_dir, snapshot_every_ops=1))) as c:
        c.put("/items/a", json=item("a"))
    (model_dir / "index" / "index.faiss").write_bytes(b"not faiss")
    with TestClient(create_app(Settings(model_dir=model_dir))) as c:
        h = c.get("/health").json()
        assert h["status"] == "degraded" and "index.faiss" in h["message"] and "itemtower index" in h["message"]
        assert c.put("/items/b", json=item("b")).status_code == 201
    assert (model_dir / "index" / "index.faiss").read_bytes() == b"not faiss"


# ---------------------------------------------------------------------------------------------------- the CLI


def test_itemtower_index_writes_a_snapshot_with_an_empty_log_and_waits_for_no_service(tiny_model, tmp_path):
    """`itemtower index` over a directory with logged writes: a snapshot of the catalog, the log reduced to its
    mark; while a service holds the directory it refuses with the lock's message, changing nothing."""
    import shutil

    from typer.testing import CliRunner

    from itemtower.catalog import write_catalog
    from itemtower.cli import app as cli

    trained, items = tiny_model
    model = tmp_path / "model"
    shutil.copytree(trained, model, ignore=shutil.ignore_patterns("index"))
    catalog = tmp_path / "cat.jsonl"
    write_catalog(catalog, items[:40])
    s = open_store(model / "index", dim=_dim(model))
    s.upsert(["old"], np.ones((1, s.index.dim), np.float32) / np.sqrt(s.index.dim), [{"title": "old"}])
    r = CliRunner().invoke(cli, ["index", "--model", str(model), "--catalog", str(catalog)])
    assert r.exit_code != 0 and "locked by another process" in r.output, r.output
    assert logged(model / "index") == [(1, "upsert", ["old"])] and not (model / "index" / "ids.json").exists()
    s.close()
    r = CliRunner().invoke(cli, ["index", "--model", str(model), "--catalog", str(catalog)])
    assert r.exit_code == 0, r.output
    assert logged(model / "index") == [(1, "mark", [])] and wal_seq(model / "index") == 1
    fresh = open_store(model / "index", dim=_dim(model))
    assert len(fresh.index) == 40 and "old" not in fresh.index
    fresh.close()


def _dim(model) -> int:
    return int(json.loads((model / "manifest.json").read_text())["dim"])
