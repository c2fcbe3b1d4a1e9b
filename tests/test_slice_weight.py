"""The slice weight chosen on the catalog when training ends (training/slice_weight.py)."""

from __future__ import annotations

import numpy as np
import pytest

from itemtower.training.slice_weight import SCALES, Agreement, chosen_scale, teacher_agreement


def clusters(n: int, k: int, dim: int, rng: np.random.Generator, spread: float = 0.1) -> np.ndarray:
    """n points in k tight clusters (item i in cluster i % k)."""
    centres = rng.standard_normal((k, dim))
    return centres[np.arange(n) % k] + spread * rng.standard_normal((n, dim))


def test_a_main_part_without_the_teachers_neighbours_gets_the_slice_at_its_loudest():
    rng = np.random.default_rng(0)
    n = 220  # 20 clusters of 11: each item's 10 nearest are its cluster
    teacher = clusters(n, 20, 12, rng)
    main = rng.standard_normal((n, 16))  # knows nothing of the teacher's clusters
    sem = teacher[:, :8] + 0.05 * rng.standard_normal((n, 8))  # the teacher's clusters, distilled
    agree = teacher_agreement(main, sem, teacher)
    assert list(agree.teach) == list(agree.keep) == list(SCALES)
    assert agree.main < 0.2 and agree.teach[SCALES[-1]] > 0.9 and agree.teach[SCALES[0]] < agree.teach[SCALES[-1]]
    assert chosen_scale(agree) == SCALES[-1]


def test_a_main_part_with_the_teachers_neighbours_keeps_them():
    rng = np.random.default_rng(2)
    n = 220
    teacher = clusters(n, 20, 12, rng)
    main = teacher + 0.05 * rng.standard_normal(teacher.shape)  # already the teacher's neighbourhoods
    agree = teacher_agreement(main, rng.standard_normal((n, 8)), teacher)  # and a slice of noise
    assert agree.main > 0.9 and agree.keep[SCALES[0]] > agree.keep[SCALES[-1]]
    assert chosen_scale(agree) == SCALES[0]


def test_the_score_weighs_the_main_parts_neighbours_by_its_own_agreement():
    """a = 0.4: keeping the main part's neighbours counts 0.4, the teacher's 0.6 (hand-made overlaps)."""
    agree = Agreement(0.4, keep={0.5: 0.9, 1.0: 0.6, 2.0: 0.3}, teach={0.5: 0.5, 1.0: 0.7, 2.0: 0.8})
    assert agree.score(0.5) == pytest.approx(0.4 * 0.9 + 0.6 * 0.5)
    assert chosen_scale(agree) == 0.5  # 0.66 against 0.66 (tie: the smaller) and 0.60
    assert chosen_scale(Agreement(0.1, agree.keep, agree.teach)) == 2.0


def test_the_scale_is_read_off_neighbourhoods_not_norms():
    """Rescaling a part as a whole shifts where the agreement peaks by exactly that factor (the RMS rule this
    replaced read the parts' norms, which drift with training; a neighbourhood read off the mix does not)."""
    rng = np.random.default_rng(1)
    n = 220
    teacher = clusters(n, 20, 12, rng)
    main = np.concatenate([clusters(n, 11, 8, rng, 0.5), teacher[:, :8]], 1)
    sem = teacher[:, 4:12] + 0.3 * rng.standard_normal((n, 8))
    base = teacher_agreement(main, sem, teacher, scales=(0.5, 1.0, 2.0))
    doubled = teacher_agreement(main, 2 * sem, teacher, scales=(0.25, 0.5, 1.0))
    assert list(base.teach.values()) == list(doubled.teach.values())
    assert list(base.keep.values()) == list(doubled.keep.values()) and base.main == doubled.main


def test_small_samples_are_refused():
    with pytest.raises(ValueError, match="more than 10"):
        teacher_agreement(np.ones((10, 2)), np.ones((10, 2)), np.ones((10, 2)))


def test_training_serves_the_chosen_slice_weight(tmp_path, tiny_items):
    """Two runs, same seed: by default the served slice is the same weights at the chosen scale (the main part
    untouched); without the choice, the slice at --sem-scale. The manifest's agreements are the fixed run's own,
    recomputed here from its parts and the teacher's vectors."""
    import json

    from itemtower.artifacts import Embedder
    from itemtower.catalog.schema import KFASHION
    from itemtower.model import TowerConfig
    from itemtower.training import TrainConfig, split_rows, teacher_rows, train

    tiny = dict(batch_size=32, min_frequency=1, vocab_size=300, progress=False, epochs=2, distill_batch=32,
                tower=TowerConfig(d_model=16, n_heads=2))
    auto, fixed = tmp_path / "auto", tmp_path / "fixed"
    train(TrainConfig(out=str(auto), **tiny), tiny_items, KFASHION, log=lambda s: None)
    train(TrainConfig(out=str(fixed), auto_sem_scale=False, **tiny), tiny_items, KFASHION, log=lambda s: None)
    chosen = json.loads((auto / "manifest.json").read_text())["training"]["sem_scale_chosen"]
    a, f = Embedder.load(auto), Embedder.load(fixed)
    assert f.tower.cfg.sem_scale == 1.0 and a.tower.cfg.sem_scale == chosen["served"]
    assert chosen["served"] in SCALES and set(chosen["by_scale"]) == {f"{s:g}" for s in SCALES}
    m = a.tower.cfg.main_dim
    enc = a.featurizer.encode(tiny_items[:40])
    ha, hf = a.embed_encoded(enc, normalized=False), f.embed_encoded(enc, normalized=False)
    np.testing.assert_allclose(ha[:, :m], hf[:, :m], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha[:, m:], hf[:, m:] * a.tower.cfg.sem_scale, rtol=1e-4, atol=1e-6)
    cfg = TrainConfig(out=str(fixed), **tiny)
    _, train_idx = split_rows(len(tiny_items), cfg.val_frac, cfg.seed)
    rows = teacher_rows(train_idx, cfg.distill_items, cfg.seed)
    assert chosen["items"] == len(rows)
    from fakes import fake_e5_encoder  # what training's teacher is in the tests (conftest.py)

    e5 = fake_e5_encoder(cfg.cache_dir, progress=False, log=None, name="e5-titles")(
        [str(tiny_items[i].get("title") or "") for i in rows])
    h = f.embed_encoded(f.featurizer.encode([tiny_items[i] for i in rows]), normalized=False)
    again = teacher_agreement(h[:, :m], h[:, m:], e5)
    assert chosen["main_agrees_with_teacher"] == pytest.approx(again.main, abs=2e-3)
    for s in SCALES:
        got = chosen["by_scale"][f"{s:g}"]
        assert got["keep"] == pytest.approx(again.keep[s], abs=2e-3)
        assert got["teach"] == pytest.approx(again.teach[s], abs=2e-3)
    assert chosen["served"] == chosen_scale(again)
