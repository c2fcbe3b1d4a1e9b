"""Training under torchrun (training/distributed.py): 2 processes with gloo on this machine take the same steps
as one process on the same global batch (pytorch-metric-learning's own DDP test does this), and write one model
directory, rank 0's, that loads and embeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from itemtower.catalog.demo import generate
from itemtower.cli import app
from itemtower.training.distributed import Dist, resolve_device

TESTS = Path(__file__).parent
# Tiny, and with no randomness inside the model (dropout 0): what one process draws for a batch of 32, two
# processes cannot draw for 2 x 16, so only then are the numbers comparable. Distillation on (the fake teacher).
ARGS = ["--epochs", "2", "--batch-size", "32", "--d-model", "16", "--n-heads", "2", "--vocab-size", "300",
        "--min-frequency", "1", "--dropout", "0", "--bag-dropout", "0", "--distill-items", "60",
        "--distill-batch", "20", "--max-minutes", "100000", "--no-progress", "--seed", "5",
        "--precision", "fp32"]  # the same numbers to 1e-5 need fp32: bf16 rounds each process's batch differently


def _torchrun(n: int, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=n tests/ddp_train.py ...` (standalone: a free local port)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(TESTS)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           str(TESTS / "ddp_train.py"), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run twice: one process (in this one), and torchrun with 2 processes."""
    root = tmp_path_factory.mktemp("ddp")
    catalog = root / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in generate(200, seed=1)),
                       encoding="utf-8")
    one = CliRunner().invoke(app, ["train", "--catalog", str(catalog), "--out", str(root / "one"), *ARGS])
    assert one.exit_code == 0, one.output
    two = _torchrun(2, "train", "--catalog", str(catalog), "--out", str(root / "two"), *ARGS)
    return root, catalog, two


def _history(d: Path) -> dict:
    return json.loads((d / "history.json").read_text())


def _weights(d: Path) -> dict[str, torch.Tensor]:
    state = torch.load(d / "resume.pt", weights_only=True)
    return {f"{part}.{k}": v for part in ("tower", "head") for k, v in state[part].items()}


def test_two_processes_take_the_steps_of_one(runs):
    """Loss (contrastive and distillation) at every step and every parameter after the run match one process on
    the same global batch: the negatives and the teacher's neighbourhoods come from both ranks."""
    root = runs[0]
    h1, h2 = _history(root / "one"), _history(root / "two")
    assert len(h1["loss"]) == len(h2["loss"]) >= 4
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-5)
    np.testing.assert_allclose(h2["distill_loss"], h1["distill_loss"], rtol=1e-5)
    np.testing.assert_allclose(h2["lr"], h1["lr"], rtol=1e-6)
    assert None not in h1["epoch_val_loss"]  # 200 items: 10 held out, rank 0's validation decides for both
    np.testing.assert_allclose(h2["epoch_val_loss"], h1["epoch_val_loss"], rtol=1e-5)
    w1, w2 = _weights(root / "one"), _weights(root / "two")
    assert w1.keys() == w2.keys()
    moved = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert moved < 1e-4, f"parameters differ by {moved}"


def test_two_processes_write_one_model_that_loads_and_embeds(runs):
    """Rank 0 alone writes: one model directory, a manifest, the log once; it loads and embeds the catalog."""
    from itemtower.artifacts import Embedder

    root, catalog, proc = runs
    assert sorted(p.name for p in root.iterdir()) == ["catalog.jsonl", "one", "two"]
    assert proc.stdout.count("stopped by epochs") == 1  # rank 1 does not log
    assert proc.stdout.count(" left out ") == 1  # nor does the CLI's schema summary run twice
    manifest = json.loads((root / "two" / "manifest.json").read_text())
    assert manifest["training"]["steps"] == len(_history(root / "two")["loss"])
    items = [json.loads(line) for line in catalog.read_text(encoding="utf-8").splitlines()][:8]
    vecs = Embedder.load(root / "two").embed(items)
    assert vecs.shape == (8, manifest["dim"]) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    ref = Embedder.load(root / "one").embed(items)
    assert np.abs(vecs - ref).max() < 1e-3  # the same model as one process trains


def test_each_rank_gets_its_share_of_every_global_batch():
    """The sharded loader cuts the single-process loader's batches: the ranks' shares, in rank order, are the
    batch one process would see (same seed, same order), however the batch divides."""
    from torch.utils.data import DataLoader

    for n_items, batch, world in ((50, 10, 2), (50, 10, 3), (7, 7, 2)):
        def loader():
            return DataLoader(list(range(n_items)), batch_size=batch, shuffle=True, drop_last=n_items > batch,
                              generator=torch.Generator().manual_seed(3))

        whole = [b.tolist() for b in loader()]
        shards = [[b.tolist() for b in Dist(rank=r, world=world).shard_loader(loader())] for r in range(world)]
        assert all(len(s) == len(whole) for s in shards)
        for i, b in enumerate(whole):
            assert sum((s[i] for s in shards), []) == b
            assert max(len(s[i]) for s in shards) - min(len(s[i]) for s in shards) <= 1


def test_a_batch_smaller_than_the_world_and_a_missing_gpu_are_errors():
    from torch.utils.data import DataLoader

    with pytest.raises(ValueError, match="batch size 2 is smaller than the 4 processes"):
        Dist(rank=0, world=4).shard_loader(DataLoader(list(range(10)), batch_size=2))
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"


@pytest.mark.slow
def test_two_processes_resume_as_one_process_does(runs, tmp_path):
    """--resume under torchrun: rank 0 reads resume.pt (and the featurizer beside it) and every rank continues
    from it; a third epoch resumed by 2 processes matches one resumed by 1, and the history goes on."""
    import shutil

    root, catalog, _ = runs
    for name in ("one", "two"):
        shutil.copytree(root / name, tmp_path / name)
    more = ["--epochs", "3", *ARGS[2:], "--resume"]
    one = CliRunner().invoke(app, ["train", "--catalog", str(catalog), "--out", str(tmp_path / "one"), *more])
    assert one.exit_code == 0, one.output
    proc = _torchrun(2, "train", "--catalog", str(catalog), "--out", str(tmp_path / "two"), *more)
    assert proc.stdout.count("resumed from") == 1
    h1, h2 = _history(tmp_path / "one"), _history(tmp_path / "two")
    assert len(h2["loss"]) == len(_history(root / "two")["loss"]) * 3 // 2
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-5)
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-4
