"""Bad files found by fuzzing (issue 10): catalog lines JSON cannot write back, a catalog that is a directory or
empty, and model directories with a wrong, broken or missing file: each is one named problem or one clear error
(which file, what to do), never a traceback, and the rest of the catalog is kept."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from itemtower.artifacts import PTH2, Embedder, ModelLoadError, load_weights
from itemtower.catalog import check_item, read_catalog
from itemtower.cli import app as cli
from itemtower.catalog.jsonsafe import json_problems
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings

runner = CliRunner()


def _item(i: int) -> dict:
    return {"id": f"it{i}", "title": f"black wool coat {i}", "std": {"color": ["Black"]}}


def _write(path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bad_catalog(path) -> None:
    """Lines 1-3 good, 4 nested 5,000 deep, 5 good, 6 a lone surrogate in the title, 7 NaN, 8 good, 9 an integer
    of 5,000 digits (past Python's int-parsing limit)."""
    deep = '{"id": "deep", "title": "t", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    _write(path, [json.dumps(_item(1)), json.dumps(_item(2)), json.dumps(_item(3)), deep, json.dumps(_item(5)),
                  '{"id": "sur", "title": "bad \\ud800 title"}', '{"id": "nan", "title": "t", "price": NaN}',
                  json.dumps(_item(8)), '{"id": "big", "title": "t", "n": ' + "1" * 5000 + "}"])


def _cli(*args: str):
    res = runner.invoke(cli, list(args))
    # one clear `error:` line, never a traceback: typer.Exit is the only exception allowed out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    return res


# ------------------------------------------------------------------------------------------------- catalog


def test_unwritable_lines_are_named_problems_and_the_rest_is_kept(tmp_path):
    """A line nested 5,000 deep (json's RecursionError), a lone surrogate and a NaN: one error each, on its line;
    the five good items are kept (the file used to be rejected whole)."""
    cat = tmp_path / "c.jsonl"
    _bad_catalog(cat)
    report = read_catalog(cat)
    assert [it["id"] for it in report.items] == ["it1", "it2", "it3", "it5", "it8"]
    errors = {p.line: p for p in report.problems if p.is_error}
    assert set(errors) == {4, 6, 7, 9}
    assert "nested too deeply" in errors[4].message
    assert errors[6].field == "title" and "surrogate" in errors[6].message
    assert errors[7].field == "price" and "finite" in errors[7].message
    assert "cannot be parsed" in errors[9].message and "4300 digits" in errors[9].message
    json.dumps([p.to_dict() for p in report.problems], allow_nan=False).encode("utf-8")  # reportable as JSON


def test_check_item_refuses_what_json_cannot_hold():
    """check_item (shared by the service and the catalog reader): inf, a surrogate key, nesting past the limit."""
    deep: list = []
    for _ in range(40):
        deep = [deep]
    found = check_item({"id": "a", "title": "t", "w": float("inf"), "m": {"\udc00": 1}, "d": deep}, None)
    assert {p.field.split(".")[0] for p in found if p.is_error} == {"w", "m", "d"}
    assert json_problems({"id": "a", "title": "ok", "std": {"c": ["x"]}, "n": [1.5, None, True]}) == []


def test_validate_names_the_lines_and_fails(tmp_path):
    """`validate` on that catalog: exit 1, each bad line named; the surrogate is caught here, not by `index`."""
    cat = tmp_path / "c.jsonl"
    _bad_catalog(cat)
    res = _cli("validate", "--catalog", str(cat))
    assert res.exit_code == 1
    for line in ("line 4", "line 6", "line 7", "line 9"):
        assert line in res.output
    assert "5 items kept" in res.output


@pytest.mark.parametrize("command", ["validate", "train"])
def test_a_directory_as_catalog_is_one_clear_error(tmp_path, command):
    """`validate` and `train` with --catalog DIR: `error: ... is a directory`, exit 2, no traceback."""
    args = [command, "--catalog", str(tmp_path)] + (["--out", str(tmp_path / "m")] if command == "train" else [])
    res = _cli(*args)
    assert res.exit_code == 2 and "is a directory" in res.output


@pytest.mark.parametrize("content", [None, '{"std_fields": ', '{"std_fields": 3}', "dir"])
def test_a_bad_schema_file_is_one_clear_error(tmp_path, content):
    """--schema missing, not JSON, not a schema, or a directory: one `error:` naming it, exit 2, no traceback."""
    cat = tmp_path / "c.jsonl"
    _write(cat, [json.dumps(_item(1))])
    schema = tmp_path / "schema.json"
    if content == "dir":
        schema.mkdir()
    elif content is not None:
        schema.write_text(content, encoding="utf-8")
    res = _cli("validate", "--catalog", str(cat), "--schema", str(schema))
    assert res.exit_code == 2 and "--schema" in res.output and str(schema) in res.output


def test_an_empty_catalog_is_an_error(tmp_path):
    """An empty file is not a valid catalog: `validate` exits non-zero and says so."""
    cat = tmp_path / "empty.jsonl"
    cat.write_text("", encoding="utf-8")
    res = _cli("validate", "--catalog", str(cat))
    assert res.exit_code != 0 and "no usable items" in res.output and "empty" in res.output


def test_index_skips_bad_lines_and_leaves_no_tmp_files(tiny_model, tmp_path):
    """`index` on the bad catalog: the good items are indexed, the index loads, and no .tmp file is left."""
    from itemtower.index import FaissIndex

    model_dir, _ = tiny_model
    model = tmp_path / "m"
    shutil.copytree(model_dir, model)
    shutil.rmtree(model / "index", ignore_errors=True)
    cat = tmp_path / "c.jsonl"
    _bad_catalog(cat)
    res = _cli("index", "--model", str(model), "--catalog", str(cat))
    assert res.exit_code == 0, res.output
    assert sorted(FaissIndex.load(model / "index").ids()) == ["it1", "it2", "it3", "it5", "it8"]
    assert not list(model.rglob("*.tmp"))


# ------------------------------------------------------------------------------------------------- model dir


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    model_dir, _ = tiny_model
    d = tmp_path / "model"
    shutil.copytree(model_dir, d, ignore=shutil.ignore_patterns("index"))
    return d


def test_manifest_dim_that_disagrees_with_the_weights_is_refused(model_copy):
    """manifest.json's dim is what /info reports: one that the weights do not make is refused, saying so."""
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["dim"] = manifest["dim"] + 1
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"manifest.json says dim \d+, but the weights"):
        Embedder.load(model_copy)


def test_broken_tokenizer_is_a_clear_cli_error(model_copy, tmp_path):
    """A truncated tokenizer.json: `embed` prints one error naming the file and what to do, no traceback."""
    (model_copy / "tokenizer.json").write_text('{"version": "1.0", "model": {', encoding="utf-8")
    cat = tmp_path / "c.jsonl"
    _write(cat, [json.dumps(_item(1))])
    res = _cli("embed", "--model", str(model_copy), "--catalog", str(cat), "--out", str(tmp_path / "e.npz"))
    assert res.exit_code == 2 and "tokenizer.json" in res.output and "retrain" in res.output


def test_missing_featurizer_says_that_file_is_missing(model_copy):
    """No featurizer.json: the error (and /health) name that file, not "no trained model"."""
    (model_copy / "featurizer.json").unlink()
    with pytest.raises(ModelLoadError, match="featurizer.json is missing"):
        Embedder.load(model_copy)
    with TestClient(create_app(Settings(model_dir=model_copy))) as client:
        health = client.get("/health").json()
    assert health["status"] == "no_model" and "featurizer.json is missing" in health["message"]
    assert "no trained model" not in health["message"]


def test_pickled_model_file_refusal_says_what_and_what_to_do(model_copy):
    """A pth holding pickled Python objects: the message names the file, says "saved with pickle" and
    weights_only, and how to fix it; not torch's page-long text cut at 200 characters."""
    torch.save({"x": print}, model_copy / PTH2)  # a pickled global: code a load would call
    with pytest.raises(ModelLoadError) as err:
        Embedder.load(model_copy)
    text = str(err.value)
    assert PTH2 in text and "saved with pickle" in text and "weights_only" in text and "state_dict" in text
    assert "Weights only load failed" not in text


def test_truncated_weights_say_which_file(tmp_path):
    """load_weights on half a torch file: ModelLoadError naming it, one line of torch's reason."""
    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="w.pth .*truncated") as err:
        load_weights(path)
    assert "\n" not in str(err.value)


def test_broken_resume_checkpoint_is_a_clear_error(tmp_path):
    """`train --resume` over a resume.pt that is not a torch file: one error naming it, exit 2, no traceback."""
    cat, out = tmp_path / "c.jsonl", tmp_path / "m"
    _write(cat, [json.dumps({**_item(i), "std": {"color": ["Black", "Red"][i % 2]}}) for i in range(40)])
    out.mkdir()
    (out / "resume.pt").write_bytes(b"not a checkpoint")
    res = _cli("train", "--catalog", str(cat), "--out", str(out), "--resume", "--fast", "--epochs", "1",
               "--d-model", "32", "--batch-size", "16", "--distill-items", "0")
    assert res.exit_code == 2 and "resume.pt" in res.output and "training checkpoint" in res.output
