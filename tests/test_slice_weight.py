"""The slice weight read off the trained model (training/slice_weight.py)."""

from __future__ import annotations

import numpy as np
import pytest

from itemtower.training.slice_weight import SCALE_RANGE, measured_sem_scale, slice_ratio


def parts(n: int, main_rms: float, sem_rms: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    main = rng.standard_normal((n, 8))
    sem = rng.standard_normal((n, 4))
    main *= main_rms / np.sqrt(np.square(main).sum() / n)
    sem *= sem_rms / np.sqrt(np.square(sem).sum() / n)
    return np.concatenate([main, sem], 1)


@pytest.mark.parametrize("main_rms,sem_rms", [(1.0, 0.5), (2.0, 3.0), (1.0, 1.0)])
def test_ratio_is_the_parts_rms_ratio_whatever_the_row_norms(main_rms, sem_rms):
    h = parts(50, main_rms, sem_rms)
    assert slice_ratio(h, 8) == pytest.approx(sem_rms / main_rms)
    unit = h / np.linalg.norm(h, axis=1, keepdims=True)  # the served vectors are L2-normalised rows
    per_row = np.sqrt(np.square(unit[:, 8:]).sum(1) / np.square(unit[:, :8]).sum(1))
    assert np.all(per_row > 0) and slice_ratio(unit, 8) > 0


def test_measured_scale_is_clipped_and_seeded():
    items = [{"id": str(i)} for i in range(300)]
    seen = []

    def embed(batch):
        seen.append([it["id"] for it in batch])
        return parts(len(batch), 1.0, 10.0)

    s, ratio = measured_sem_scale(embed, items, 8, sample=100, seed=3)
    assert ratio == pytest.approx(10.0) and s == SCALE_RANGE[1]
    measured_sem_scale(embed, items, 8, sample=100, seed=3)
    assert seen[0] == seen[1] and len(seen[0]) == 100  # the same seeded sample
    s, ratio = measured_sem_scale(lambda b: parts(len(b), 1.0, 0.6), items, 8)
    assert s == pytest.approx(0.6) and ratio == pytest.approx(0.6)


def test_training_serves_the_measured_slice_weight(tmp_path, tiny_items):
    """Two runs, same seed: with the measurement (the default) the served slice is the same weights at the
    measured scale, the main part untouched; without it, the slice at --sem-scale. The manifest says why."""
    import json

    from itemtower.artifacts import Embedder
    from itemtower.catalog.schema import KFASHION
    from itemtower.model import TowerConfig
    from itemtower.training import TrainConfig, train

    tiny = dict(batch_size=32, min_frequency=1, vocab_size=300, progress=False, epochs=2, distill_batch=32,
                tower=TowerConfig(d_model=16, n_heads=2))
    auto, fixed = tmp_path / "auto", tmp_path / "fixed"
    train(TrainConfig(out=str(auto), **tiny), tiny_items, KFASHION, log=lambda s: None)
    train(TrainConfig(out=str(fixed), auto_sem_scale=False, **tiny), tiny_items, KFASHION, log=lambda s: None)
    measured = json.loads((auto / "manifest.json").read_text())["training"]["sem_scale_measured"]
    a, f = Embedder.load(auto), Embedder.load(fixed)
    assert f.tower.cfg.sem_scale == 1.0 and a.tower.cfg.sem_scale == pytest.approx(measured["served"], abs=1e-4)
    m = a.tower.cfg.main_dim
    enc = a.featurizer.encode(tiny_items[:40])
    ha, hf = a.embed_encoded(enc, normalized=False), f.embed_encoded(enc, normalized=False)
    np.testing.assert_allclose(ha[:, :m], hf[:, :m], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha[:, m:], hf[:, m:] * a.tower.cfg.sem_scale, rtol=1e-4, atol=1e-6)
    all_h = f.embed_encoded(f.featurizer.encode(tiny_items), normalized=False)
    if len(tiny_items) <= 2000:  # the sample is every item: the ratio is the fixed run's own
        assert measured["ratio"] == pytest.approx(slice_ratio(all_h, m), rel=1e-3)
