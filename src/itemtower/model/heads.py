"""The projection head (h -> z). Training only: never exported with the tower (SimCLR / SimCSE mlp_only_train)."""

from __future__ import annotations

from torch import nn

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """Linear -> ReLU -> Linear, as in SimCLR."""

    def __init__(self, h_dim: int, proj_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(h_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, proj_dim))

    def forward(self, h):
        return self.net(h)  # (B, proj_dim)
