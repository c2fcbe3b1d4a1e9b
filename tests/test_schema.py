"""infer_schema: fields that carry no similarity are dropped, with a reason that reaches schema.json."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import make_items

from itemtower.catalog.schema import FieldDecision, Schema, format_decisions, infer_schema, parse_number


def _catalog(n: int = 200, seed: int = 0) -> list[dict]:
    """Items with one field of every kind infer_schema tells apart."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        items.append({
            "id": f"A{i:05d}", "title": f"shirt {i}",
            "std": {
                "color": [rng.choice(["red", "blue", "black"])],
                "sku": [f"SKU-{i:05d}-{rng.choice('SML')}"],  # near-unique
                "id_copy": [f"A{i:05d}"],  # the id again
                "price": [str(rng.choice([895, 1295, 1595, 2995]))],  # a price ladder: kept
                "weight_g": [f"{rng.uniform(100, 900):.1f}"],  # free numbers: dropped
                "tags": rng.sample(["cotton", "summer", "slim", "basic", "new"], 2),  # multi-valued categorical
            },
            "re": {
                "description": [f"a {rng.choice(['soft', 'warm'])} shirt number {i} for every day"],  # unique text
                "ean": [str(4000000000000 + i)],  # numbers as text
                "code": [f"X{i}Y{rng.randint(0, 9)}"],  # id-like codes
            },
        })
    return items


def test_infer_schema_drops_ids_skus_and_free_numbers_and_says_why():
    sch = infer_schema(_catalog())
    assert list(sch.std_fields) == ["color", "price", "tags"]
    assert sch.re_fields == ("description",)
    by_field = {d.field: d for d in sch.decisions}
    assert by_field["std.sku"].action == "dropped" and "near-unique: 200 distinct of 200" in by_field["std.sku"].reason
    assert "copies the item id" in by_field["std.id_copy"].reason
    assert by_field["std.weight_g"].action == "dropped" and "free numeric" in by_field["std.weight_g"].reason
    assert by_field["std.price"].action == "kept" and "repeated numbers" in by_field["std.price"].reason
    assert by_field["re.ean"].action == "dropped" and "numbers as text" in by_field["re.ean"].reason
    assert by_field["re.code"].action == "dropped" and "id-like codes" in by_field["re.code"].reason
    assert by_field["re.description"].action == "kept"  # unique, but words: descriptions are meant to differ
    assert by_field["std.sku"].n_items == 200 and by_field["std.color"].n_distinct == 3
    lines = format_decisions(sch)
    assert lines[0].split(":")[1].strip().startswith("dropped")  # dropped first, for the eye
    assert "std.sku: dropped (near-unique: 200 distinct of 200)" in lines


def test_small_fields_are_kept_unjudged():
    sch = infer_schema(_catalog(n=30))
    assert "sku" in sch.std_fields
    assert "too few items" in next(d.reason for d in sch.decisions if d.field == "std.sku")


def test_fields_of_an_ordinary_catalog_are_all_kept_in_order():
    items = make_items(300)
    sch = infer_schema(items)
    assert list(sch.std_fields) == ["category", "color", "season"]
    assert sch.re_fields == ("color", "specification.metadata")
    assert all(d.action == "kept" for d in sch.decisions) and len(sch.decisions) == 5


def test_decisions_round_trip_and_old_schemas_still_load(tmp_path):
    sch = infer_schema(_catalog())
    sch.save(tmp_path / "schema.json")
    saved = json.loads((tmp_path / "schema.json").read_text())
    assert {"field": "std.sku", "action": "dropped"}.items() <= saved["field_decisions"][1].items()
    back = Schema.load(tmp_path / "schema.json")
    assert back == sch and back.decisions == sch.decisions
    # a schema.json written before field decisions existed
    old = {"name": "inferred", "std_fields": {"color": None}, "re_fields": ["description"]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = Schema.load(tmp_path / "old.json")
    assert loaded.decisions == () and format_decisions(loaded) == [] and loaded.to_dict() == old
    assert str(FieldDecision("std.x", "kept")) == "std.x: kept"


def test_parse_number():
    assert parse_number("1,299") == 1299 and parse_number("₹ 895") == 895 and parse_number("-3.5") == -3.5
    assert parse_number(" 12 ") == 12 and parse_number(7) == 7
    for bad in ("12 cm", "1,2", "SKU1", "", "nan", True, float("nan")):
        assert parse_number(bad) is None, bad


def test_the_demo_catalog_keeps_every_field():
    from itemtower.catalog.demo import generate

    items = generate(600, 0)
    sch = infer_schema(items)
    assert [d.field for d in sch.decisions if d.action == "dropped"] == []
    assert len(sch.std_fields) + len(sch.re_fields) == len(sch.decisions)


REAL_MYNTRA = Path(__file__).parents[2] / "shared" / "data" / "myntra"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_MYNTRA.is_dir(), reason="needs ../shared/data/myntra")
def test_myntra_keeps_its_fields_price_point_included():
    """The price point is a number as text, but a shared one (541 values over 21,395 styles): a category."""
    from itemtower.catalog.adapters import myntra

    sch = infer_schema(myntra.convert(REAL_MYNTRA).items)
    assert [d.field for d in sch.decisions if d.action == "dropped"] == []
    assert "price" in sch.std_fields and "description" in sch.re_fields
