"""The contrastive loss: pytorch-metric-learning's NTXentLoss on cat(z1, z2) with labels cat(y, y).

This is the SimCLR 2B-way form: each of the 2B vectors has as positives every other vector with its label (its
other view, and the views of items in the same group) and as negatives everything else in the batch.
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.losses import NTXentLoss
from torch import nn

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(nn.Module):
    def __init__(self, temperature: float = 0.3) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.loss = NTXentLoss(temperature=temperature)  # cosine similarity inside: z need not be normalised

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z1, z2: (B, P) the two views; labels: (B,) item or group ids. Returns a scalar."""
        return self.loss(torch.cat([z1, z2]), torch.cat([labels, labels]))
