"""Which device the tower runs on (issue 14: the GPU path): one rule for training (`itemtower train --device`),
embedding (`itemtower embed --device`) and the service (ITEMTOWER_DEVICE). CPU is the default and the tested
path; CUDA is used when asked for ("cuda": an error without one) or found ("auto")."""

from __future__ import annotations

import torch

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """"cpu" (default), "cuda" (an error without a GPU) or "auto" (CUDA when present, else CPU)."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device: use --device cpu (the default) "
                         "or --device auto, or install a CUDA build of torch on a machine with a GPU")
    return torch.device(name)
