"""index/build.py, `itemtower index` streamed (issue 13): the same snapshot as the in-memory build (FaissIndex +
write_fresh_snapshot), flat and HNSW; bad records, duplicates, a locked directory and an interrupted build as the
command handled them before."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from itemtower.artifacts import Embedder
from itemtower.catalog import CatalogStream, read_catalog, write_catalog
from itemtower.cli import app as cli
from itemtower.index import FaissIndex
from itemtower.index.ann import AnnConfig
from itemtower.index.build import BUILD_PREFIX, EmptyIndexError, build_index
from itemtower.index.lock import DirectoryLocked, DirLock
from itemtower.index.store import load_current, write_fresh_snapshot
from itemtower.index.wal import read_log

runner = CliRunner()


@pytest.fixture(scope="module")
def emb(tiny_model):
    return Embedder.load(tiny_model[0])


def _in_memory(emb, items, d, ann, chunk=100):
    """What `itemtower index` did before: every item upserted at once, then write_fresh_snapshot."""
    idx = FaissIndex(emb.dim, ann)
    idx.upsert([it["id"] for it in items], emb.embed(items, chunk=chunk), items)
    write_fresh_snapshot(d, idx)


def _assert_same(a: FaissIndex, b: FaissIndex, queries) -> None:
    assert a.kind == b.kind and list(a.ids()) == list(b.ids()) and b.tombstones == 0
    for i in a.ids():
        assert a.get_json(i) == b.get_json(i)
        np.testing.assert_allclose(a.vector(i), b.vector(i), atol=1e-6)
    for q in queries:
        ra, rb = a.search(a.vector(q), k=10), b.search(b.vector(q), k=10)
        assert [i for i, _ in ra] == [i for i, _ in rb]
        np.testing.assert_allclose([s for _, s in ra], [s for _, s in rb], atol=1e-5)


@pytest.mark.parametrize("ann, kind", [(AnnConfig(), "flat"), (AnnConfig(threshold=100, ef_search=64), "hnsw")])
def test_streamed_snapshot_equals_the_in_memory_build(emb, tiny_items, tmp_path, ann, kind):
    _in_memory(emb, tiny_items, tmp_path / "old", ann)
    n = build_index(emb, iter(tiny_items), tmp_path / "new", ann=ann, chunk=100, block=70)  # 3 chunks, 5 blocks
    assert n == len(tiny_items)
    old, new = FaissIndex.load(tmp_path / "old", ann), load_current(tmp_path / "new")
    assert new.kind == kind
    _assert_same(old, new, ["it0", "it7", "it42", "it299"])
    for f in ("ids.json", "wal.jsonl"):  # the same format, the same log (one mark record at seq 0)
        assert (tmp_path / "new" / f).read_bytes() == (tmp_path / "old" / f).read_bytes()
    assert not list((tmp_path / "new").glob(BUILD_PREFIX + "*"))


def test_the_log_past_every_write_and_prev_removed(emb, tiny_items, tmp_path):
    """As write_fresh_snapshot: "wal_seq" past every logged write, prev/ gone, the log one mark record."""
    from itemtower.index.store import DurableIndex

    d = tmp_path / "index"
    s = DurableIndex.open(d, emb.dim, every_ops=1)
    for k in range(3):
        s.upsert([f"old{k}"], np.ones((1, emb.dim), np.float32) / np.sqrt(emb.dim), [{"title": "old"}])
        s.snapshot()
    s.close()
    assert (d / "prev").is_dir()
    build_index(emb, tiny_items[:20], d)
    assert [(r.seq, r.op) for r in read_log(d / "wal.jsonl").records] == [(3, "mark")]
    assert json.loads((d / "ids.json").read_text())["wal_seq"] == 3 and not (d / "prev").exists()
    again = DurableIndex.open(d, emb.dim)
    assert list(again.index.ids()) == [it["id"] for it in tiny_items[:20]]
    again.close()


def _model_copy(tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model[0], model, ignore=shutil.ignore_patterns("index"))
    return model


def test_bad_records_are_reported_and_skipped_as_before(tiny_model, tmp_path):
    model, items = _model_copy(tiny_model, tmp_path), tiny_model[1][:30]
    cat = tmp_path / "cat.jsonl"
    write_catalog(cat, items)
    with cat.open("a", encoding="utf-8") as f:
        f.write('{"id": "broken", "title": \n')  # malformed JSON
        f.write(json.dumps({"id": "no-title"}) + "\n")  # an error: skipped
        f.write(json.dumps({"id": "odd", "title": "odd one", "std": {"color": "Blak"}}) + "\n")  # a warning: kept
        f.write(json.dumps({**items[3], "title": "the same id again"}) + "\n")  # a duplicate id: skipped
    report = read_catalog(cat)
    res = runner.invoke(cli, ["index", "--model", str(model), "--catalog", str(cat)])
    assert res.exit_code == 0, res.output
    assert report.summary() in res.output and "duplicate id (first on line 4)" in report.summary()
    assert f"indexed {len(report.items)} items into {model / 'index'}" in res.output
    idx = load_current(model / "index")
    assert list(idx.ids()) == [it["id"] for it in report.items] and "odd" in idx and "no-title" not in idx
    assert idx.get(items[3]["id"])["title"] == items[3]["title"]  # the first of the two kept


def test_no_usable_item_fails_as_before_and_keeps_the_index(emb, tiny_model, tmp_path):
    model = _model_copy(tiny_model, tmp_path)
    build_index(emb, tiny_model[1][:10], model / "index")
    cat = tmp_path / "bad.jsonl"
    cat.write_text(json.dumps({"id": "x"}) + "\n" + json.dumps({"title": "no id"}) + "\n")
    res = runner.invoke(cli, ["index", "--model", str(model), "--catalog", str(cat)])
    assert res.exit_code == 2 and f"error: {cat}: no usable items" in res.output
    assert read_catalog(cat).summary() in res.output
    assert len(load_current(model / "index")) == 10
    with pytest.raises(EmptyIndexError):
        build_index(emb, [], model / "index")


def test_a_duplicate_id_is_refused_as_upsert_refuses_it(emb, tiny_items, tmp_path):
    items = tiny_items[:10] + [tiny_items[2]]
    with pytest.raises(ValueError, match="duplicate ids") as old:
        FaissIndex(emb.dim).upsert([it["id"] for it in items], emb.embed(items), items)
    with pytest.raises(ValueError, match="duplicate ids") as new:
        build_index(emb, items, tmp_path / "index")
    assert str(new.value) == str(old.value)
    assert not (tmp_path / "index" / "ids.json").exists()


def test_a_locked_directory_gives_the_same_message(emb, tiny_model, tmp_path):
    model = _model_copy(tiny_model, tmp_path)
    cat = tmp_path / "cat.jsonl"
    write_catalog(cat, tiny_model[1][:10])
    lock = DirLock.acquire(model / "index")
    try:
        with pytest.raises(DirectoryLocked) as before:
            write_fresh_snapshot(model / "index", FaissIndex(emb.dim))
        res = runner.invoke(cli, ["index", "--model", str(model), "--catalog", str(cat)])
    finally:
        lock.release()
    assert res.exit_code == 2 and str(before.value) in " ".join(res.output.split())
    assert not (model / "index" / "ids.json").exists()


def _interrupted(items, after):
    for k, it in enumerate(items):
        if k == after:
            raise KeyboardInterrupt  # Ctrl+C mid-catalog (any exception does the same)
        yield it


def test_an_interrupted_build_leaves_the_previous_index(emb, tiny_items, tmp_path, monkeypatch):
    d = tmp_path / "index"
    build_index(emb, tiny_items[:50], d)
    before = {f: (d / f).read_bytes() for f in ("ids.json", "items.jsonl", "index.faiss", "wal.jsonl")}
    with pytest.raises(KeyboardInterrupt):
        build_index(emb, _interrupted(tiny_items, 150), d, chunk=64)

    def fail(*a, **k):
        raise MemoryError("while building FAISS")

    monkeypatch.setattr("itemtower.index.build.faiss_from_raw", fail)
    with pytest.raises(MemoryError):
        build_index(emb, tiny_items, d)
    assert {f: (d / f).read_bytes() for f in before} == before
    assert not list(d.glob(BUILD_PREFIX + "*")) and not list(d.glob("*.tmp"))
    assert list(load_current(d).ids()) == [it["id"] for it in tiny_items[:50]]
    monkeypatch.undo()
    (d / (BUILD_PREFIX + "killed")).mkdir()  # what kill -9 leaves; the next build removes it
    assert build_index(emb, CatalogStream(_write(tmp_path, tiny_items[:60])), d) == 60  # the lock was released
    assert not list(d.glob(BUILD_PREFIX + "*")) and len(load_current(d)) == 60


def _write(tmp_path, items):
    path = tmp_path / "c.jsonl"
    write_catalog(path, items)
    return path
