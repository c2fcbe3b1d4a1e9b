"""Adapters for the Myntra and Musinsa catalogs (itemtower.catalog.adapters), on tiny fixtures in the real formats,
plus slow tests on the real data in ../shared/data when it is there."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from itemtower.catalog.adapters import ConvertResult, get_adapter, pairs_path_for
from itemtower.catalog.adapters import musinsa, myntra
from itemtower.catalog.adapters.musinsa import parse_count
from itemtower.catalog import check_item, read_catalog, read_pairs

REAL_DATA = Path(__file__).parents[2] / "shared" / "data"


def style(i: int, variants=(), **over) -> dict:
    """A Myntra style record shaped like the real files."""
    d = {"id": i, "productDisplayName": f"Puma Men Black Jacket {i}", "brandName": "Puma", "gender": "Men",
         "ageGroup": "Adults-Men", "masterCategory": "Apparel", "subCategory": "Topwear", "articleType": "Jackets",
         "baseColour": "Black", "colour1": "NA", "colour2": "", "season": "Fall", "year": "2011", "usage": "Casual",
         "fashionType": "Fashion", "variantName": "Ferrari Fleece", "price": 3999, "discountedPrice": 3999,
         "displayCategories": None,
         "articleAttributes": {"Pattern": "Solid", "Sleeve Length": "Long Sleeves", "Fabric": "NA", "Fit": "",
                               "Wash Care": "Machine Wash", "Fabric 3": "NA"},
         "colour_variant_styleids": list(variants)}
    d.update(over)
    return d


def write_jsonl(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def myntra_dir(tmp_path):
    d = tmp_path / "myntra"
    d.mkdir()
    # 1-2-3 is a variant chain (2 links to 1 and 3), 4 links to 99 which is outside the catalog, 5 alone
    write_jsonl(d / "myntra_apparel_styles_part1.jsonl", [
        style(1, [2]), style(2, [1, 3]), '{"id": 77, "productDisplayName": ',  # line 3 malformed
    ])
    write_jsonl(d / "myntra_apparel_styles_part2.jsonl", [
        style(3, [2], colour1="Red", colour2="White"), style(4, [99]), style(5), style(6, productDisplayName=""),
    ])
    write_jsonl(d / "myntra_apparel_descriptions_part1.jsonl", [
        {"id": 1, "description_text": "Black jacket made of blended fabric"}, {"id": 3, "description_text": ""},
        "not json",
    ])
    return d


def test_myntra_items_fields_and_na_skipped(myntra_dir):
    """Myntra styles become items: str id, title, snake_case std fields, 'NA'/empty skipped, extras kept."""
    res = myntra.convert(myntra_dir, product_fields=False)
    assert isinstance(res, ConvertResult)
    assert [it["id"] for it in res.items] == ["1", "2", "3", "4", "5"]
    one = res.items[0]
    assert one["title"] == "Puma Men Black Jacket 1"
    assert one["std"] == {"gender": ["Men"], "article_type": ["Jackets"], "sub_category": ["Topwear"],
                          "base_colour": ["Black"], "season": ["Fall"], "usage": ["Casual"], "brand": ["Puma"],
                          "pattern": ["Solid"], "sleeve_length": ["Long Sleeves"]}
    assert one["re"] == {"description": ["Black jacket made of blended fabric"]}
    assert (one["price"], one["year"], one["variantName"]) == (3999, "2011", "Ferrari Fleece")
    assert res.items[2]["re"] == {"color": ["red", "white"]}  # colour1/colour2; empty description dropped
    assert "re" not in res.items[1]
    assert all(check_item(it, None) == [] for it in res.items)


def test_myntra_product_fields_price_point_and_variant_name(myntra_dir, tmp_path):
    """By default the price point is a std value and variantName an re phrase; odd prices are left out."""
    res = myntra.convert(myntra_dir)
    one = res.items[0]
    assert one["std"]["price"] == ["3999"]
    assert one["re"]["variant_name"] == ["Ferrari Fleece"]
    assert one["price"] == 3999  # the extra stays as it was
    assert all(check_item(it, None) == [] for it in res.items)
    bad = [p for p in res.problems if p.field == "price"]
    assert bad == []  # the fixture's prices are fine
    assert [myntra._price_point(v) for v in (895, 895.0, "895", 12.5, "NA", None, -3, 0, True, float("nan"))] == \
        ["895", "895", "895", "12.5", None, None, None, None, None, None]


def test_myntra_pairs_are_unique_unordered_and_inside_the_catalog(myntra_dir):
    """Variant links become unique (min, max) pairs; links to ids outside the catalog are dropped."""
    res = myntra.convert(myntra_dir)
    assert res.pairs == [("1", "2"), ("2", "3")]


def test_myntra_groups_only_with_flag(myntra_dir):
    """with_groups=True sets group = connected component; items without variants and the default get none."""
    assert all("group" not in it for it in myntra.convert(myntra_dir).items)
    groups = {it["id"]: it.get("group") for it in myntra.convert(myntra_dir, with_groups=True).items}
    assert groups["1"] == groups["2"] == groups["3"] is not None
    assert groups["4"] is None and groups["5"] is None


def test_myntra_malformed_lines_are_problems_not_crashes(myntra_dir):
    """A malformed line, a style without title and a broken description line are reported; the rest converts."""
    res = myntra.convert(myntra_dir)
    by_line = {(p.line, p.field) for p in res.problems}
    assert (3, "record") in by_line  # styles part1 line 3
    assert any(p.id == "6" and p.field == "productDisplayName" for p in res.problems)
    assert any("descriptions_part1" in p.message and p.line == 3 for p in res.problems)
    assert res.n_errors == 3


def test_myntra_missing_dir_raises(tmp_path):
    """A directory without styles files is a clear FileNotFoundError."""
    with pytest.raises(FileNotFoundError, match="styles"):
        myntra.convert(tmp_path)


def test_convert_result_write_puts_pairs_beside_catalog(myntra_dir, tmp_path):
    """write(x/myntra.jsonl) writes the catalog and x/myntra.pairs.tsv, readable by catalog.read_*."""
    res = myntra.convert(myntra_dir)
    out = tmp_path / "out" / "myntra.jsonl"
    written = res.write(out)
    assert written == [out, tmp_path / "out" / "myntra.pairs.tsv"] and pairs_path_for(out) == written[1]
    assert read_catalog(out).items == res.items
    assert read_pairs(written[1]) == res.pairs
    assert get_adapter("myntra") is myntra.convert


# --- Musinsa ---------------------------------------------------------------------------------------------------

HEADER_A = ("crawling_status,product_id,product_href,product_price,product_original_price,product_discount_price,"
            "product_discount_rate,product_brand_name,product_name,num_likes,avg_rating,review_count,category_main,"
            "category_sub,gender,success_status")
HEADER_B = ("product_id,crawling_status,product_href,product_price,product_original_price,product_discount_price,"
            "product_discount_rate,product_brand_name,product_name,num_likes,avg_rating,review_count,category_main,"
            "category_sub,gender,success_status")
STATUS = '"{\'image_section\': \'success\', \'detail_section\': \'success\'}"'


@pytest.fixture
def musinsa_dir(tmp_path):
    d = tmp_path / "musinsa"
    d.mkdir()
    rows_a = [
        f"{STATUS},4026789,https://www.musinsa.com/products/4026789,23710,79000,55290,70,엑스톤즈,"
        "XP214 리버스 와이드 데님 팬츠 (LIGHT BLUE),517,5.0,17,BOTTOM,3002,M,success",
        f"{STATUS},4149670,https://www.musinsa.com/products/4149670,29890,49000,19110,39,토피,"
        "SL01 섬머 데님 와이드 팬츠 (FADE LIGHT BLUE),1.2만,4.8,1천+,BOTTOM,3002,M,success",
        f"{STATUS},111,https://www.musinsa.com/products/111,abc,1,1,1,브랜드,가격 이상 팬츠,lots,,,BOTTOM,3002,M,success",
    ]
    # BOM + header A (as most real files), then a file without BOM and with header B (columns reordered)
    (d / "summary_bottom_denim_pants.csv").write_text("\ufeff" + HEADER_A + "\n" + "\n".join(rows_a) + "\n",
                                                      encoding="utf-8")
    rows_b = [
        f"4749808,{STATUS},https://www.musinsa.com/products/4749808,63200,79000,15800,20,글랙,"
        "GHD032 럭비 레이어드 후드 (NAVY),4.2천,4.9,(9),TOP,001004,M,success",
        f"4026789,{STATUS},https://www.musinsa.com/products/4026789,1,1,1,1,엑스톤즈,duplicate,1,1,1,TOP,001004,M,success",
        f",{STATUS},https://www.musinsa.com/products/0,1,1,1,1,x,no id,1,1,1,TOP,001004,M,success",
    ]
    (d / "summary_top_hoodie.csv").write_text(HEADER_B + "\n" + "\n".join(rows_b) + "\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("text, value", [
    ("517", 517), ("4.2천", 4200), ("1.5만", 15000), ("12만", 120000), ("4천+", 4000), ("(20)", 20),
    ("(1천+)", 1000), ("21.0", 21), ("", None),
])
def test_parse_count_reads_korean_abbreviations(text, value):
    """Counts like '4.2천', '1.5만', '4천+', '(20)' and pandas floats '21.0' parse to ints; empty is None."""
    assert parse_count(text) == value


def test_parse_count_rejects_garbage():
    """A count that is not a number raises ValueError (the adapter turns it into a warning)."""
    with pytest.raises(ValueError):
        parse_count("lots")


def test_musinsa_items_columns_by_header_and_extras(musinsa_dir):
    """Rows become items whatever the column order; category_sub keeps leading zeros; extras are parsed."""
    res = musinsa.convert(musinsa_dir)
    by_id = {it["id"]: it for it in res.items}
    assert list(by_id) == ["4026789", "4149670", "111", "4749808"]
    a = by_id["4026789"]
    assert a["title"] == "XP214 리버스 와이드 데님 팬츠 (LIGHT BLUE)"
    assert a["std"] == {"category_main": ["BOTTOM"], "category_sub": ["3002"], "brand": ["엑스톤즈"]}
    assert (a["price"], a["num_likes"], a["avg_rating"], a["review_count"]) == (23710, 517, 5.0, 17)
    assert a["href"] == "https://www.musinsa.com/products/4026789"
    assert (by_id["4149670"]["num_likes"], by_id["4149670"]["review_count"]) == (12000, 1000)
    h = by_id["4749808"]
    assert h["std"]["category_sub"] == ["001004"] and (h["num_likes"], h["review_count"]) == (4200, 9)
    assert "gender" not in h["std"] and res.pairs == []


def test_musinsa_duplicates_and_bad_extras_are_warnings(musinsa_dir):
    """A duplicate product_id keeps the first row (warning); unparseable extras are warnings; no id is an error."""
    res = musinsa.convert(musinsa_dir)
    kinds = Counter((p.severity, p.field) for p in res.problems)
    assert kinds == {("warning", "product_id"): 1, ("warning", "product_price"): 1, ("warning", "num_likes"): 1,
                     ("error", "product_id"): 1}
    dup = next(p for p in res.problems if p.severity == "warning" and p.field == "product_id")
    assert dup.id == "4026789" and dup.line == 3 and "summary_bottom_denim_pants.csv:2" in dup.message
    bad = {it["id"]: it for it in res.items}["111"]
    assert "price" not in bad and "num_likes" not in bad


def test_musinsa_file_without_required_columns_is_reported(musinsa_dir):
    """A CSV lacking product_id/product_name is one error Problem and is skipped; other files still convert."""
    (musinsa_dir / "summary_zz_broken.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    res = musinsa.convert(musinsa_dir)
    assert len(res.items) == 4
    assert any(p.field == "header" and "summary_zz_broken.csv" in p.message for p in res.problems)


# --- real data (slow) ------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not (REAL_DATA / "myntra").is_dir(), reason="shared Myntra data not present")
def test_real_myntra_counts():
    """The real Myntra projection converts to 21,395 items and 9,275 variant pairs in 3,136 groups, no problems."""
    res = myntra.convert(REAL_DATA / "myntra", with_groups=True)
    assert len(res.items) == 21_395 and len(res.pairs) == 9_275 and res.problems == []
    assert len({it["group"] for it in res.items if "group" in it}) == 3_136
    # 21,350 description rows, two of them empty (ids 11393 and 12766)
    assert sum("description" in it.get("re", {}) for it in res.items) == 21_348


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_DATA / "musinsa").is_dir(), reason="shared Musinsa data not present")
def test_real_musinsa_counts():
    """The real Musinsa crawl converts to 89,820 unique items; the 10 repeated rows are warnings."""
    res = musinsa.convert(REAL_DATA / "musinsa")
    assert len(res.items) == 89_820 and res.n_errors == 0
    assert [p.field for p in res.problems] == ["product_id"] * 10


def test_myntra_bad_price_is_a_warning_and_the_style_is_kept(tmp_path):
    """A price that is not a positive number gives no price point, and says so (line, id, field, value)."""
    d = tmp_path / "m"
    d.mkdir()
    write_jsonl(d / "myntra_apparel_styles_part1.jsonl", [style(1), style(2, price="free")])
    res = myntra.convert(d)
    assert [it["id"] for it in res.items] == ["1", "2"] and "price" not in res.items[1]["std"]
    (p,) = [p for p in res.problems if p.field == "price"]
    assert (p.line, p.id, p.value, p.severity) == (2, "2", "free", "warning")
