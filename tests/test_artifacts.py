import json

import numpy as np
import pytest
import torch

from itemtower.artifacts import PTH1, PTH2, Embedder, ModelLoadError, ModelNotFoundError, load_tower


def test_round_trip_embeddings_match(tiny_model):
    """Reloading pth1 + pth2 gives the same embeddings as the tower that was exported."""
    model_dir, items = tiny_model
    tower, feat, _ = load_tower(model_dir)
    from itemtower.features.dataset import collate_items

    with torch.no_grad():
        h = torch.nn.functional.normalize(tower(*collate_items(feat.encode(items[:8]))), dim=-1)
    e = Embedder.load(model_dir).embed(items[:8])
    torch.testing.assert_close(torch.from_numpy(e), h, atol=1e-5, rtol=1e-5)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_export_has_no_head_and_manifest_says_h(tiny_model):
    """pth1 and pth2 hold no projection-head weights; the manifest says it serves h, with versions."""
    model_dir, _ = tiny_model
    keys = set(torch.load(model_dir / PTH1, weights_only=True)) | set(torch.load(model_dir / PTH2, weights_only=True))
    assert not any(k.startswith("head") or k.startswith("net.") for k in keys)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["serves"] == "h" and manifest["dim"] == 64 + 128  # 2 x d_model 32 + the semantic slice
    assert manifest["versions"]["torch"] == torch.__version__


def test_embedding_order_follows_input(tiny_model):
    """Length-sorted batching never reorders the output rows."""
    model_dir, items = tiny_model
    emb = Embedder.load(model_dir)
    a = emb.embed(items[:20], batch_size=3)
    b = np.stack([emb.embed([it])[0] for it in items[:20]])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_missing_model_dir_is_clear(tmp_path):
    """A missing model directory raises ModelNotFoundError that says how to train one."""
    with pytest.raises(ModelNotFoundError, match="itemtower train"):
        Embedder.load(tmp_path / "nope")


def test_truncated_pth_is_a_clear_error(tiny_model, tmp_path):
    """A truncated pth1 raises ModelLoadError naming the file, not a pickle traceback."""
    import shutil

    model_dir, _ = tiny_model
    broken = tmp_path / "m"
    shutil.copytree(model_dir, broken)
    data = (broken / PTH1).read_bytes()
    (broken / PTH1).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="tower_body.pth"):
        Embedder.load(broken)


def test_pth_with_code_is_refused(tiny_model, tmp_path):
    """A pth file holding a pickled object (code) is refused by weights_only loading."""
    import shutil

    model_dir, _ = tiny_model
    broken = tmp_path / "m"
    shutil.copytree(model_dir, broken)
    torch.save({"x": print}, broken / PTH2)  # a pickled global: code a load would call
    with pytest.raises(ModelLoadError, match="tower_norm.pth"):
        Embedder.load(broken)


def test_partial_items_embed(tiny_model):
    """Items with only a title, or only STD values, still embed (search by partial item)."""
    model_dir, _ = tiny_model
    e = Embedder.load(model_dir).embed([{"title": "와이드 데님"}, {"std": {"color": ["Black"]}}, {}])
    assert e.shape == (3, 64 + 128) and np.isfinite(e).all()
