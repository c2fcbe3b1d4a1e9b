"""A trained model on disk and in use: checkpoint.py (the model directory's format: write, read, version check,
resume.pt), embedder.py (Embedder: items -> L2-normalised h), explain.py (what each STD query attended to).

`from itemtower.artifacts import Embedder` is the service's one import of the model (tests stub this module)."""

from itemtower.artifacts.checkpoint import (MANIFEST, PTH1, PTH2, ModelLoadError, ModelNotFoundError, atomic_save,
                                            load_tower, load_weights, save_model)
from itemtower.artifacts.embedder import Embedder

__all__ = ["Embedder", "ModelLoadError", "ModelNotFoundError", "atomic_save", "load_tower", "load_weights",
           "save_model", "PTH1", "PTH2", "MANIFEST"]
