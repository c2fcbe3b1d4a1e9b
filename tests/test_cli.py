"""The whole path through the CLI on a small demo catalog: generate -> validate -> train -> embed -> evaluate ->
index -> serve (the real Embedder behind the HTTP app)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from itemtower.cli import app

runner = CliRunner()


def _run(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    cat, model = d / "demo.jsonl", d / "model"
    _run("generate", "--n", "400", "--seed", "3", "--out", str(cat))
    _run("train", "--catalog", str(cat), "--out", str(model), "--fast", "--epochs", "2", "--batch-size", "64",
         "--d-model", "32", "--seed", "0")
    return d, cat, model


def test_generate_validate_train(pipeline):
    """The demo catalog validates cleanly and training writes pth1, pth2 and a manifest that serves h."""
    d, cat, model = pipeline
    res = _run("validate", "--catalog", str(cat))
    assert "400" in res.output
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["serves"] == "h" and (model / "tower_body.pth").exists() and (model / "tower_norm.pth").exists()


def test_embed_writes_ids_in_catalog_order(pipeline):
    """embed writes ids in catalog order and L2-normalised float32 vectors."""
    d, cat, model = pipeline
    out = d / "emb.npz"
    _run("embed", "--model", str(model), "--catalog", str(cat), "--out", str(out))
    z = np.load(out)
    ids = [json.loads(line)["id"] for line in cat.read_text().splitlines()]
    assert list(z["ids"]) == ids
    assert z["embeddings"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z["embeddings"], axis=1), 1.0, atol=1e-5)


def test_evaluate_with_pairs_and_baselines(pipeline):
    """evaluate reports pair metrics, consistency and baselines, and writes report.json / report.md."""
    d, cat, model = pipeline
    items = [json.loads(line) for line in cat.read_text().splitlines()]
    groups: dict[str, list[str]] = {}
    for it in items:
        if it.get("group"):
            groups.setdefault(it["group"], []).append(it["id"])
    pairs = d / "pairs.tsv"
    pairs.write_text("".join(f"{g[0]}\t{g[1]}\n" for g in groups.values() if len(g) > 1))
    res = _run("evaluate", "--model", str(model), "--catalog", str(cat), "--pairs", str(pairs), "--out",
               str(d / "eval"))
    rep = json.loads((d / "eval" / "report.json").read_text())
    assert {"itemtower (h)", "one-hot std", "tf-idf title", "tf-idf all text", "random"} <= set(rep["methods"])
    tower = rep["methods"]["itemtower (h)"]
    assert tower["recall@10"] > rep["methods"]["random"]["recall@10"]
    assert 0 <= tower["consistency@10:category"] <= 1
    assert "recall@10" in res.output


def test_index_then_serve_similar_items(pipeline, monkeypatch):
    """index builds MODEL/index; the service loads it and answers similar, search, and PUT for a new item."""
    d, cat, model = pipeline
    _run("index", "--model", str(model), "--catalog", str(cat))
    assert (model / "index").is_dir()
    monkeypatch.setenv("ITEMTOWER_MODEL", str(model))
    from itemtower.serve.app import create_app

    with TestClient(create_app()) as client:
        assert client.get("/health").json()["status"] == "ok"
        first = json.loads(cat.read_text().splitlines()[0])
        sim = client.get(f"/items/{first['id']}/similar", params={"k": 5})
        assert sim.status_code == 200 and len(sim.json()["items"]) == 5
        assert all(r["id"] != first["id"] for r in sim.json()["items"])
        new = {"title": first["title"], "std": first["std"], "re": first.get("re", {})}
        assert client.put("/items/new-1", json=new).status_code == 201
        top = client.get(f"/items/{first['id']}/similar", params={"k": 1}).json()["items"][0]
        assert top["id"] == "new-1" and top["score"] > 0.99  # a copy is its nearest neighbour at once
        bad = client.put("/items/new-2", json={"title": "x", "std": {"color": 5}})
        assert bad.status_code == 422 and "color" in bad.text
        ex = client.get(f"/items/{first['id']}/explain", params={"top": 3}).json()
        fields = {f["field"]: f for f in ex["fields"]}
        assert "category" in fields and len(fields["category"]["tokens"]) == 3
        for f in ex["fields"]:  # attention over [nothing] + tokens sums to one
            assert abs(f["null_weight"] + sum(t["weight"] for t in f["tokens"])) <= 1.0 + 1e-3
        assert client.get("/items/nope/explain").status_code == 404


def test_explain_cli_names_tokens(pipeline):
    """explain prints, per STD field, tokens of the item's own title or RE phrases."""
    d, cat, model = pipeline
    first = json.loads(cat.read_text().splitlines()[0])
    res = _run("explain", "--model", str(model), "--id", first["id"], "--catalog", str(cat), "--top", "2")
    assert first["id"] in res.output and "category" in res.output
    assert "(title" in res.output or "(re." in res.output


def test_missing_model_is_a_clear_cli_error(tmp_path):
    """A missing model directory is an error message with exit code 2, not a traceback."""
    cat = tmp_path / "c.jsonl"
    cat.write_text('{"id": "1", "title": "t"}\n')
    res = runner.invoke(app, ["embed", "--model", str(tmp_path / "nope"), "--catalog", str(cat), "--out",
                              str(tmp_path / "e.npz")])
    assert res.exit_code == 2 and "itemtower train" in res.output


def test_reinforce_adds_marked_values_without_overwriting(pipeline):
    """reinforce writes a catalog whose added values are listed under re_inferred and whose given values stay."""
    d, cat, _ = pipeline
    out = d / "re.jsonl"
    res = _run("reinforce", "--catalog", str(cat), "--out", str(out), "--limit", "50", "--no-progress")
    assert "values added" in res.output
    before = [json.loads(line) for line in cat.read_text().splitlines()[:50]]
    after = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(after) == 50 and any(it.get("re_inferred") for it in after)
    for a, b in zip(before, after):
        for f, vals in (a.get("re") or {}).items():
            assert b["re"][f][: len(vals)] == vals  # given phrases kept, in order
        for f, vals in (a.get("std") or {}).items():
            assert b["std"][f] in (vals, [vals] if isinstance(vals, str) else vals)


def test_train_pool_text_and_bad_pool(pipeline, tmp_path):
    """--pool text trains the bag alone (h has d_model dims); an unknown pool is a one-line error, not a trace."""
    d, cat, _ = pipeline
    _run("train", "--catalog", str(cat), "--out", str(tmp_path / "bag"), "--fast", "--epochs", "1",
         "--batch-size", "64", "--d-model", "32", "--pool", "text")
    manifest = json.loads((tmp_path / "bag" / "manifest.json").read_text())
    assert manifest["model"]["pool"] == "text" and manifest["model"]["value_bag"] is True
    res = runner.invoke(app, ["train", "--catalog", str(cat), "--out", str(tmp_path / "x"), "--pool", "bag"])
    assert res.exit_code != 0 and "--pool must be" in res.output


def test_train_with_distillation_and_a_bad_count(pipeline, tmp_path):
    """--distill-items N distils e5 (a stand-in encoder in tests, see conftest) into h; a negative N is a one-line
    error naming the option's rule."""
    d, cat, _ = pipeline
    _run("train", "--catalog", str(cat), "--out", str(tmp_path / "kd"), "--fast", "--epochs", "1",
         "--batch-size", "64", "--d-model", "32", "--distill-items", "100", "--no-idf-init")
    cfg = json.loads((tmp_path / "kd" / "train_config.json").read_text())
    assert cfg["idf_init"] is False
    hist = json.loads((tmp_path / "kd" / "history.json").read_text())
    assert cfg["distill_items"] == 100 and len(hist["distill_loss"]) == len(hist["loss"]) > 0
    res = runner.invoke(app, ["train", "--catalog", str(cat), "--out", str(tmp_path / "x"), "--distill-items", "-1"])
    assert res.exit_code != 0 and "distill_items must be >= 0" in res.output and "Traceback" not in res.output
