"""The streaming catalog reader (catalog.CatalogStream) and `itemtower embed` over it (artifacts/streaming.py,
issue 13): the same items and problems as read_catalog, one record at a time, and the same vectors."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from itemtower.catalog import CatalogStream, read_catalog
from itemtower.catalog.schema import KFASHION

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = {"id": "a1", "title": "오버핏 반팔 티셔츠 BLACK", "std": {"category": "02top_02t-shirt", "color": "Black"}}


def _line(i, **over) -> str:
    return json.dumps({**GOOD, "id": f"x{i}", **over}, ensure_ascii=False)


def _messy(path: Path) -> Path:
    lines = [_line(1), '{"id": "x2", "title": "broken"', "", _line(4, std={"color": "Blak"}),
             json.dumps({"title": "no id"}), "[1, 2]", _line(7, title=""), _line(8), _line(1, title="again")]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "x9", "title": "\xff"}\n' + _line(10).encode())
    return path


def test_stream_yields_what_read_catalog_keeps_and_reports_the_same_problems(tmp_path):
    path = _messy(tmp_path / "c.jsonl")
    whole = read_catalog(path, KFASHION)
    stream = CatalogStream(path, KFASHION)
    it = iter(stream)
    first = next(it)
    assert first["id"] == "x1" and stream.n_items == 1 and stream.problems == []  # nothing read ahead
    rest = list(it)
    assert [first] + rest == whole.items and [i["id"] for i in whole.items] == ["x1", "x4", "x8", "x10"]
    assert stream.problems == whole.problems and stream.n_lines == whole.n_lines == 11
    assert stream.report().summary(stream.n_items) == whole.summary() and "4 items kept" in whole.summary()
    assert stream.report(rest).n_errors == whole.n_errors == 6  # duplicate x1 and the bad UTF-8 line included
    with pytest.raises(RuntimeError, match="read once"):
        list(stream)


def test_stream_errors_match_read_catalog(tmp_path):
    with pytest.raises(FileNotFoundError):
        CatalogStream(tmp_path / "nope.jsonl")
    with pytest.raises(IsADirectoryError):
        CatalogStream(tmp_path)
    csv = tmp_path / "c.csv"
    csv.write_text("id,title\n1,Black Tee\n")
    with pytest.raises(ValueError, match="no line is valid JSON"):
        list(CatalogStream(csv))


def test_stream_keeps_only_ids_not_items(tmp_path):
    """Memory read through the stream without keeping the items stays far below the items read whole (the ids
    of the duplicate check remain: tens of bytes per item, against a few KB per item dict)."""
    path = tmp_path / "big.jsonl"
    desc = "cotton " * 60
    path.write_text("".join(_line(i, description=desc) + "\n" for i in range(4000)), encoding="utf-8")

    def peak(fn) -> int:
        tracemalloc.start()
        fn()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    streamed = peak(lambda: sum(1 for _ in CatalogStream(path)))
    whole = peak(lambda: read_catalog(path))
    assert streamed < whole / 5, (streamed, whole)


def test_embed_catalog_writes_the_vectors_of_embed_and_refuses_an_empty_catalog(tmp_path):
    from itemtower.artifacts import Embedder
    from itemtower.artifacts.streaming import EmptyCatalogError, count_lines, embed_catalog

    catalog = FIXTURES / "model_v0_catalog.jsonl"
    expected = np.load(FIXTURES / "model_v0_expected.npz")["embeddings"]
    emb = Embedder.load(FIXTURES / "model_v0")
    seen = []
    n, dim, stream = embed_catalog(emb, catalog, tmp_path / "e.npz", batch_size=16, chunk=50, on_chunk=seen.append)
    assert (n, dim) == expected.shape and seen == [50, 100, 120] and stream.n_items == 120
    z = np.load(tmp_path / "e.npz")
    assert list(z["ids"]) == [it["id"] for it in read_catalog(catalog).items]
    np.testing.assert_allclose(z["embeddings"], expected, atol=1e-5, rtol=0)
    assert count_lines(catalog) == stream.n_lines
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "no id"}) + "\n" + json.dumps({"id": "y"}))
    assert count_lines(bad) == 2
    with pytest.raises(EmptyCatalogError, match="no items"):
        embed_catalog(emb, bad, tmp_path / "none.npz")
    assert not (tmp_path / "none.npz").exists()
