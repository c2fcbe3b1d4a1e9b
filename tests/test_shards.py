"""Sharded batch embedding (artifacts/shards.py, `itemtower embed --shard i/n` / `--merge`, issue 14): shards
merged give the unsharded run's file; finished shards are skipped on a rerun, killed or partial ones redone;
shards of another model or catalog are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from itemtower.artifacts import Embedder
from itemtower.artifacts.shards import (ShardError, embed_shard, merge_shards, parse_shard, shard_dir,
                                        shard_from_env)
from itemtower.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = FIXTURES / "model_v0"
runner = CliRunner()


@pytest.fixture(scope="module")
def emb():
    return Embedder.load(MODEL)


@pytest.fixture()
def catalog(tmp_path):
    """The fixture catalog with a broken line and a duplicate: every shard must skip the same records."""
    lines = (FIXTURES / "model_v0_catalog.jsonl").read_text(encoding="utf-8").splitlines()
    lines.insert(7, '{"id": "broken"')
    lines.insert(30, lines[2])  # a duplicate id: dropped, as read_catalog drops it
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(*args: str, env: dict | None = None):
    res = runner.invoke(app, list(args), env=env)
    return res


@pytest.mark.parametrize("n", [2, 7])
def test_shards_merged_equal_one_run(tmp_path, emb, catalog, n):
    from itemtower.artifacts.streaming import embed_catalog

    one = tmp_path / "one.npz"
    embed_catalog(emb, catalog, one, batch_size=16, chunk=40)
    out = tmp_path / "sharded.npz"
    rows = [embed_shard(emb, MODEL, catalog, out, i, n, batch_size=16, chunk=40)[0].rows for i in range(n)]
    assert sum(rows) == 120 and max(rows) - min(rows) <= 1
    assert merge_shards(out, MODEL, catalog, block=5) == (120, emb.dim)
    a, b = np.load(one), np.load(out)
    assert list(a["ids"]) == list(b["ids"]) and len(set(a["ids"])) == 120
    np.testing.assert_allclose(b["embeddings"], a["embeddings"], atol=1e-6, rtol=0)


def test_rerun_skips_finished_and_redoes_killed_shards(tmp_path, emb, catalog):
    out = tmp_path / "e.npz"
    d = shard_dir(out)
    m0, skipped, _ = embed_shard(emb, MODEL, catalog, out, 0, 2)
    assert not skipped and m0.done and (d / "shard-00000-of-00002.json").exists()
    stamp = (d / "shard-00000-of-00002.f32").stat().st_mtime_ns
    assert embed_shard(emb, MODEL, catalog, out, 0, 2)[1] is True  # finished: skipped, not rewritten
    assert (d / "shard-00000-of-00002.f32").stat().st_mtime_ns == stamp
    with pytest.raises(ShardError, match="1/2 not finished"):
        merge_shards(out, MODEL, catalog)
    embed_shard(emb, MODEL, catalog, out, 1, 2)
    good = merge_shards(out) and np.load(out)["embeddings"].copy()
    # killed midway: rows cut short under a manifest that says done (or no manifest at all): redone
    raw = d / "shard-00001-of-00002.f32"
    raw.write_bytes(raw.read_bytes()[:1000])
    with pytest.raises(ShardError, match="1/2 not finished"):
        merge_shards(out)
    assert embed_shard(emb, MODEL, catalog, out, 1, 2)[1] is False
    (d / "shard-00000-of-00002.json").unlink()
    assert embed_shard(emb, MODEL, catalog, out, 0, 2)[1] is False
    merge_shards(out)
    np.testing.assert_array_equal(np.load(out)["embeddings"], good)


def test_shards_of_another_run_are_refused(tmp_path, emb, catalog):
    out = tmp_path / "e.npz"
    embed_shard(emb, MODEL, catalog, out, 0, 2)
    with pytest.raises(ShardError, match="of another run .*of differ"):
        embed_shard(emb, MODEL, catalog, out, 0, 3)
    other_model = tmp_path / "model"
    shutil.copytree(MODEL, other_model)
    (other_model / "tower_norm.pth").write_bytes((other_model / "tower_norm.pth").read_bytes() + b"\0")
    with pytest.raises(ShardError, match="model differ"):
        embed_shard(emb, other_model, catalog, out, 1, 2)
    with pytest.raises(ShardError, match="another model"):
        merge_shards(out, other_model)
    catalog.write_text(catalog.read_text() + "\n")
    with pytest.raises(ShardError, match="catalog differ"):
        embed_shard(emb, MODEL, catalog, out, 1, 2)
    with pytest.raises(ShardError, match="no shards"):
        merge_shards(tmp_path / "nothing.npz")


def test_shard_spec_and_torchrun_env():
    assert parse_shard("1/4") == (1, 4) and parse_shard("0/1") == (0, 1)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ShardError, match="--shard"):
            parse_shard(bad)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    assert shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None and shard_from_env({}) is None


def test_cli_shards_under_torchrun_env_then_merge(tmp_path, catalog):
    out = tmp_path / "e.npz"
    base = ["embed", "--model", str(MODEL), "--catalog", str(catalog), "--out", str(out)]
    for rank in ("0", "1"):
        res = _cli(*base, env={"RANK": rank, "WORLD_SIZE": "2"})
        assert res.exit_code == 0, res.output
        assert f"wrote shard {rank}/2" in res.output and "2 errors" in res.output  # broken + duplicate
    res = _cli(*base, "--shard", "1/2")
    assert res.exit_code == 0 and "already done" in res.output
    res = _cli(*base, "--merge")
    assert res.exit_code == 0, res.output
    one = tmp_path / "one.npz"
    assert _cli("embed", "--model", str(MODEL), "--catalog", str(catalog), "--out", str(one)).exit_code == 0
    a, b = np.load(one), np.load(out)
    assert list(a["ids"]) == list(b["ids"])
    np.testing.assert_allclose(b["embeddings"], a["embeddings"], atol=1e-6, rtol=0)
    res = _cli(*base, "--shard", "2/2")
    assert res.exit_code != 0 and "--shard 2/2" in res.output
    res = _cli(*base, "--merge", "--shard", "0/2")
    assert res.exit_code != 0 and "without --shard" in res.output
    manifest = json.loads((shard_dir(out) / "shard-00000-of-00002.json").read_text())
    assert manifest["done"] and manifest["rows"] == 60 and manifest["of"] == 2
