"""NT-Xent speed: pytorch-metric-learning's NTXentLoss vs MatrixNTXentLoss (same values), forward + backward.

    .venv/bin/python benchmarks/loss_speed.py

Median of 5 runs per batch size, both measured in the same process; prints a markdown table with the ratio.
"""

from __future__ import annotations

import statistics
import time

import torch

from itemtower.model.losses import ContrastiveLoss


def _time(loss: ContrastiveLoss, B: int, dim: int = 128, reps: int = 5) -> float:
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(reps):
        z1 = torch.randn(B, dim, generator=g, requires_grad=True)
        z2 = torch.randn(B, dim, generator=g, requires_grad=True)
        t = time.perf_counter()
        loss(z1, z2, torch.arange(B)).backward()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| batch (items) | pml NTXentLoss (s) | MatrixNTXentLoss (s) | ratio |\n|---|---|---|---|")
    for B in (32, 64, 128, 256):
        pml = _time(ContrastiveLoss(0.3, impl="pml"), B, reps=3 if B >= 256 else 5)
        mat = _time(ContrastiveLoss(0.3, impl="matrix"), B)
        print(f"| {B} | {pml:.4f} | {mat:.4f} | {pml / mat:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
