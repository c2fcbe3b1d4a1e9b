import random

import torch

from itemtower.features import Featurizer, SimCSERecSysDataset, ViewConfig, collate_items, collate_views, make_view
from itemtower.features.featurize import VALUE_MASK, VALUE_UNK
from itemtower.catalog.schema import KFASHION


def _feat(items):
    return Featurizer.fit(items, KFASHION, vocab_size=300, min_frequency=1)


def test_featurizer_maps_unknown_values_to_unk(tiny_items):
    """An STD value outside the vocabulary becomes UNK and is counted; it never raises."""
    feat = _feat(tiny_items)
    enc = feat.encode([{"id": "x", "title": "와이드 팬츠", "std": {"color": ["Chartreuse"]}}])[0]
    ci = feat.std_fields.index("color")
    assert enc.std[ci] == [VALUE_UNK] and enc.n_unk >= 1


def test_featurizer_counts_items_per_value_and_token(tiny_items, tmp_path):
    """value_df / token_df count items (not occurrences) per id, for the IDF initialisation; saved and loaded."""
    feat, enc = Featurizer.fit_encode(tiny_items, KFASHION, vocab_size=300, min_frequency=1)
    assert feat.n_docs == len(tiny_items) and len(feat.value_df) == feat.n_values
    for vid in (enc[0].std[0] or [VALUE_UNK]):
        assert feat.value_df[vid] == sum(vid in {v for row in e.std for v in row} for e in enc)
    assert max(feat.token_df) <= len(tiny_items)
    feat.save(tmp_path)
    assert Featurizer.load(tmp_path).value_df == feat.value_df


def test_fit_encode_matches_encode(tiny_items):
    """fit_encode pre-tokenizes each text once; what it returns equals encoding the items afterwards."""
    feat, enc = Featurizer.fit_encode(tiny_items, KFASHION, vocab_size=300, min_frequency=1)
    again = feat.encode(tiny_items)
    assert [(x.std, x.title, x.re, x.n_unk) for x in enc] == [(x.std, x.title, x.re, x.n_unk) for x in again]


def test_featurizer_save_load_encodes_identically(tmp_path, tiny_items):
    """A saved featurizer encodes items exactly as the fitted one did."""
    feat = _feat(tiny_items)
    feat.save(tmp_path)
    again = Featurizer.load(tmp_path)
    a, b = feat.encode(tiny_items[:5]), again.encode(tiny_items[:5])
    assert [(x.std, x.title, x.re) for x in a] == [(x.std, x.title, x.re) for x in b]


def test_views_are_random_but_seeded(tiny_items):
    """The two views of an item differ, and the same seed gives the same views."""
    enc = _feat(tiny_items).encode(tiny_items[:50])
    cfg = ViewConfig(std_mask_p=0.5, re_drop_p=0.5, token_drop_p=0.3)
    ds = SimCSERecSysDataset(enc, list(range(50)), cfg, seed=1)
    diffs = sum((v1.std, v1.title, v1.re) != (v2.std, v2.title, v2.re) for v1, v2, _ in (ds[i] for i in range(50)))
    assert diffs > 25
    ds2 = SimCSERecSysDataset(enc, list(range(50)), cfg, seed=1)
    assert (ds[3][0].title, ds[3][1].std) == (ds2[3][0].title, ds2[3][1].std)


def test_identity_view_changes_nothing(tiny_items):
    """With every augmentation off, a view equals the item (only model dropout is left)."""
    enc = _feat(tiny_items).encode(tiny_items[:10])
    for e in enc:
        v = make_view(e, ViewConfig.none(), random.Random(0))
        assert (v.std, v.title, v.re) == (e.std, e.title, e.re)


def test_std_masking_uses_mask_value(tiny_items):
    """A masked STD field holds the [MASK] value id."""
    enc = _feat(tiny_items).encode(tiny_items[:1])[0]
    v = make_view(enc, ViewConfig(std_mask_p=1.0, re_drop_p=0, token_drop_p=0), random.Random(0))
    present = [i for i, vals in enumerate(enc.std) if vals]
    assert all(v.std[i] == [VALUE_MASK] for i in present)


def test_collate_shapes_and_types(tiny_items):
    """collate yields t_std (B, F, M) and t_re (B, 2, T) with title type 1 and RE types >= 2."""
    feat = _feat(tiny_items)
    enc = feat.encode(tiny_items[:4])
    t_std, t_re = collate_items(enc)
    assert t_std.shape[:2] == (4, len(KFASHION.std_fields)) and t_re.shape[:2] == (4, 2)
    types = t_re[0, 1]
    n_title = len(enc[0].title)
    assert (types[:n_title] == 1).all() and (types[n_title:][types[n_title:] > 0] >= 2).all()
    (s1, r1), (s2, r2), y = collate_views([(enc[0], enc[1], 7), (enc[2], enc[3], 9)])
    assert y.tolist() == [7, 9] and s1.shape[0] == 2 and r2.dtype == torch.long


def test_mutual_information_groups_correlated_fields():
    """Fields that determine each other get high mutual information and end up in one masking group."""
    from itemtower.features.featurize import EncodedItem
    from itemtower.features.masking import correlated_groups, field_mutual_information

    rng = random.Random(0)
    enc = []
    for _ in range(400):
        a = rng.randrange(5)
        enc.append(EncodedItem(std=[[10 + a], [20 + a], [30 + rng.randrange(5)]], title=[], re=[]))
    mi = field_mutual_information(enc)
    assert mi[0, 1] > 0.95 and mi[0, 2] < 0.1
    assert correlated_groups(mi, k=1)[0] == [0, 1]


def test_correlated_masking_masks_the_whole_group():
    """With corr_mask_p=1 the seed field and its group are all masked, and nothing else."""
    from itemtower.features.featurize import EncodedItem

    item = EncodedItem(std=[[5], [6], [7]], title=[3], re=[])
    cfg = ViewConfig(std_mask_p=0, re_drop_p=0, token_drop_p=0, corr_mask_p=1.0)
    v = make_view(item, cfg, random.Random(1), groups=[[0, 1], [1, 0], [2, 0]])
    masked = {f for f, vals in enumerate(v.std) if vals == [VALUE_MASK]}
    assert masked in ({0, 1}, {0, 2})


def _swap_setup():
    from itemtower.features.featurize import EncodedItem
    from itemtower.features.synonyms import build_swap_table
    from itemtower.features import TextTokenizer

    tok = TextTokenizer.fit(["와이드 팬츠 블랙", "wide pants black", "slim shirt white"], vocab_size=500, min_frequency=1)
    table = build_swap_table(tok)
    ids = tok.encode_batch(["와이드 팬츠 블랙"])[0]
    return tok, table, EncodedItem(std=[[5], [6]], title=ids, re=[]), ids


def test_synonym_swap_changes_language():
    """With synonym_p=1, 와이드 becomes wide (and back), so the two views can differ in language only."""
    tok, table, item, ids = _swap_setup()
    v = make_view(item, ViewConfig(std_mask_p=0, re_drop_p=0, token_drop_p=0, synonym_p=1.0), random.Random(0),
                  swaps=table)
    words = [tok.id_to_token(t) for t in v.title]
    assert "wide" in words and "와이드" not in words


def test_colour_drop_removes_colour_words_and_value():
    """colour_drop_p=1 removes every colour token and masks the STD colour field."""
    tok, table, item, ids = _swap_setup()
    v = make_view(item, ViewConfig(std_mask_p=0, re_drop_p=0, token_drop_p=0, colour_drop_p=1.0),
                  random.Random(0), swaps=table, colour_field=1)
    words = [tok.id_to_token(t) for t in v.title]
    assert "블랙" not in words and "black" not in words and "와이드" in words
    assert v.std[1] == [VALUE_MASK] and v.std[0] == [5]


def test_colour_blind_featurizer_leaves_colour_out_and_survives_save(tmp_path):
    """colour_blind: colour words leave the title and RE phrases, the STD colour field is empty, everything else
    is encoded as without the option; two colour variants encode identically; the option is saved."""
    from itemtower.catalog.schema import Schema

    schema = Schema("t", {"color": None, "category": None}, ("detail",))
    items = [{"id": "a", "title": "wide black pants", "std": {"color": ["Black"], "category": ["pants"]},
              "re": {"detail": ["black cotton wide leg", "black"]}},
             {"id": "b", "title": "wide white pants", "std": {"color": ["White"], "category": ["pants"]},
              "re": {"detail": ["white cotton wide leg", "white"]}},
             {"id": "c", "title": "black", "std": {"category": ["shirt"]}}]
    plain = Featurizer.fit(items, schema, vocab_size=300, min_frequency=1)
    blind, enc = Featurizer.fit_encode(items, schema, vocab_size=300, min_frequency=1, colour_blind=True)
    words = lambda ids: [blind.tokenizer.id_to_token(t) for t in ids]
    a, b, c = enc
    assert words(a.title) == ["wide", "pants"] and a.std[0] == [] and a.std[1] == plain.encode(items)[0].std[1]
    assert [words(p) for p in a.re[0]] == [["cotton", "wide", "leg"]]  # the phrase "black" alone is gone
    assert (a.std, a.title, a.re) == (b.std, b.title, b.re)  # colour variants: the same input
    assert words(c.title) == ["black"]  # a title of colour words alone keeps its first token
    assert "black" in words(plain.encode(items)[0].title)
    blind.save(tmp_path)
    again = Featurizer.load(tmp_path)
    assert again.colour_blind and again.encode(items) == enc
