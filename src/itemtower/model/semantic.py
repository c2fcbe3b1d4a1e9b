"""SemanticBag: the input of h's semantic slice (issue 9), the only part the e5 distillation teaches."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from itemtower.ids import TOKEN_PAD, TYPE_TITLE, VALUE_MASK, VALUE_PAD
from itemtower.model.config import TowerConfig, TowerSizes

__all__ = ["SemanticBag"]


class SemanticBag(nn.Module):
    """The semantic slice's input: a weighted mean of its own title-token and STD-value embeddings (sem_dim wide).

    Its own tables, so that what the teacher pulls together (words of one kind of product) does not move the main
    bag's tokens, whose job is telling near-identical products apart; the title only, because the teacher reads
    titles (a long description would drown them); flat starting weights, because the word naming the kind of
    product is a common one (BENCHMARKS.md 10: log-IDF cost Musinsa 0.036)."""

    def __init__(self, cfg: TowerConfig, sizes: TowerSizes) -> None:
        super().__init__()
        S = cfg.sem_dim
        self.tok_emb = nn.Embedding(sizes.vocab_size, S, padding_idx=TOKEN_PAD)
        self.value_emb = nn.Embedding(sizes.n_values, S, padding_idx=VALUE_PAD)
        self.tok_weight = nn.Embedding(sizes.vocab_size, 1)
        self.value_weight = nn.Embedding(sizes.n_values, 1)
        for emb in (self.tok_emb, self.value_emb):
            nn.init.normal_(emb.weight, std=1.0 / math.sqrt(S))
            nn.init.zeros_(emb.weight[0])
        for wt in (self.tok_weight, self.value_weight):
            nn.init.constant_(wt.weight, math.log(math.e - 1))  # softplus -> 1.0: a plain mean

    def forward(self, t_std: torch.Tensor, t_re: torch.Tensor) -> torch.Tensor:
        """(B, F, M), (B, 2, T) -> (B, sem_dim). Reads title tokens (type 1) and STD values (ids above VALUE_MASK)."""
        ids, types = t_re[:, 0], t_re[:, 1]
        w = F.softplus(self.tok_weight(ids).squeeze(-1)).masked_fill(types != TYPE_TITLE, 0.0)  # (B, T)
        wv = F.softplus(self.value_weight(t_std).squeeze(-1)).masked_fill(t_std <= VALUE_MASK, 0.0)  # (B, F, M)
        bag = (torch.bmm(w.unsqueeze(1), self.tok_emb(ids)).squeeze(1)  # a matmul: no (B, T, D) product
               + torch.einsum("bfm,bfmd->bd", wv, self.value_emb(t_std)))
        return bag / (w.sum(1) + wv.sum((1, 2))).unsqueeze(-1).clamp_min(1e-6)
