"""Catalog reading, validation, normalization and pairs IO (itemtower.catalog)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itemtower.catalog import (
    CatalogError,
    CatalogReport,
    Problem,
    check_item,
    normalize_item,
    read_catalog,
    read_pairs,
    write_catalog,
    write_pairs,
)
from itemtower.catalog.schema import KFASHION

GOOD = {"id": "a1", "title": "오버핏 반팔 티셔츠 BLACK", "std": {"category": "02top_02t-shirt", "color": "Black"},
        "re": {"color": ["black"]}}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good(i: int, **over) -> str:
    obj = {**GOOD, "id": f"x{i}", **over}
    return json.dumps(obj, ensure_ascii=False)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def warnings(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "warning"]


# --- Problem / CatalogError ------------------------------------------------------------------------------------

def test_problem_str_names_line_id_field_value_and_allowed_values():
    """str(Problem) reads 'line N (id 'x'): field 'f' = value: message' as in the design notes."""
    p = Problem(12, "x", "std.color", "Blak", "unknown value; allowed: Black, White, ...", "warning")
    assert str(p) == "line 12 (id 'x'): field 'std.color' = 'Blak': unknown value; allowed: Black, White, ..."
    assert p.to_dict()["line"] == 12 and p.to_dict()["severity"] == "warning"


def test_problem_str_truncates_long_values():
    """A huge bad value is shortened in the message, not dumped whole."""
    p = Problem(3, None, "record", "x" * 10_000, "malformed JSON")
    assert len(str(p)) < 200 and str(p).startswith("line 3: field 'record'")


def test_unknown_value_message_truncates_long_allowed_list():
    """The allowed values of a big field are listed only partly, with a count."""
    [p] = check_item({**GOOD, "std": {"top.neck_color_design": "collarless"}}, KFASHION)
    assert "allowed: shirts collar, bow collar" in p.message and "(23 values)" in p.message


def test_catalog_error_lists_first_twenty_problems():
    """CatalogError carries every problem and its message lists the first 20, then a count of the rest."""
    probs = [Problem(i, None, "id", None, "missing id") for i in range(1, 31)]
    e = CatalogError(probs)
    assert isinstance(e, ValueError) and len(e.problems) == 30
    assert "line 20:" in str(e) and "line 21:" not in str(e) and "10 more" in str(e)


# --- check_item ------------------------------------------------------------------------------------------------

def test_good_item_has_no_problems():
    """A valid KFASHION item passes with no problem at all."""
    assert check_item(GOOD, KFASHION) == []


@pytest.mark.parametrize(
    "obj, field, value",
    [
        (["not", "an", "object"], "record", ["not", "an", "object"]),
        ({"title": "t"}, "id", None),
        ({"id": "", "title": "t"}, "id", ""),
        ({"id": 1.5, "title": "t"}, "id", 1.5),
        ({"id": True, "title": "t"}, "id", True),
        ({"id": "a"}, "title", None),
        ({"id": "a", "title": "   "}, "title", "   "),
        ({"id": "a", "title": 42}, "title", 42),
        ({"id": "a", "title": "t", "std": ["Black"]}, "std", ["Black"]),
        ({"id": "a", "title": "t", "std": {"color": 3}}, "std.color", 3),
        ({"id": "a", "title": "t", "std": {"color": ["Black", 3]}}, "std.color", ["Black", 3]),
        ({"id": "a", "title": "t", "std": {"color": ""}}, "std.color", ""),
        ({"id": "a", "title": "t", "re": "black"}, "re", "black"),
        ({"id": "a", "title": "t", "re": {"color": {"x": 1}}}, "re.color", {"x": 1}),
        ({"id": "a", "title": "t", "re": {"color": ["black", ""]}}, "re.color", ["black", ""]),
        ({"id": "a", "title": "t", "group": ["g"]}, "group", ["g"]),
    ],
)
def test_each_structural_error_is_reported_with_field_and_value(obj, field, value):
    """Every kind of structural error gives an error Problem naming the field and the bad value."""
    errs = errors(check_item(obj, None))
    assert [(p.field, p.value) for p in errs] == [(field, value)]


def test_schema_warnings_unknown_field_value_and_re_field():
    """Unknown std field, value outside the allowed list and unknown re field are warnings, not errors."""
    obj = {"id": "a", "title": "t", "std": {"color": "Blak", "sparkle": "yes"}, "re": {"mood": ["happy"]}}
    probs = check_item(obj, KFASHION)
    assert errors(probs) == []
    got = sorted((p.field, repr(p.value)) for p in warnings(probs))
    assert got == [("re.mood", "['happy']"), ("std.color", "'Blak'"), ("std.sparkle", "'yes'")]
    blak = next(p for p in probs if p.value == "Blak")
    assert blak.id == "a" and "allowed: Black, White" in blak.message


def test_without_schema_only_structure_is_checked():
    """With schema=None unknown fields and values are not reported."""
    assert check_item({"id": "a", "title": "t", "std": {"sparkle": "Blak"}, "re": {"mood": "x"}}, None) == []


def test_multivalued_std_checks_every_value():
    """Each value of a multi-valued std field is checked against the allowed values."""
    probs = check_item({**GOOD, "std": {"fiber_composition": ["Cotton", "Cashmere"]}}, KFASHION)
    assert [(p.field, p.value) for p in probs] == [("std.fiber_composition", "Cashmere")]


def test_partial_allows_missing_id_and_title_but_not_bad_types():
    """partial=True (an update) accepts a missing id and title, still rejects wrong types."""
    assert check_item({"std": {"color": "Black"}}, KFASHION, partial=True) == []
    assert check_item({"id": "a", "title": ""}, KFASHION, partial=True) == []
    assert [p.field for p in check_item({"title": 5}, KFASHION, partial=True)] == ["title"]


def test_int_id_and_single_string_re_are_accepted():
    """An integer id and a single-string re value are valid input."""
    assert check_item({"id": 7, "title": "t", "re": {"color": "black"}}, KFASHION) == []


def test_null_or_empty_list_value_is_a_warning():
    """A null or [] std/re value means 'absent': a warning, and normalize drops it."""
    obj = {"id": "a", "title": "t", "std": {"color": None}, "re": {"color": []}}
    probs = check_item(obj, KFASHION)
    assert errors(probs) == [] and {p.field for p in warnings(probs)} == {"std.color", "re.color"}
    assert normalize_item(obj)["std"] == {} and normalize_item(obj)["re"] == {}


# --- normalize_item ---------------------------------------------------------------------------------------------

def test_normalize_item_converts_types_and_keeps_extras():
    """normalize_item: id/group to str, title stripped, std/re values lists of stripped strings, extras verbatim."""
    obj = {"id": 12, "title": "  Black Tee ", "std": {"color": " Black", "fiber_composition": ["Cotton", "Nylon"]},
           "re": {"color": "black"}, "group": 3, "price": 19000, "meta": {"k": [1]}}
    out = normalize_item(obj)
    assert out == {"id": "12", "title": "Black Tee",
                   "std": {"color": ["Black"], "fiber_composition": ["Cotton", "Nylon"]},
                   "re": {"color": ["black"]}, "group": "3", "price": 19000, "meta": {"k": [1]}}
    assert normalize_item(out) == out  # idempotent


# --- read_catalog -----------------------------------------------------------------------------------------------

def test_read_catalog_skips_bad_lines_and_keeps_the_rest(tmp_path):
    """Malformed JSON, wrong types and missing ids are reported with their line; every good line is still read."""
    path = write_lines(tmp_path / "c.jsonl", [
        good(1),
        '{"id": "x2", "title": "broken"',           # line 2: malformed JSON
        "",                                          # line 3: blank, skipped silently
        good(4, std={"color": "Blak"}),              # line 4: warning, kept
        json.dumps({"title": "no id"}),              # line 5: error
        "[1, 2]",                                    # line 6: not an object
        good(7, title=""),                           # line 7: empty title
        good(8),
    ])
    rep = read_catalog(path, KFASHION)
    assert isinstance(rep, CatalogReport)
    assert [it["id"] for it in rep.items] == ["x1", "x4", "x8"]
    assert rep.n_lines == 8 and rep.n_errors == 4 and rep.n_warnings == 1
    assert {p.line for p in errors(rep.problems)} == {2, 5, 6, 7}
    bad_json = next(p for p in rep.problems if p.line == 2)
    assert "malformed JSON" in bad_json.message and bad_json.field == "record"
    assert warnings(rep.problems)[0].line == 4 and warnings(rep.problems)[0].id == "x4"
    assert "3 items kept" in rep.summary() and "4 errors" in rep.summary()


def test_duplicate_id_is_an_error_on_the_later_line_naming_the_first(tmp_path):
    """A duplicate id drops the later record and says on which line the first one is."""
    path = write_lines(tmp_path / "c.jsonl", [good(1), good(2), good(1, title="again")])
    rep = read_catalog(path)
    assert [it["id"] for it in rep.items] == ["x1", "x2"]
    [p] = rep.problems
    assert (p.line, p.id, p.field, p.severity) == (3, "x1", "id", "error") and "first on line 1" in p.message


def test_strict_raises_catalog_error_with_all_problems(tmp_path):
    """strict=True refuses a catalog with errors and the exception carries every problem."""
    path = write_lines(tmp_path / "c.jsonl", [good(1), "nope", json.dumps({"id": "q"})])
    with pytest.raises(CatalogError) as ei:
        read_catalog(path, strict=True)
    assert {p.line for p in ei.value.problems} == {2, 3} and "line 2" in str(ei.value)


def test_strict_accepts_warnings(tmp_path):
    """strict=True does not raise for warnings only."""
    path = write_lines(tmp_path / "c.jsonl", [good(1, std={"color": "Blak"})])
    assert len(read_catalog(path, KFASHION, strict=True).items) == 1


def test_missing_file_and_non_jsonl_file_give_clear_errors(tmp_path):
    """A missing file raises FileNotFoundError; a CSV (no JSON line at all) raises ValueError saying JSON Lines."""
    with pytest.raises(FileNotFoundError, match="not found"):
        read_catalog(tmp_path / "nope.jsonl")
    csv = write_lines(tmp_path / "c.csv", ["id,title", "1,Black Tee"])
    with pytest.raises(ValueError, match="JSON Lines"):
        read_catalog(csv)


def test_bad_utf8_line_is_a_problem_not_a_crash(tmp_path):
    """A line that is not UTF-8 is reported and the other lines are read."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(good(1).encode() + b"\n" + b'{"id": "\xff\xfe"}\n' + good(3).encode() + b"\n")
    rep = read_catalog(path)
    assert len(rep.items) == 2 and rep.problems[0].line == 2 and "UTF-8" in rep.problems[0].message


def test_empty_and_blank_only_file_is_an_empty_catalog(tmp_path):
    """Blank lines are not records: a file of blank lines reads as zero items, zero problems."""
    rep = read_catalog(write_lines(tmp_path / "c.jsonl", ["", "  "]))
    assert rep.items == [] and rep.problems == []


def test_write_then_read_roundtrip_keeps_korean(tmp_path):
    """write_catalog writes readable UTF-8 (not \\u escapes) and read_catalog gives the normalized items back."""
    items = [normalize_item(GOOD), normalize_item({**GOOD, "id": "a2", "group": "g1", "brand": "노멀마인드"})]
    path = tmp_path / "sub" / "c.jsonl"
    assert write_catalog(path, items) == 2
    assert "티셔츠" in path.read_text(encoding="utf-8")
    assert read_catalog(path, KFASHION).items == items


def test_read_catalog_is_fast_enough_for_large_catalogs(tmp_path):
    """20k lines read in well under the time a per-line heavy check would take (a loose guard, not a benchmark)."""
    import time

    path = write_lines(tmp_path / "big.jsonl", [good(i) for i in range(20_000)])
    t0 = time.perf_counter()
    rep = read_catalog(path, KFASHION)
    assert len(rep.items) == 20_000
    assert time.perf_counter() - t0 < 10


# --- pairs -----------------------------------------------------------------------------------------------------

def test_pairs_roundtrip_with_comments_and_blank_lines(tmp_path):
    """read_pairs ignores '#' comments and blank lines and returns what write_pairs wrote."""
    path = tmp_path / "p.tsv"
    write_pairs(path, [("1", "2"), (3, "b")])
    path.write_text("# variant pairs\n\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_pairs(path) == [("1", "2"), ("3", "b")]


def test_bad_pairs_line_raises_naming_the_line(tmp_path):
    """A line without exactly two tab-separated ids raises ValueError naming its line number."""
    path = tmp_path / "p.tsv"
    path.write_text("a\tb\nc d\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_pairs(path)


def test_write_pairs_rejects_ids_with_tabs(tmp_path):
    """An id containing a tab cannot be written as TSV."""
    with pytest.raises(ValueError):
        write_pairs(tmp_path / "p.tsv", [("a\tb", "c")])
