"""Which device the tower runs on (issue 14: the GPU path): one rule for training (`itemtower train --device`),
embedding (`itemtower embed --device`) and the service (ITEMTOWER_DEVICE). CPU is the default and the tested
path; CUDA is used when asked for ("cuda": an error without one) or found ("auto")."""

from __future__ import annotations

import functools

import torch

__all__ = ["DEVICES", "PRECISIONS", "bf16_supported", "resolve_device", "use_bf16"]

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("auto", "fp32", "bf16")


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


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively on `device`: CUDA with bf16 (Ampere and later), or a CPU whose oneDNN
    has bf16 kernels (AVX-512 BF16 or AMX). Elsewhere bf16 autocast is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_has_bf16()
    return False


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    """Asked once per process: the service asks on every embed call."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def use_bf16(precision: str, device: torch.device) -> bool:
    """The precision rule (training, embedding, the service): "fp32"; "bf16" (autocast; an error where the
    device has no bf16 kernels); "auto" (the default): bf16 where the device has them (BENCHMARKS.md 14g:
    1.4x a training step, 1.4-1.5x the forward on this CPU, quality kept), fp32 elsewhere. Losses stay fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return False
    ok = bf16_supported(device)
    if precision == "bf16" and not ok:
        raise ValueError(f"precision 'bf16' asked for, but this {device.type} has no bf16 matmul kernels (AVX-512 "
                         "BF16 / AMX on a CPU, Ampere or later on CUDA): use --precision fp32 or auto")
    return ok
