"""One place for a knob: TrainConfig holds the tower's config nested; old flat layouts still read; the CLI's
options and TOML files come from the same fields."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from itemtower.model import TowerConfig
from itemtower.training import TrainConfig

FIXTURE = Path(__file__).parent / "fixtures" / "model_v0"


def test_tower_knobs_are_the_nested_tower_config():
    """A tower knob exists once, on TowerConfig; TrainConfig carries it as cfg.tower (ffn_mult included)."""
    cfg = TrainConfig(tower=TowerConfig(d_model=64, n_heads=2, ffn_mult=3))
    assert cfg.tower.ffn_mult == 3 and not hasattr(cfg, "d_model") and not hasattr(cfg.tower, "proj_dim")
    assert cfg.to_dict()["tower"]["ffn_mult"] == 3
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_an_old_flat_train_config_reads_with_its_knobs_in_the_tower():
    """train_config.json of a model trained before issue 11 (tower knobs flat beside the training knobs) reads
    as the same knobs, nested; its proj_dim is training's."""
    old = json.loads((FIXTURE / "train_config.json").read_text())
    assert "d_model" in old and "tower" not in old  # the fixture is the old layout
    cfg = TrainConfig.from_dict(old)
    assert (cfg.tower.d_model, cfg.tower.n_heads, cfg.tower.sem_dim) == (old["d_model"], old["n_heads"],
                                                                          old["sem_dim"])
    assert cfg.proj_dim == old["proj_dim"] and cfg.views.colour_drop_p == old["views"]["colour_drop_p"]


def test_unknown_keys_fail_for_people_and_warn_for_old_manifests():
    """A typo in what a person wrote is an error; a key an older version wrote (a knob since removed) is a
    warning and the rest still reads."""
    with pytest.raises(ValueError, match="unknown TrainConfig keys.*'bogus'"):
        TrainConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="unknown TowerConfig keys"):
        TrainConfig.from_dict({"tower": {"d_modle": 3}})
    with pytest.raises(ValueError, match="both at the top level and under tower"):
        TrainConfig.from_dict({"d_model": 32, "tower": {"d_model": 64}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = TrainConfig.from_dict({"seed": 3, "removed_knob": 1, "tower": {"old_knob": 2}}, strict=False,
                                    where="m/manifest.json")
    assert cfg.seed == 3 and len(caught) == 2 and "m/manifest.json" in str(caught[0].message)


def test_toml_file_with_tower_and_views_tables(tmp_path):
    """A TOML file sets training knobs at the top, the tower's under [tower], the views' under [views]."""
    path = tmp_path / "train.toml"
    path.write_text('seed = 5\nepochs = 2\n[tower]\nd_model = 64\nffn_mult = 4\n[views]\nre_drop_p = 0.5\n')
    cfg = TrainConfig.from_toml(path)
    assert (cfg.seed, cfg.epochs, cfg.tower.d_model, cfg.tower.ffn_mult, cfg.views.re_drop_p) == (5, 2, 64, 4, 0.5)
    path.write_text("[tower]\nnope = 1\n")
    with pytest.raises(ValueError, match="nope.*train.toml"):
        TrainConfig.from_toml(path)


def test_cli_options_are_the_dataclass_fields():
    """Every TrainConfig and TowerConfig knob is an option of `itemtower train`, with the field's default and
    help text."""
    from dataclasses import fields

    from itemtower.cli.train_options import train_signature

    params = train_signature().parameters
    for cls in (TrainConfig, TowerConfig):
        for f in fields(cls):
            if f.name in ("tower", "views"):
                continue
            assert f.name in params, f.name
            assert params[f.name].default.default == f.default and params[f.name].default.help
    assert "ffn_mult" in params and "proj_dim" in params


def test_cli_config_file_errors_name_the_key_and_the_file(tmp_path):
    """`itemtower train --config FILE` with a key TrainConfig lacks is one `error:` line naming the key and the
    file, before any training."""
    from typer.testing import CliRunner

    from itemtower.cli import app

    cfg = tmp_path / "t.toml"
    cfg.write_text("[tower]\nd_modle = 3\n")
    res = CliRunner().invoke(app, ["train", "--config", str(cfg), "--catalog", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "d_modle" in res.output and "t.toml" in res.output, res.output
    res = CliRunner().invoke(app, ["train", "--catalog", str(tmp_path / "none.jsonl"), "--n-heads", "3"])
    assert res.exit_code == 2 and "not divisible by n_heads 3" in res.output, res.output
