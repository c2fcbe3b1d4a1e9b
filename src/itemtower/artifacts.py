"""Model artifacts: pth1 (tower body) + pth2 (final norm) + manifest + featurizer files; the Embedder.

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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from itemtower import __version__
from itemtower.data.dataset import collate_items
from itemtower.data.featurize import EncodedItem, Featurizer
from itemtower.model import ItemTower, TowerConfig, TowerSizes

__all__ = ["Embedder", "ModelLoadError", "ModelNotFoundError", "atomic_save", "load_tower", "load_weights",
           "save_model", "PTH1", "PTH2", "MANIFEST"]

PTH1, PTH2, MANIFEST = "tower_body.pth", "tower_norm.pth", "manifest.json"
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
               training: dict[str, Any] | None = None) -> Path:
    """Export the served model: pth1, pth2, featurizer files and manifest. The projection head is not here."""
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


def load_resume(path: Path, tower: torch.nn.Module, head: torch.nn.Module,
                optimizer: torch.optim.Optimizer) -> tuple[int, int, float]:
    """Restore a training checkpoint (resume.pt) into `tower`, `head` and `optimizer`.

    Returns:
        (step, epoch it ended, best validation loss).

    Raises:
        ModelLoadError naming the file: unreadable (see load_weights), or from a run with another model config.
    """
    state = load_weights(path, "training checkpoint")
    try:
        tower.load_state_dict(state["tower"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        return int(state["step"]), int(state["epoch"]), float(state.get("best_val", float("inf")))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise ModelLoadError(f"{path} (training checkpoint) does not fit this run ({type(e).__name__}: "
                             f"{_first_line(e)}): it is damaged or from a run with other model flags; resume with "
                             "the flags it was trained with, or delete it to train from scratch") from None


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
    try:
        cfg, sizes = tower_spec(manifest)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"{d / MANIFEST} is not a valid manifest: {e}") from None
    featurizer = _load_featurizer(d)
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


def _load_featurizer(d: Path) -> Featurizer:
    """Featurizer.load, with a missing or broken vocabulary file named (a missing one is an incomplete model
    directory, not "no model": the manifest is there)."""
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


class Embedder:
    """Items -> L2-normalised h vectors, from a saved model (pth1 + pth2 only)."""

    def __init__(self, tower: ItemTower, featurizer: Featurizer, manifest: dict[str, Any]) -> None:
        self.tower, self.featurizer, self.manifest = tower.eval(), featurizer, manifest

    @classmethod
    def load(cls, directory: str | Path) -> "Embedder":
        return cls(*load_tower(directory))

    @property
    def schema(self):
        return self.featurizer.schema

    @property
    def dim(self) -> int:
        return self.tower.cfg.h_dim

    @torch.no_grad()
    def embed_encoded(self, encoded: Sequence[EncodedItem], batch_size: int = 256,
                      progress: bool = False) -> np.ndarray:
        """EncodedItems -> float32 (N, D), L2-normalised. Batches are built from length-sorted items."""
        n = len(encoded)
        out = np.zeros((n, self.dim), dtype=np.float32)
        order = sorted(range(n), key=lambda i: len(encoded[i].title) + sum(len(p) for ph in encoded[i].re
                                                                          for p in ph))
        batches = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embed", unit="batch")
        for s in batches:
            idx = order[s: s + batch_size]
            t_std, t_re = collate_items([encoded[i] for i in idx], self.featurizer.max_text_tokens)
            h = torch.nn.functional.normalize(self.tower(t_std, t_re), dim=-1)
            out[idx] = h.numpy()
        return out

    def embed(self, items: Sequence[dict[str, Any]], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Normalized item dicts (any part may be missing) -> float32 (N, D), L2-normalised h."""
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_encoded(self.featurizer.encode(items), batch_size, progress)

    def explain(self, item: dict[str, Any], top: int = 5) -> dict[str, Any]:
        """Per STD field, the title/RE tokens its cross-attention query weighted most (explain.explain_item);
        the capability the service's explain route checks for (serve/deps.Explainer)."""
        from itemtower.explain import explain_item

        return explain_item(self, item, top=top)
