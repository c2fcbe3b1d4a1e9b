"""Same seed, same epochs, same numbers: train one fixed small config and record the loss sequence and the final
embeddings, so that two versions of the code can be compared (a refactor must not change training).

    # the code as it is
    .venv/bin/python benchmarks/same_training.py run --demo 300 --out runs/same/new
    # an older commit, from a worktree (git worktree add --detach /tmp/old <commit>)
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/same_training.py run --demo 300 --out runs/same/old
    # compare the two runs, and embed the old run's model with the code as it is (old model dirs must still load)
    .venv/bin/python benchmarks/same_training.py compare runs/same/old runs/same/new

`--myntra N` trains on a seeded sample of N items of ../shared/data/myntra instead of the demo catalog.
`--fake-teacher` replaces the e5 teacher with tests/fakes.fake_e5_encoder (no model download, milliseconds).
The config is a fixed epoch count, never the time budget: the budget makes the step count depend on the machine.
It runs against either layout of TrainConfig (flat tower knobs before issue 11, a nested `tower` after).

Issue 11 (3e60046 before, 0f524ec after; `--demo 300 --fake-teacher`, 3 epochs, 24 steps, and `--myntra 2000
--epochs 2` with the real e5 teacher, 118 steps): the loss, distillation loss and validation loss of every
step identical (max |diff| 0); embeddings max |diff| 5.96e-08 (the one L2 normaliser is numpy's now, it was
torch's), the same for each old model dir embedded by the new code. tests/test_old_models.py keeps the check.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# The fixed config: tower knobs and training knobs, flat (the layout before issue 11).
TOWER_KNOBS = {"d_model": 32, "n_heads": 2, "sem_dim": 16}
TRAIN_KNOBS = {"epochs": 3, "max_minutes": None, "batch_size": 32, "min_frequency": 1, "vocab_size": 800,
               "distill_items": 100, "distill_batch": 32, "seed": 0, "progress": False}


def make_config(out: Path, epochs: int | None = None):
    """A TrainConfig of either layout, from the flat knobs above."""
    TrainConfig = _train_config_class()
    train = {**TRAIN_KNOBS, "out": str(out), **({"epochs": epochs} if epochs else {})}
    if "tower" in {f.name for f in fields(TrainConfig)}:
        from itemtower.model import TowerConfig

        return TrainConfig(**train, tower=TowerConfig(**TOWER_KNOBS))
    return TrainConfig(**train, **TOWER_KNOBS)


def _train_config_class():
    try:
        from itemtower.training import TrainConfig
    except ImportError:
        from itemtower.train import TrainConfig
    return TrainConfig


def _train(items, schema, cfg) -> None:
    try:
        from itemtower.training import train
    except ImportError:  # the code before issue 11
        from itemtower.train import train_items

        train_items(items, schema, cfg, log=lambda s: None)
        return
    train(cfg, items=items, schema=schema, log=lambda s: None)


def _fake_teacher() -> None:
    """Patch every module that may hold the trainer's reference to e5_encoder."""
    import importlib

    sys.path.insert(0, str(ROOT / "tests"))
    from fakes import fake_e5_encoder

    for name in ("itemtower.train", "itemtower.training.data"):  # before issue 11, after
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "e5_encoder"):
            mod.e5_encoder = fake_e5_encoder


def load_items(args) -> list[dict]:
    if args.myntra:
        try:
            from itemtower.catalog.adapters import myntra
        except ImportError:  # before issue 11
            from itemtower.adapters import myntra

        conv = myntra.convert(DATA / "myntra")
        items = sorted(conv.items, key=lambda it: it["id"])
        return random.Random(0).sample(items, min(args.myntra, len(items)))
    try:
        from itemtower.catalog.demo import generate
    except ImportError:  # before issue 11
        from itemtower.demo import generate

    return generate(args.demo, 0)


def _embed(model_dir: Path, items: list[dict]) -> np.ndarray:
    from itemtower.artifacts import Embedder  # the same import in both layouts

    return Embedder.load(model_dir).embed(items)


def run(args) -> None:
    from itemtower.catalog import read_catalog, write_catalog
    try:
        from itemtower.catalog.schema import infer_schema
    except ImportError:  # before issue 11
        from itemtower.schema import infer_schema

    if args.fake_teacher:
        _fake_teacher()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_catalog(out / "catalog.jsonl", load_items(args))
    items = read_catalog(out / "catalog.jsonl").items  # what `compare` reads back: normalized, as train sees
    cfg = make_config(out / "model", args.epochs)
    _train(items, infer_schema(items), cfg)
    hist = json.loads((out / "model" / "history.json").read_text())
    emb = _embed(out / "model", items)
    np.savez(out / "result.npz", loss=np.array(hist["loss"]), distill=np.array(hist["distill_loss"]),
             val=np.array([v if v is not None else np.nan for v in hist["epoch_val_loss"]], dtype=float),
             embeddings=emb)
    print(f"{out}: {len(items)} items, {len(hist['loss'])} steps, last loss {hist['loss'][-1]:.6f}, "
          f"embeddings {emb.shape}")


def compare(args) -> None:
    from itemtower.catalog import read_catalog

    a, b = np.load(Path(args.a) / "result.npz"), np.load(Path(args.b) / "result.npz")
    for key in ("loss", "distill", "val"):
        same_len = a[key].shape == b[key].shape
        diff = float(np.nanmax(np.abs(a[key] - b[key]))) if same_len and a[key].size else float("nan")
        print(f"{key}: {a[key].size} vs {b[key].size} values, max |diff| {diff:.3g}")
    print(f"embeddings (each run's code on its own model): max |diff| "
          f"{float(np.abs(a['embeddings'] - b['embeddings']).max()):.3g}")
    items = read_catalog(Path(args.a) / "catalog.jsonl").items
    cross = _embed(Path(args.a) / "model", items)  # the first run's model, embedded by the code as it is
    print(f"{args.a}/model embedded by this code vs its own run: max |diff| "
          f"{float(np.abs(cross - a['embeddings']).max()):.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--demo", type=int, default=300, help="demo catalog size (itemtower generate, seed 0)")
    r.add_argument("--myntra", type=int, default=0, help="a seeded sample of this many Myntra items instead")
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--fake-teacher", action="store_true")
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    run(args) if args.cmd == "run" else compare(args)


if __name__ == "__main__":
    main()
