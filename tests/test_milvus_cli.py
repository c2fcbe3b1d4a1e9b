"""`itemtower index` and the service with ITEMTOWER_INDEX_BACKEND=milvus, over the tiny trained model (the real
Embedder): the default store is a milvus-lite file in MODEL/index, the FAISS files are not written, writes
survive a restart, and similar-by-id agrees with the FAISS backend built from the same catalog."""

from __future__ import annotations

import json
import shutil

from fastapi.testclient import TestClient
from milvus_support import free_port
from typer.testing import CliRunner

from itemtower.cli import app as cli
from itemtower.index.milvus_store import MilvusIndex
from itemtower.serve.app import create_app

runner = CliRunner()


def _model_copy(tiny_model, tmp_path):
    """The session's tiny model, copied (this test writes MODEL/index), and its catalog as a file."""
    src, items = tiny_model
    model = tmp_path / "model"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("index"))
    cat = tmp_path / "cat.jsonl"
    cat.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    return model, cat, items


def _similar(client, item_id):
    r = client.get(f"/items/{item_id}/similar", params={"k": 10})
    assert r.status_code == 200, r.text
    return [(it["id"], round(it["score"], 4)) for it in r.json()["items"]]


def test_index_and_serve_with_milvus_lite(tiny_model, tmp_path, monkeypatch):
    model, cat, items = _model_copy(tiny_model, tmp_path)
    monkeypatch.setenv("ITEMTOWER_MODEL", str(model))
    monkeypatch.delenv("ITEMTOWER_MILVUS_URI", raising=False)
    res = runner.invoke(cli, ["index", "--model", str(model), "--catalog", str(cat)])  # FAISS, the default
    assert res.exit_code == 0, res.output
    with TestClient(create_app()) as client:
        faiss_similar = {i: _similar(client, i) for i in ("it0", "it7", "it42")}

    monkeypatch.setenv("ITEMTOWER_INDEX_BACKEND", "milvus")
    (model / "index" / "wal.jsonl").unlink()  # from here on, nothing may write FAISS's log
    res = runner.invoke(cli, ["index", "--model", str(model), "--catalog", str(cat)])
    assert res.exit_code == 0, res.output
    lite = model / "index" / "milvus.db"
    assert f"indexed {len(items)} items into Milvus collection 'itemtower' at {lite}" in res.output

    with TestClient(create_app()) as client:
        info = client.get("/info").json()["index"]
        assert info["backend"] == "milvus" and info["uri"] == str(lite) and info["items"] == len(items)
        for item_id, want in faiss_similar.items():
            assert [i for i, _ in _similar(client, item_id)] == [i for i, _ in want]
        assert client.put("/items/new-1", json={"title": items[0]["title"], "std": items[0]["std"]}).status_code == 201
        assert client.get("/health").json()["n_items"] == len(items) + 1
    assert not (model / "index" / "wal.jsonl").exists()  # the write went to Milvus, not to a FAISS log

    again = MilvusIndex.connect(str(lite), json.loads((model / "manifest.json").read_text())["dim"])  # restarted
    try:
        assert again.get("new-1")["title"] == items[0]["title"] and len(again) == len(items) + 1
    finally:
        again.close()


def test_index_names_an_unreachable_milvus(tiny_model, tmp_path, monkeypatch):
    model, cat, _ = _model_copy(tiny_model, tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ITEMTOWER_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("ITEMTOWER_MILVUS_URI", uri)
    res = runner.invoke(cli, ["index", "--model", str(model), "--catalog", str(cat)])
    assert res.exit_code == 2 and f"cannot connect to Milvus at {uri}" in res.output
