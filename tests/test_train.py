import json

import numpy as np

from itemtower.model import TowerConfig
from itemtower.catalog.schema import KFASHION
from itemtower.training import TrainConfig, train
from itemtower.training.data import labels_of as _labels
from itemtower.training.loop import lr_factor as _lr_factor


def test_training_lowers_the_loss(tmp_path, tiny_items):
    """A few epochs on a tiny catalog make the training loss fall, and the export appears."""
    cfg = TrainConfig(out=str(tmp_path), epochs=4, batch_size=32, tower=TowerConfig(d_model=32, n_heads=2), min_frequency=1,
                      vocab_size=500, progress=False, patience=10, lr=3e-3)
    train(cfg, tiny_items, KFASHION, log=lambda s: None)
    hist = json.loads((tmp_path / "history.json").read_text())
    first, last = np.mean(hist["loss"][:4]), np.mean(hist["loss"][-4:])
    assert last < first * 0.9, (first, last)
    for f in ("tower_body.pth", "tower_norm.pth", "manifest.json", "resume.pt", "train_config.json"):
        assert (tmp_path / f).exists(), f


def test_training_is_deterministic(tmp_path, tiny_items):
    """The same seed gives the same losses."""
    runs = []
    for name in ("a", "b"):
        cfg = TrainConfig(out=str(tmp_path / name), epochs=1, batch_size=32, tower=TowerConfig(d_model=16, n_heads=2),
                          min_frequency=1, vocab_size=300, progress=False)
        train(cfg, tiny_items, KFASHION, log=lambda s: None)
        runs.append(json.loads((tmp_path / name / "history.json").read_text())["loss"])
    assert runs[0] == runs[1]


def test_resume_continues_from_checkpoint(tmp_path, tiny_items):
    """--resume picks up at the next epoch and keeps the history."""
    base = dict(out=str(tmp_path), batch_size=32, tower=TowerConfig(d_model=16, n_heads=2), min_frequency=1, vocab_size=300,
                progress=False, patience=10)
    train(TrainConfig(epochs=1, **base), tiny_items, KFASHION, log=lambda s: None)
    n1 = len(json.loads((tmp_path / "history.json").read_text())["loss"])
    logs = []
    train(TrainConfig(epochs=2, resume=True, **base), tiny_items, KFASHION, log=logs.append)
    n2 = len(json.loads((tmp_path / "history.json").read_text())["loss"])
    assert any("resumed" in s for s in logs) and n2 == 2 * n1


def test_groups_share_labels():
    """Items of one group share a label; items without a group get unique labels."""
    items = [{"group": "a"}, {"group": "a"}, {}, {"group": "b"}, {}]
    y = _labels(items, use_groups=True)
    assert y[0] == y[1] and len({y[0], y[2], y[3], y[4]}) == 4
    assert len(set(_labels(items, use_groups=False))) == 5


def test_lr_schedule_warms_up_and_decays():
    """The learning rate rises during warm-up, peaks, then decays to a floor."""
    assert _lr_factor(0.01, 0.1) < _lr_factor(0.1, 0.1) == 1.0
    assert _lr_factor(0.5, 0.1) > _lr_factor(1.0, 0.1) >= 0.05


def test_resume_with_a_changed_catalog_keeps_the_token_ids_meaning(tmp_path, tiny_items):
    """Resume encodes the catalog with the saved featurizer, not a refitted one: the restored embeddings keep the
    tokens they were learned for, and words new to the catalog are UNK (a refit would renumber every token)."""
    from itemtower.artifacts import Embedder
    from itemtower.features.featurize import Featurizer

    base = dict(out=str(tmp_path), batch_size=32, tower=TowerConfig(d_model=16, n_heads=2), min_frequency=1,
                vocab_size=300, progress=False, patience=10, distill_items=0)
    train(TrainConfig(epochs=1, **base), tiny_items, KFASHION, log=lambda s: None)
    vocab_before = (tmp_path / "tokenizer.json").read_text()
    values_before = json.loads((tmp_path / "featurizer.json").read_text())["values"]
    changed = [dict(it, title=f"zebrafoo{i} quokkabar {it['title']}") for i, it in enumerate(tiny_items[::-1])]
    logs = []
    train(TrainConfig(epochs=2, resume=True, **base), changed, KFASHION, log=logs.append)
    assert any("loaded from the model directory" in s for s in logs)
    assert (tmp_path / "tokenizer.json").read_text() == vocab_before
    assert json.loads((tmp_path / "featurizer.json").read_text())["values"] == values_before
    refit = Featurizer.fit(changed, KFASHION, vocab_size=300, min_frequency=1)
    assert refit.tokenizer.vocab_size != Embedder.load(tmp_path).featurizer.tokenizer.vocab_size  # a refit would
    #                                                                    have renumbered: the test can fail


def test_colour_blind_model_embeds_colour_variants_alike(tmp_path, tiny_items):
    """--colour-blind is saved with the model and read back by the Embedder: an item and its copy in another
    colour (colour words and STD colour changed) embed to the same vector; without it they differ."""
    import copy

    from itemtower.artifacts import Embedder

    base = dict(epochs=1, batch_size=32, tower=TowerConfig(d_model=16, n_heads=2), min_frequency=1, vocab_size=300,
                progress=False)
    item = next(it for it in tiny_items if it["std"]["color"] == ["Black"])
    other = copy.deepcopy(item)
    other["title"] = item["title"].replace("Black", "Red")
    other["std"]["color"], other["re"]["color"] = ["Red"], ["red"]
    vectors = {}
    for blind in (False, True):
        out = tmp_path / str(blind)
        train(TrainConfig(out=str(out), colour_blind=blind, **base), tiny_items, KFASHION, log=lambda s: None)
        assert json.loads((out / "featurizer.json").read_text())["colour_blind"] is blind
        emb = Embedder.load(out)
        assert emb.featurizer.colour_blind is blind
        vectors[blind] = emb.embed([item, other])
    assert np.allclose(vectors[True][0], vectors[True][1], atol=1e-5)
    assert not np.allclose(vectors[False][0], vectors[False][1], atol=1e-3)
