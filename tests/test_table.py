"""`convert table`: a shop's CSV/TSV/JSONL/Parquet -> items through a TOML map; suggested maps; bad rows by line."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itemtower.catalog.adapters import table
from itemtower.catalog.adapters.table import bucket_label, load_map, parse_map
from itemtower.catalog.adapters.table_suggest import suggest_map
from itemtower.catalog import read_catalog
from itemtower.cli import app

HEADER = ["style_id", "name", "colour", "tags", "weight_g", "description", "photo", "family", "price"]
ROWS = [
    ["A1", "Slim Oxford Shirt", "Navy Blue", "cotton|slim", "180", "A slim oxford shirt in cotton", "img/A1.jpg",
     "F1", "1595"],
    ["A2", "Slim Oxford Shirt", "White", "cotton", "175.5", "The same shirt, in white", "img/A2.jpg", "F1", "1595"],
    ["A3", "Wide Denim Pants", "NA", "denim| wide |", "650", "", "", "", "2995"],
]
MAP = """
id = "style_id"
title = ["name", "colour"]
image = "photo"
group = "family"
[std]
colour = { column = "colour", rename = { "Navy Blue" = "Navy" } }
tags = { column = "tags", sep = "|" }
weight = { column = "weight_g", buckets = [200, 500] }
[re]
description = "description"
[extra]
price = "price"
"""


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def map_file(tmp_path) -> Path:
    (tmp_path / "map.toml").write_text(MAP, encoding="utf-8")
    return tmp_path / "map.toml"


EXPECTED_A1 = {"id": "A1", "title": "Slim Oxford Shirt Navy Blue",
               "std": {"colour": ["Navy"], "tags": ["cotton", "slim"], "weight": ["<200"]},
               "re": {"description": ["A slim oxford shirt in cotton"]}, "group": "F1", "image": "img/A1.jpg",
               "price": "1595"}


def test_csv_with_map_renames_splits_buckets_and_keeps_extras(tmp_path, map_file):
    res = table.convert(write_csv(tmp_path / "t.csv", HEADER, ROWS), load_map(map_file))
    assert res.problems == []
    assert res.items[0] == EXPECTED_A1
    a2, a3 = res.items[1], res.items[2]
    assert a2["std"] == {"colour": ["White"], "tags": ["cotton"], "weight": ["<200"]}
    # "NA" is missing, empty list parts are skipped, 650 falls in the top bucket, empty cells leave keys out
    assert a3 == {"id": "A3", "title": "Wide Denim Pants", "std": {"tags": ["denim", "wide"], "weight": [">=500"]},
                  "price": "2995"}
    assert res.report().summary().startswith(f"{tmp_path / 't.csv'}: 4 lines, 3 items kept, 0 records skipped")


def test_tsv_jsonl_and_parquet_give_the_same_items(tmp_path, map_file):
    tmap = load_map(map_file)
    want = table.convert(write_csv(tmp_path / "t.csv", HEADER, ROWS), tmap).items
    tsv = table.convert(write_csv(tmp_path / "t.tsv", HEADER, ROWS, delimiter="\t"), tmap).items
    assert tsv == want
    # JSON Lines: numbers as numbers, a real list, and a nested object reached by a dotted column
    rows = [dict(zip(HEADER, r)) for r in ROWS]
    for r in rows:
        r["price"] = int(r["price"])
        r["tags"] = [t for t in r["tags"].split("|")]
        r["attrs"] = {"fit": "Slim"}
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmap_json = parse_map({**_toml(MAP), "extra": {"price": "price", "fit": "attrs.fit"}})
    got = table.convert(tmp_path / "t.jsonl", tmap_json).items
    assert [it["std"] for it in got] == [it["std"] for it in want]
    assert got[0]["price"] == 1595 and got[0]["fit"] == "Slim"  # extras as they are in the source
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    cols = {h: [r[i] for r in ROWS] for i, h in enumerate(HEADER)}
    cols["price"] = [int(x) for x in cols["price"]]
    cols["weight_g"] = [float(x) for x in cols["weight_g"]]
    pq.write_table(pa.table(cols), tmp_path / "t.parquet")
    got = table.convert(tmp_path / "t.parquet", tmap).items
    assert [it["std"] for it in got] == [it["std"] for it in want] and got[0]["price"] == 1595


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_bad_rows_are_named_by_line_and_column_and_the_rest_kept(tmp_path, map_file):
    rows = [
        ROWS[0],
        ["", "No Id Shirt", "Red", "", "100", "", "", "", "1"],  # line 3: no id
        ["A4", "Too", "few"],  # line 4: 3 cells
        ["A5", "Multi\nline title", "Red", "", "heavy", "", "", "", "1"],  # lines 5-6: weight not a number
        ["A1", "Again", "Red", "", "1", "", "", "", "1"],  # line 7: duplicate id
        ["A6", "", "", "", "1", "", "", "", "1"],  # line 8: no title (name and colour both empty)
        ROWS[1],  # line 9: fine
    ]
    res = table.convert(write_csv(tmp_path / "bad.csv", HEADER, rows), load_map(map_file))
    assert [it["id"] for it in res.items] == ["A1", "A5", "A2"]
    found = [(p.line, p.field, p.severity) for p in res.problems]
    assert found == [(3, "style_id", "error"), (4, "record", "error"), (6, "weight_g", "warning"),
                     (7, "style_id", "error"), (8, "name+colour", "error")]
    assert "3 columns, the header has 9" in res.problems[1].message
    assert "duplicate id (first on line 2)" in res.problems[3].message
    assert "weight" not in res.items[1]["std"]  # the bad cell is left out, the row kept
    report = res.report()
    assert (report.n_skipped, report.n_errors, report.n_warnings) == (4, 4, 1)
    # bad UTF-8 in one cell: that line is named, the others kept
    raw = (tmp_path / "bad.csv").read_bytes().replace(b"Too", b"T\xff\xfeo", 1)
    raw = raw.replace(b"A4,T\xff\xfeo,few", b"A4,T\xff\xfeo,Red,,1,,,,1")
    (tmp_path / "enc.csv").write_bytes(raw)
    res = table.convert(tmp_path / "enc.csv", load_map(map_file))
    assert (4, "name") in [(p.line, p.field) for p in res.problems if p.message.startswith("not UTF-8; row skipped")]
    assert [it["id"] for it in res.items] == ["A1", "A5", "A2"]
    # a broken quote is named on its line; the reader goes on with the next row
    text = (tmp_path / "bad.csv").read_text(encoding="utf-8").replace("A4,Too,few", 'A4,"Too"x,few')
    (tmp_path / "quote.csv").write_text(text, encoding="utf-8")
    res = table.convert(tmp_path / "quote.csv", load_map(map_file))
    assert (4, "record") in [(p.line, p.field) for p in res.problems if "unreadable row" in p.message]
    assert [it["id"] for it in res.items] == ["A1", "A5", "A2"]


def test_map_errors_name_the_key_or_column(tmp_path, map_file):
    with pytest.raises(ValueError, match="unknown key.*colour_map"):
        parse_map({"id": "a", "title": "b", "colour_map": {}})
    with pytest.raises(ValueError, match="'id' must name"):
        parse_map({"title": "b"})
    with pytest.raises(ValueError, match=r"\[extra\] cannot be named std"):
        parse_map({"id": "a", "title": "b", "extra": {"std": "c"}})
    with pytest.raises(ValueError, match="increasing"):
        parse_map({"id": "a", "title": "b", "std": {"w": {"column": "w", "buckets": [5, 1]}}})
    with pytest.raises(ValueError, match=r"\[std\] c: unknown key.*seperator"):
        parse_map({"id": "a", "title": "b", "std": {"c": {"column": "c", "seperator": "|"}}})
    (tmp_path / "broken.toml").write_text("id = \n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_map(tmp_path / "broken.toml")
    src = write_csv(tmp_path / "t.csv", [h for h in HEADER if h != "tags"], [r[:3] + r[4:] for r in ROWS])
    with pytest.raises(ValueError, match=r"'tags' \(std.tags\)"):
        table.convert(src, load_map(map_file))
    with pytest.raises(ValueError, match="unknown table format '.xlsx'"):
        table.convert(tmp_path / "t.xlsx", load_map(map_file)) if (tmp_path / "t.xlsx").touch() is None else None


def test_bucket_labels():
    edges = (100.0, 250.5)
    assert [bucket_label(x, edges) for x in (5, 100, 200, 250.5, 1e6)] == \
        ["<100", "100-250.5", "100-250.5", ">=250.5", ">=250.5"]


def synthetic_table(path: Path, n: int = 300, seed: int = 0) -> Path:
    """One column of each kind suggest-map tells apart."""
    rng = random.Random(seed)
    kinds = ["shirt", "pants", "coat", "dress"]
    header = ["item_id", "sku", "product_name", "category", "colours", "description", "image_url", "weight",
              "price", "shop", "barcode"]
    rows = []
    for i in range(n):
        k = rng.choice(kinds)
        rows.append([
            f"{1000 + i}", f"SKU-{i:05d}-{rng.choice('SML')}", f"{rng.choice(['Slim', 'Wide', 'Basic'])} {k} {i}",
            k, "|".join(rng.sample(["red", "blue", "black", "white"], rng.randint(1, 2))),
            f"A {k} made of {rng.choice(['cotton', 'wool', 'linen'])}, with two pockets and a regular fit, "
            f"machine washable, number {i}",
            f"https://cdn.example.com/img/{i}.jpg", f"{rng.uniform(100, 900):.1f}",
            str(rng.choice([990, 1990, 2990, 3990])), "our-shop", str(4006381333931 + i),
        ])
    return write_csv(path, header, rows)


def test_suggest_map_picks_a_role_per_column_and_the_map_converts(tmp_path):
    src = synthetic_table(tmp_path / "shop.csv")
    text, sugg, problems = suggest_map(src, tmp_path / "map.toml")
    role = {s.column: (s.role, s.field) for s in sugg}
    assert role["item_id"] == ("id", "id")
    assert role["product_name"] == ("title", "title")
    assert role["image_url"] == ("image", "image")
    assert role["sku"][0] == "dropped" and role["barcode"][0] == "dropped" and role["shop"][0] == "dropped"
    assert role["category"] == ("std", "category")
    assert role["description"] == ("re", "description")
    by_col = {s.column: s for s in sugg}
    assert by_col["colours"].role == "std" and by_col["colours"].sep == "|"
    assert by_col["weight"].role == "std" and by_col["weight"].buckets and by_col["weight"].also_extra
    assert by_col["price"].role == "std" and by_col["price"].buckets is None and by_col["price"].also_extra
    assert "near-unique codes" in by_col["sku"].reason and "one value" in by_col["shop"].reason
    assert problems == [] and (tmp_path / "map.toml").read_text() == text
    assert '# sku = "sku"' in text  # left-out columns stay in the file, commented, for the user to bring back
    tmap = load_map(tmp_path / "map.toml")
    res = table.convert(src, tmap)
    assert len(res.items) == 300 and res.problems == []
    it = res.items[0]
    assert set(it) == {"id", "title", "image", "std", "re", "weight", "price"}
    assert set(it["std"]) == {"category", "colours", "weight", "price"}
    assert it["std"]["weight"][0][0] in "<>0123456789"  # a bucket label, not the raw number
    assert len({v for x in res.items for v in x["std"]["weight"]}) == 5  # quantile edges: 5 buckets, all used


def test_cli_suggest_convert_validate(tmp_path):
    src = synthetic_table(tmp_path / "shop.csv", n=120)
    runner = CliRunner()
    r = runner.invoke(app, ["convert", "table", "--src", str(src)])
    assert r.exit_code == 2 and "--map MAP.toml" in r.output
    r = runner.invoke(app, ["convert", "table", "--src", str(src), "--suggest-map", str(tmp_path / "m.toml")])
    assert r.exit_code == 0, r.output
    assert f"wrote a suggested map to {tmp_path / 'm.toml'}" in r.output
    out = tmp_path / "cat.jsonl"
    r = runner.invoke(app, ["convert", "table", "--src", str(src), "--map", str(tmp_path / "m.toml"),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "121 lines, 120 items kept, 0 records skipped, 0 errors, 0 warnings" in r.output
    assert len(read_catalog(out).items) == 120
    # image paths relative to the table are rewritten relative to the catalog
    (tmp_path / "img").mkdir()
    src2 = write_csv(tmp_path / "img" / "t.csv", HEADER, ROWS[:1])
    (tmp_path / "m2.toml").write_text(MAP, encoding="utf-8")
    out2 = tmp_path / "sub" / "cat2.jsonl"
    r = runner.invoke(app, ["convert", "table", "--src", str(src2), "--map", str(tmp_path / "m2.toml"),
                            "--out", str(out2)])
    assert r.exit_code == 0, r.output
    assert json.loads(out2.read_text())["image"] == "../img/img/A1.jpg"
    r = runner.invoke(app, ["validate", "--catalog", str(out)])
    assert r.exit_code == 0, r.output
    assert "fields: 5 kept, 0 left out" in r.output and "std.colours (4)" in r.output
    r = runner.invoke(app, ["convert", "table", "--src", str(tmp_path / "nope.csv"), "--map",
                            str(tmp_path / "m.toml"), "--out", str(out)])
    assert r.exit_code == 2 and "table not found" in r.output


def test_validate_shows_what_train_would_leave_out(tmp_path):
    items = [{"id": f"i{i}", "title": f"shirt {i % 7}", "std": {"sku": [f"S{i:04d}"], "kind": [f"k{i % 3}"]}}
             for i in range(80)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    r = CliRunner().invoke(app, ["validate", "--catalog", str(tmp_path / "c.jsonl")])
    assert r.exit_code == 0, r.output
    assert "fields: 1 kept, 1 left out" in r.output
    assert "std.sku: dropped (near-unique: 80 distinct of 80)" in r.output


def test_train_prints_the_decisions_and_writes_them_to_the_manifest(tmp_path):
    items = [{"id": f"i{i}", "title": f"{['wide', 'slim', 'crop'][i % 3]} shirt {i % 7}",
              "std": {"sku": [f"S{i:04d}"], "kind": [f"k{i % 3}"]}} for i in range(60)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    model = tmp_path / "model"
    r = CliRunner().invoke(app, ["train", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(model), "--fast",
                                 "--epochs", "1", "--distill-items", "0", "--d-model", "32", "--batch-size", "16"])
    assert r.exit_code == 0, r.output
    assert "std.sku: dropped (near-unique: 60 distinct of 60)" in r.output
    manifest = json.loads((model / "manifest.json").read_text())
    assert list(manifest["schema"]["std_fields"]) == ["kind"]
    assert [d["field"] for d in manifest["schema"]["field_decisions"] if d["action"] == "dropped"] == ["std.sku"]
    from itemtower.artifacts import Embedder

    assert [d.field for d in Embedder.load(model).schema.decisions] == ["std.sku", "std.kind"]


def test_suggest_map_on_json_lines_reaches_into_nested_objects(tmp_path):
    rng = random.Random(1)
    rows = [{"sku": f"P{i:04d}", "name": f"{rng.choice(['slim', 'wide'])} pants {i}",
             "attrs": {"fit": rng.choice(["slim", "regular", "loose"]), "rise": rng.choice(["low", "mid"])},
             "tags": rng.sample(["denim", "summer", "basic"], 2)} for i in range(100)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    text, sugg, _ = suggest_map(tmp_path / "t.jsonl", tmp_path / "m.toml")
    role = {s.column: (s.role, s.field) for s in sugg}
    assert role == {"sku": ("id", "id"), "name": ("title", "title"), "attrs.fit": ("std", "fit"),
                    "attrs.rise": ("std", "rise"), "tags": ("std", "tags")}
    res = table.convert(tmp_path / "t.jsonl", load_map(tmp_path / "m.toml"))
    assert res.problems == [] and res.items[0]["std"]["fit"] == [rows[0]["attrs"]["fit"]]
    assert res.items[0]["std"]["tags"] == rows[0]["tags"]  # a real list stays a list, no separator needed
