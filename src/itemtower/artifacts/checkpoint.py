"""The model directory's format, written and read in one place (train, resume, evaluate and the Embedder use it):
pth1 (tower body) + pth2 (final norm) + manifest + featurizer files, and training's resume.pt.

A model directory holds:
    manifest.json     what this is: schema, tower config, dim, "serves": "h", versions, training summary
    tower_body.pth    pth1: state dict of ItemTower.body
    tower_norm.pth    pth2: state dict of ItemTower.norm (the final LayerNorm)
    schema.json tokenizer.json featurizer.json   the fitted vocabularies
    resume.pt         training only: body + norm + projection head + optimizer, for --resume
Both pth files are loaded with weights_only=True: a model file can never run code.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from itemtower import __version__
from itemtower.features.featurize import Featurizer
from itemtower.model import ItemTower, TowerConfig, TowerSizes

__all__ = ["ModelLoadError", "ModelNotFoundError", "atomic_save", "load_tower", "load_weights", "save_model",
           "save_run", "read_resume", "apply_resume", "load_head", "load_featurizer", "has_resume", "resume_path", "read_manifest",
           "write_manifest",
           "tower_spec", "training_config", "PTH1", "PTH2", "MANIFEST", "RESUME", "FORMAT"]

PTH1, PTH2, MANIFEST, RESUME = "tower_body.pth", "tower_norm.pth", "manifest.json", "resume.pt"
FORMAT = "itemtower/2"  # 2: "model" holds the TowerConfig alone, the fitted sizes are under "sizes" (issue 11)
READABLE_FORMATS = ("itemtower/1", FORMAT)
_SIZE_KEYS = ("n_fields", "n_values", "vocab_size", "n_types", "max_len")
# TowerConfig knobs whose default changed since models were first saved: a stored config without the key was
# written before the knob existed and means this value (sem_dim: models before issue 9 have no semantic slice).
_LEGACY_TOWER_DEFAULTS = {"sem_dim": 0}


class ModelNotFoundError(FileNotFoundError):
    """The model directory or one of its files does not exist."""


class ModelLoadError(ValueError):
    """A model file exists but cannot be used (truncated, wrong format, wrong shapes)."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the same directory, then rename: a kill mid-write never leaves a broken file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    return {"itemtower": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save_model(directory: str | Path, tower: ItemTower, featurizer: Featurizer,
               training: dict[str, Any] | None = None, views: dict[str, Any] | None = None) -> Path:
    """Export the served model: pth1, pth2, featurizer files and manifest. The projection head is not here.

    `views`: the training views' settings (ViewConfig as a dict), which evaluation's other-view retrieval reuses.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    featurizer.save(d)
    atomic_save(tower.body.state_dict(), d / PTH1)
    atomic_save(tower.norm.state_dict(), d / PTH2)
    manifest = {
        "format": FORMAT,
        "serves": "h",
        "normalized": "L2",
        "dim": tower.cfg.h_dim,
        "model": tower.cfg.to_dict(),
        "sizes": tower.sizes.to_dict(),
        "schema": featurizer.schema.to_dict(),
        "files": {"pth1": PTH1, "pth2": PTH2, "tokenizer": "tokenizer.json", "featurizer": "featurizer.json",
                  "schema": "schema.json"},
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training": training or {},
    }
    if views is not None:
        manifest["views"] = views
    _atomic_write_text(d / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
    return d


def load_weights(path: str | Path, what: str = "model file") -> Any:
    """torch.load(path, weights_only=True), with the two ways it fails said plainly, naming the file.

    Raises:
        ModelLoadError: a pickle of Python objects (weights_only refuses it: loading it could run code), or a
            file that is truncated / not a torch file at all. The message says what to do; torch's own text
            (a page long, about options this loader deliberately does not take) is not repeated.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise ModelLoadError(f"{path} ({what}) is not a readable torch file (UnpicklingError: "
                                 f"{_first_line(e)}): it is truncated or damaged; copy it again or retrain") from None
        raise ModelLoadError(
            f"{path} ({what}) was saved with pickle: it holds Python objects, not only tensors, and itemtower loads "
            "model files with weights_only=True so that a model file can never run code. Save the tensors alone "
            "(torch.save(module.state_dict(), path)) or retrain with `itemtower train`") from None
    except Exception as e:  # truncated zip, not a torch file at all
        reason = "the file is empty" if path.stat().st_size == 0 else f"{type(e).__name__}: {_first_line(e)}"
        raise ModelLoadError(f"{path} ({what}) cannot be loaded as weights ({reason}): the file is truncated or "
                             "not a torch file; copy it again or retrain") from None


def has_resume(directory: str | Path) -> bool:
    return resume_path(directory).exists()


def resume_path(directory: str | Path) -> Path:
    return Path(directory) / RESUME


def save_run(out: Path, task, opt: torch.optim.Optimizer, featurizer: Featurizer, cfg, state, epoch: int,
             t_train: float) -> None:
    """After an epoch: export the served model (task.served_tower(): the slice at its served scale), the resume
    checkpoint (tower + head + optimizer, atomically), the history and the resolved config.

    `task` is a training.task.TrainTask, `cfg` its TrainConfig, `state` the loop's RunState (step, best_val,
    history, stopped)."""
    best = state.best_val if state.best_val < 1e30 else None
    training = {"steps": state.step, "epochs_done": epoch + 1, "best_val_loss": best,
                "seconds": round(time.perf_counter() - t_train, 1), "stopped_by": state.stopped,
                "precision": getattr(state, "precision", "fp32"), "items": len(featurizer.token_df) and featurizer.n_docs, "config": cfg.to_dict()}
    save_model(out, task.served_tower(), featurizer, training, views=asdict(cfg.views))
    atomic_save({"tower": task.tower.state_dict(), "head": task.head.state_dict(), "optimizer": opt.state_dict(),
                 "step": state.step, "epoch": epoch, "best_val": state.best_val}, resume_path(out))
    (out / "history.json").write_text(json.dumps(state.history), encoding="utf-8")
    (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, ensure_ascii=False),
                                           encoding="utf-8")


def read_resume(directory: str | Path) -> tuple[dict[str, Any], Featurizer]:
    """What --resume continues from: DIR/resume.pt's tensors and the featurizer saved beside it (the token and
    value ids the saved weights were learned with). Read before anything is built, so a broken checkpoint is an
    error at once. Raises ModelLoadError naming the file."""
    state = load_weights(resume_path(directory), "training checkpoint")
    try:
        featurizer = load_featurizer(directory)
    except ModelLoadError as e:
        raise ModelLoadError(f"--resume needs the featurizer saved with {resume_path(directory)}: {e}") from None
    return state, featurizer


def apply_resume(directory: str | Path, state: dict[str, Any], task,
                 optimizer: torch.optim.Optimizer) -> tuple[int, int, float, dict | None]:
    """Restore resume.pt's tensors (read_resume) into the task's tower and head and the optimizer.

    Returns:
        (step, epoch it ended, best validation loss, the history.json beside it or None).

    Raises:
        ModelLoadError naming the file: from a run with another model config, or damaged.
    """
    path = resume_path(directory)
    try:
        task.tower.load_state_dict(state["tower"])
        task.head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, best = int(state["step"]), int(state["epoch"]), float(state.get("best_val", float("inf")))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise ModelLoadError(f"{path} (training checkpoint) does not fit this run ({type(e).__name__}: "
                             f"{_first_line(e)}): it is damaged or from a run with other model flags; resume with "
                             "the flags it was trained with, or delete it to train from scratch") from None
    hist_path = Path(directory) / "history.json"
    history = json.loads(hist_path.read_text(encoding="utf-8")) if hist_path.exists() else None
    return step, epoch, best, history


def load_head(directory: str | Path, h_dim: int):
    """The training run's projection head from DIR/resume.pt, eval mode: (head, proj_dim, None), or
    (None, None, why) when resume.pt is missing or unusable (evaluation then scores h alone)."""
    from itemtower.model import ProjectionHead

    path = resume_path(directory)
    if not path.exists():
        return None, None, (f"{path} is missing (only training writes it; the exported model has no projection "
                            "head), so only h is evaluated")
    try:
        head_state = load_weights(path, "training checkpoint")["head"]
        w = head_state["net.2.weight"]  # the last layer: (proj_dim, h_dim), whatever the config said
    except (ModelLoadError, KeyError, TypeError, IndexError) as e:  # truncated file, not a dict, no "head"
        return None, None, f"{path} has no loadable projection head ({type(e).__name__}: {str(e)[:200]})"
    proj_dim = int(w.shape[0])
    head = ProjectionHead(h_dim, proj_dim)
    try:
        head.load_state_dict(head_state)
    except (RuntimeError, TypeError, AttributeError) as e:
        return None, None, (f"{path}'s head does not match the model (h_dim {h_dim}, proj_dim {proj_dim}): "
                            f"{str(e)[:200]}")
    return head.eval(), proj_dim, None


def training_config(manifest: dict[str, Any], where: str = "manifest"):
    """The TrainConfig a model was trained with (manifest["training"]["config"]), read leniently: a key this
    version no longer has is a warning, not an error, so removing a knob never makes older models unreadable.
    None when the manifest has no training config (a model not written by `train`)."""
    from itemtower.training.config import TrainConfig

    d = (manifest.get("training") or {}).get("config")
    return TrainConfig.from_dict(d, strict=False, where=where) if d else None


def views_config(manifest: dict[str, Any], where: str = "manifest"):
    """The ViewConfig a model was trained with: manifest["views"] (since issue 11), else the training config's
    (older models), else the defaults."""
    from itemtower.features.views import ViewConfig
    from itemtower.knobs import from_mapping

    if isinstance(manifest.get("views"), dict):
        return from_mapping(ViewConfig, manifest["views"], strict=False, where=where)
    cfg = training_config(manifest, where)
    return cfg.views if cfg is not None else ViewConfig()


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: the model directory is incomplete; copy the whole directory "
                             "again or retrain with `itemtower train`")
    return load_weights(path, "weights")


def load_tower(directory: str | Path) -> tuple[ItemTower, Featurizer, dict[str, Any]]:
    """Rebuild the served tower from pth1 + pth2 + manifest; eval mode. Raises ModelNotFoundError/ModelLoadError."""
    d = Path(directory)
    manifest = read_manifest(d)
    try:
        cfg, sizes = tower_spec(manifest)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"{d / MANIFEST} is not a valid manifest: {e}") from None
    featurizer = load_featurizer(d)
    tower = ItemTower(cfg, sizes)
    for part, name in ((tower.body, PTH1), (tower.norm, PTH2)):
        state = _load_state(d / name)
        try:
            part.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:
            raise ModelLoadError(f"{d / name} does not match the manifest's model config: {str(e)[:300]}") from None
    _check_dim(d, manifest, tower)
    tower.eval()
    return tower, featurizer, manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """DIR/manifest.json, parsed, its format checked (this version reads itemtower/1 and itemtower/2).

    Raises:
        ModelNotFoundError: no directory, or no manifest in it.
        ModelLoadError: not JSON, or a format this version does not read (the message says which it reads).
    """
    d = Path(directory)
    if not d.is_dir():
        raise ModelNotFoundError(f"no model directory at {d}: train one with `itemtower train --catalog FILE "
                                 f"--out {d}` (or `make demo`)")
    if not (d / MANIFEST).exists():
        raise ModelNotFoundError(f"{d / MANIFEST} is missing: {d} is not a trained itemtower model")
    try:
        manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{d / MANIFEST} is not a valid manifest: {e}") from None
    _check_format(d / MANIFEST, manifest)
    return manifest


def write_manifest(directory: str | Path, manifest: dict[str, Any]) -> None:
    """Replace DIR/manifest.json atomically (after read_manifest and a change: the weights stay as they are)."""
    _check_format(Path(directory) / MANIFEST, manifest)
    _atomic_write_text(Path(directory) / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))


def _check_format(path: Path, manifest: Any) -> None:
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt not in READABLE_FORMATS:
        raise ModelLoadError(f"{path} has format {fmt!r}; this version of itemtower reads "
                             f"{', '.join(READABLE_FORMATS)}: the model was written by a newer itemtower (upgrade) "
                             "or the file is not an itemtower manifest (retrain with `itemtower train`)")


def tower_spec(manifest: dict[str, Any]) -> tuple[TowerConfig, TowerSizes]:
    """The TowerConfig and TowerSizes a manifest describes, in either layout.

    Format 1 (before issue 11) kept the fitted sizes and the training head's proj_dim in "model" beside the
    knobs; format 2 keeps "model" for the knobs and "sizes" for the sizes. Both rebuild the same tower.
    """
    model = dict(manifest["model"])
    sizes = manifest.get("sizes")
    if sizes is None:
        sizes = {k: model.pop(k) for k in _SIZE_KEYS if k in model}
        model.pop("proj_dim", None)  # the training head's width: the served model never had a head
    return TowerConfig.from_dict({**_LEGACY_TOWER_DEFAULTS, **model}), TowerSizes.from_dict(sizes)


def load_featurizer(directory: str | Path) -> Featurizer:
    """Featurizer.load, with a missing or broken vocabulary file named (a missing one is an incomplete model
    directory, not "no model": the manifest is there). Training's resume reads the saved one this way."""
    d = Path(directory)
    for name in ("schema.json", "tokenizer.json", "featurizer.json"):
        if not (d / name).exists():
            raise ModelLoadError(f"{d / name} is missing: the model directory {d} is incomplete (it has a "
                                 "manifest); copy the whole directory again or retrain with `itemtower train`")
    try:
        return Featurizer.load(d)
    except ValueError as e:  # bad JSON, a tokenizer file `tokenizers` cannot read: the message names the file
        raise ModelLoadError(f"the model directory {d} has a broken vocabulary file: {_first_line(e, 300)}; copy "
                             "the whole directory again or retrain with `itemtower train`") from None
    except (KeyError, TypeError) as e:  # featurizer.json parsed, but its keys are not this version's
        raise ModelLoadError(f"{d / 'featurizer.json'} does not fit this version of itemtower ({type(e).__name__}: "
                             f"{_first_line(e)}): it is from another version or was edited; retrain with "
                             "`itemtower train`") from None


def _check_dim(d: Path, manifest: dict[str, Any], tower: ItemTower) -> None:
    """The manifest's `dim` is what /info and clients read: it must be the size of the vectors the weights make
    (the tower was built from the manifest's model config, and load_state_dict checked the weights against it)."""
    said, made = manifest.get("dim"), tower.cfg.h_dim
    if said is not None and (isinstance(said, bool) or said != made):
        raise ModelLoadError(f"{d / MANIFEST} says dim {said!r}, but the weights ({PTH1}, {PTH2}) make vectors of "
                             f"dimension {made}: the manifest was edited or belongs to another model; restore it "
                             "from the training run or retrain with `itemtower train`")


