"""The synthetic K-Fashion demo catalog (itemtower.catalog.demo)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from itemtower.catalog import check_item
from itemtower.catalog.demo import generate
from itemtower.catalog.schema import KFASHION

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def items():
    return generate(2000, seed=3)


def test_same_seed_same_catalog_different_seed_different_catalog():
    """generate is deterministic for a seed and changes with the seed."""
    assert generate(300, seed=1) == generate(300, seed=1)
    assert generate(300, seed=1) != generate(300, seed=2)


def test_exact_count_and_ids(items):
    """generate(n) gives exactly n items with unique ids like demo-000123."""
    assert len(items) == 2000 and len({it["id"] for it in items}) == 2000
    assert items[123]["id"] == "demo-000123"
    assert generate(0) == [] and len(generate(1)) == 1


def test_every_item_is_valid_kfashion(items):
    """Every demo item passes check_item against KFASHION with no problem (no errors and no warnings)."""
    bad = [(it["id"], str(p)) for it in items for p in check_item(it, KFASHION)]
    assert bad == []


def test_variant_groups_share_brand_and_attributes_but_not_colour(items):
    """Groups of 2-4 share brand and every std field but colour, and differ in title (their colour word)."""
    groups = defaultdict(list)
    for it in items:
        if "group" in it:
            groups[it["group"]].append(it)
    assert len(groups) > 100
    assert {len(g) for g in groups.values()} <= {2, 3, 4}
    for g in groups.values():
        assert len({it["brand"] for it in g}) == 1
        assert len({it["title"] for it in g}) == len(g)  # titles differ by their colour suffix
        rest = [{k: v for k, v in it["std"].items() if k != "color"} for it in g]
        assert all(r == rest[0] for r in rest)
    assert sum(1 for it in items if "group" not in it) > 100  # single products exist too


def test_titles_mix_korean_mixed_and_english(items):
    """Roughly 60% Korean, 25% mixed, 15% English titles; all three kinds are present."""
    kinds = Counter()
    for it in items:
        has_ko = bool(HANGUL.search(it["title"]))
        has_latin = bool(re.search(r"[A-Za-z]{2,}", it["title"]))
        kinds["en" if not has_ko else ("mixed" if has_latin else "ko")] += 1
    assert kinds["en"] > 150 and kinds["ko"] > 600 and kinds["mixed"] > 200


def test_category_decides_the_fields(items):
    """Tops/outers/one-pieces have top.* fields, pants pant.silhouette, skirts skirt.design, and nothing else."""
    for it in items:
        std, cat = it["std"], it["std"]["category"]
        has_top = "top.sleeve_length_type" in std
        assert has_top == (not cat.startswith("04bottom"))
        assert ("pant.silhouette" in std) == (cat == "04bottom_01pants")
        assert ("skirt.design" in std) == (cat == "04bottom_02skirt")


def test_season_drives_fibre_and_fleece(items):
    """Winter items are far more often wool and fleece than summer items."""
    def share(season, pred):
        sel = [it for it in items if it["std"]["season"] == season]
        return sum(pred(it) for it in sel) / len(sel)

    def wool(it):
        return "Wool" in (it["std"]["fiber_composition"] if isinstance(it["std"]["fiber_composition"], list)
                          else [it["std"]["fiber_composition"]])

    def fleece(it):
        return it["std"]["isfleece"] == "fleece_contain"

    assert share("winter", wool) > 3 * share("summer", wool)
    assert share("winter", fleece) > 0.3 and share("summer", fleece) == 0


def test_re_values_are_derived_and_sometimes_missing(items):
    """re phrases follow the attributes (re.color matches the colour family) and are missing for some items."""
    with_re = [it for it in items if "re" in it]
    assert 0.8 * len(items) < len(with_re) < len(items)
    multi_fibre = [it for it in items if isinstance(it["std"]["fiber_composition"], list)]
    assert multi_fibre, "some items have several fibres"
    assert any("%" in p for it in with_re for p in it["re"].get("fiber_composition", []))
    assert any(it["re"].get("specification.metadata") for it in with_re)
