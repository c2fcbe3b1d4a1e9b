"""ImageToken: an item's photo feature (EfficientNet-Lite0, 1280-d) as one more Key/Value token of the tower, and
optionally as a share of h's bag part (issue 12; BENCHMARKS.md 12f).

    image (B, image_dim) float, present (B,) bool
    x   = (image - mean) / |image - mean|            the centring images/match.py measured (raw features are all
                                                     positive after Swish: every raw cosine is high)
    tok = proj(x) + type_vec                           (B, D): the "image" type is its own learned vector (a type
                                                     embedding with one row: the text's type table keeps its size)
    absent photo -> the token is masked out of the attention and adds nothing to the bag (no "no photo" vector:
    an item without a photo embeds exactly as its text says)

`mean` is a buffer (saved in pth1): the training catalog's mean feature, set once before training, so that serving
centres a new photo the way training did. In training mode each row loses its photo with probability
`image_dropout`: the two views of an item then differ in the photo too, and the text must carry the pair alone on
some rows (otherwise the shared photo solves every positive pair and the text learns nothing).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ImageToken"]


class ImageToken(nn.Module):
    """Photo features -> (token (B, D), present (B,) bool after training-time dropout)."""

    def __init__(self, image_dim: int, d_model: int, dropout: float = 0.0, bag_init: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(image_dim))
        self.proj = nn.Linear(image_dim, d_model)
        nn.init.normal_(self.proj.weight, std=1.0 / math.sqrt(d_model))  # unit-norm x -> a unit-scale token
        nn.init.zeros_(self.proj.bias)
        self.type_vec = nn.Parameter(0.02 * torch.randn(d_model))  # as the text type table starts
        self.dropout = dropout
        # the photo's weight in the bag part, relative to the text bag (both at unit RMS): learned, |.| is used
        self.bag_gate = nn.Parameter(torch.tensor(float(bag_init))) if bag_init > 0 else None

    @torch.no_grad()
    def set_mean(self, mean: torch.Tensor) -> None:
        """The catalog's mean photo feature (image_dim,): what every feature is centred on."""
        self.mean.copy_(mean.to(self.mean))

    @torch.no_grad()
    def init_from(self, features: torch.Tensor, pca: bool = True, max_rows: int = 20_000) -> None:
        """Centre on the photos' mean and (pca) start the projection at their top principal directions, so that
        the token's cosines start close to the full feature's (on Myntra's photos, Recall@10 of variants by photo
        alone: 0.611 with 1280 dims, 0.597 with the top 256 directions, 0.574 with a random 256-d projection).
        features: (N, image_dim) of the catalog's photos; at most `max_rows` evenly spaced rows are used."""
        step = max(1, len(features) // max_rows)
        x = features[::step].to(self.mean.dtype)
        self.set_mean(x.mean(0))
        if not pca or len(x) < 2:
            return
        x = x - self.mean
        x = x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + 1e-12)
        _, _, vh = torch.linalg.svd(x - x.mean(0), full_matrices=False)  # (k, image_dim), k = min(N, dim)
        k = min(vh.shape[0], self.proj.weight.shape[0])
        self.proj.weight[:k] = vh[:k]

    def forward(self, image: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.to(self.mean.dtype) - self.mean
        x = x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + 1e-12)
        if self.training and self.dropout > 0:
            present = present & (torch.rand(present.shape, device=present.device) >= self.dropout)
        tok = self.proj(x) * present.unsqueeze(-1).to(x.dtype)
        return tok, present

    def bag_share(self, tok: torch.Tensor, present: torch.Tensor) -> torch.Tensor | None:
        """The photo's addition to the unit-RMS bag (B, D), zero rows without a photo; None without a bag gate."""
        if self.bag_gate is None:
            return None
        unit = tok * torch.rsqrt(tok.pow(2).mean(-1, keepdim=True) + 1e-8)
        return self.bag_gate.abs() * unit * present.unsqueeze(-1).to(tok.dtype)
