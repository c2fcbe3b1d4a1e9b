"""ItemTower: STD field tokens ask (Query), RE phrases and title tokens answer (Key/Value); output h.

    t_std (B, F, M) -> field_emb + mean(value_emb)            -> queries (B, F, D)
    t_re  (B, 2, T) -> tok_emb + type_emb + pos_emb           -> keys/values (B, 1 + T, D)  (+ a null slot)
    n_blocks x [queries += CrossAttn(LN(q), LN(kv)); queries += FFN(LN(q))]
    bag    = IDF-weighted mean over text tokens (tok_emb) and STD values (value_emb, when value_bag)
    h_body = cat(bag, gate * mean_F(queries))  (B, 2D)                          <- pth1 (the body)
    h = LayerNorm(h_body)                                                      <- pth2 (the final norm)

With image_dim > 0 (a catalog with photos, issue 12) the photo feature is one more key/value token after the null
slot, masked for items without a photo, and with image_bag > 0 also a learned share of the bag (model/image.py):
    image (B, image_dim), image_mask (B,) bool  -> keys/values (B, 2 + T, D)

With sem_dim > 0 (the default since issue 9) the body also returns a semantic slice, a second bag over the title
and the STD values with its own tables, and the final norm is per part:
    h = cat(LayerNorm(h_body), sem_scale * LayerNorm_sem(sem_bag))  (B, 2D + sem_dim)
Only that slice learns e5's neighbourhoods (train.py); the main part keeps the lexical, variant-telling signal.

The weighted token bag is there because pooling the queries alone loses the title's lexical identity
(findings.md: 0.66 -> 0.46 Recall@10 when trained); its per-token weights start at log-IDF and are learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from itemtower.ids import TOKEN_PAD, TYPE_PAD, VALUE_MASK, VALUE_PAD
from itemtower.model.attention import CrossBlock
from itemtower.model.config import TowerConfig, TowerSizes
from itemtower.model.image import ImageToken
from itemtower.model.semantic import SemanticBag

__all__ = ["CrossBlock", "ItemTower", "SemanticBag", "SlicedNorm", "TowerBody"]


class TowerBody(nn.Module):
    """Everything before the final normalization (saved as pth1)."""

    def __init__(self, cfg: TowerConfig, sizes: TowerSizes) -> None:
        super().__init__()
        D = cfg.d_model
        self.cfg, self.sizes = cfg, sizes
        self.field_emb = nn.Embedding(sizes.n_fields, D)
        self.value_emb = nn.Embedding(sizes.n_values, D, padding_idx=VALUE_PAD)
        self.tok_emb = nn.Embedding(sizes.vocab_size, D, padding_idx=TOKEN_PAD)
        self.type_emb = nn.Embedding(sizes.n_types, D)
        self.pos_emb = nn.Embedding(sizes.max_len, D)
        self.null_kv = nn.Parameter(torch.zeros(1, 1, D))  # lets a query attend to "nothing"; no empty softmax
        self.tok_weight = nn.Embedding(sizes.vocab_size, 1)  # raw weight; softplus(.) is the pooling weight
        self.value_weight = nn.Embedding(sizes.n_values, 1) if cfg.value_bag else None  # same, for STD values
        self.blocks = nn.ModuleList(CrossBlock(cfg) for _ in range(cfg.n_blocks))
        # LayerScale-style gate on the query half of h: it starts small so that h starts as the token bag (a strong
        # untrained baseline, findings.md) and the cross-attention earns its share as training goes.
        self.query_gate = nn.Parameter(torch.full((D,), cfg.query_gate_init))
        self.drop = nn.Dropout(cfg.dropout)
        self.embed_drop = nn.Dropout(cfg.embed_dropout)
        self.bag_drop = nn.Dropout(cfg.bag_dropout)
        self.sem = SemanticBag(cfg, sizes) if cfg.sem_dim else None
        self.image = (ImageToken(cfg.image_dim, D, cfg.image_dropout, cfg.image_bag) if cfg.image_dim else None)
        bag_tables = (self.tok_emb, self.value_emb) if cfg.value_bag else (self.tok_emb,)
        for emb in (self.field_emb, self.value_emb, self.tok_emb, self.type_emb, self.pos_emb):
            # what the bag pools starts at unit scale per vector (a random projection of a bag of words)
            nn.init.normal_(emb.weight, std=1.0 / math.sqrt(D) if emb in bag_tables else 0.02)
        nn.init.zeros_(self.value_emb.weight[0])
        nn.init.zeros_(self.tok_emb.weight[0])
        for wt in (self.tok_weight, self.value_weight):
            if wt is not None:
                nn.init.constant_(wt.weight, math.log(math.e - 1))  # softplus -> 1.0: a plain mean

    @torch.no_grad()
    def init_token_weights(self, idf: torch.Tensor) -> None:
        """Start the text pooling at IDF weights (idf: (V,) positive): template words count less from step 0."""
        _set_softplus(self.tok_weight, idf)

    @torch.no_grad()
    def init_value_weights(self, idf: torch.Tensor) -> None:
        """Start the STD values' bag weights at IDF (idf: (n_values,) positive); no-op without value_bag."""
        if self.value_weight is not None:
            _set_softplus(self.value_weight, idf)

    def _photo(self, image, image_mask, B: int, device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The photo token and its presence, or None (no photo module, or a batch given without photos: every
        row is then photo-less, as a text-only tower)."""
        if self.image is None or image is None:
            return None
        present = (torch.ones(B, dtype=torch.bool, device=device) if image_mask is None
                   else image_mask.to(device=device, dtype=torch.bool))
        return self.image(image.to(device), present)

    def forward(self, t_std: torch.Tensor, t_re: torch.Tensor, image: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None, need_weights: bool = False):
        cfg = self.cfg
        B, Fn, M = t_std.shape
        ids, types = t_re[:, 0, : self.sizes.max_len], t_re[:, 1, : self.sizes.max_len]  # (B, T) each
        T = ids.shape[1]
        # STD queries: field embedding + mean of the field's value embeddings (PAD rows are zero).
        val = self.value_emb(t_std)  # (B, F, M, D)
        n_val = (t_std != VALUE_PAD).sum(-1, keepdim=True).clamp_min(1)  # (B, F, 1)
        q = self.field_emb.weight.unsqueeze(0) + val.sum(2) / n_val  # (B, F, D)
        q = self.drop(q)
        pad = types == TYPE_PAD  # (B, T)
        tok = self.embed_drop(self.tok_emb(ids))  # (B, T, D); one dropout mask for both paths (bernoulli is costly)
        parts = []
        photo = self._photo(image, image_mask, B, ids.device)  # (token (B, D), present (B,)) or None
        if cfg.pool != "text":
            pos = torch.arange(T, device=ids.device)
            kv = tok + self.type_emb(types) + self.pos_emb(pos).unsqueeze(0)  # (B, T, D)
            kv = torch.cat([self.null_kv.expand(B, 1, -1), kv], 1)  # (B, 1 + T, D)
            kv_pad = torch.cat([torch.zeros(B, 1, dtype=torch.bool, device=ids.device), pad], 1)  # (B, 1 + T)
            if photo is not None:  # [null, photo, text]: the photo slot is masked where there is none
                kv = torch.cat([kv[:, :1], (photo[0] + self.image.type_vec).unsqueeze(1), kv[:, 1:]], 1)
                kv_pad = torch.cat([kv_pad[:, :1], ~photo[1].unsqueeze(1), kv_pad[:, 1:]], 1)
            weights = []
            for blk in self.blocks:
                q, w = blk(q, kv, kv_pad, need_weights)
                weights.append(w)
            q_pool = q.mean(1)  # (B, D)
            if cfg.pool == "query+text":
                q_pool = _unit_rms(q_pool) * self.query_gate
            parts.append(q_pool)
        if cfg.pool != "query":  # the bag goes first in h: cat(text, query)
            w = F.softplus(self.tok_weight(ids).squeeze(-1)).masked_fill(pad, 0.0)  # (B, T)
            bag = torch.bmm(w.unsqueeze(1), tok).squeeze(1)  # (B, D), as a matmul: no (B, T, D) product
            w_sum = w.sum(1, keepdim=True)
            if self.value_weight is not None:
                # value ids 0 (PAD) and 1 (MASK, a masked view) carry nothing: weight 0 (data/featurize.py ids)
                wv = F.softplus(self.value_weight(t_std).squeeze(-1)).masked_fill(t_std <= VALUE_MASK, 0.0)  # (B, F, M)
                bag = bag + torch.einsum("bfm,bfmd->bd", wv, self.embed_drop(val))
                w_sum = w_sum + wv.sum((1, 2)).unsqueeze(-1)
            bag = self.bag_drop(bag / w_sum.clamp_min(1e-6))
            share = self.image.bag_share(*photo) if photo is not None else None
            if share is not None:
                bag = _unit_rms(bag) + share
            parts.insert(0, _unit_rms(bag) if cfg.pool == "query+text" else bag)
        if self.sem is not None:
            parts.append(self.sem(t_std, t_re))
        out = torch.cat(parts, -1)  # (B, h_dim)
        if need_weights:
            return out, weights if cfg.pool != "text" else []
        return out


class SlicedNorm(nn.Module):
    """The final norm of a tower with a semantic slice: one LayerNorm per part, the slice scaled by sem_scale
    (a fixed number from the config, not learned: it sets how much the slice counts in h's cosine)."""

    def __init__(self, main_dim: int, sem_dim: int, sem_scale: float) -> None:
        super().__init__()
        self.main_dim, self.sem_scale = main_dim, sem_scale
        self.main, self.sem = nn.LayerNorm(main_dim), nn.LayerNorm(sem_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.main_dim
        return torch.cat([self.main(x[:, :m]), self.sem_scale * self.sem(x[:, m:])], -1)


def _set_softplus(weight: nn.Embedding, target: torch.Tensor) -> None:
    """Set a (N, 1) raw-weight table so that softplus(raw) == target (positive, clamped at 1e-3)."""
    target = target.clamp_min(1e-3).to(weight.weight)
    weight.weight.copy_(torch.log(torch.expm1(target)).unsqueeze(1))


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    """Scale each row to unit RMS, so that the two halves of h are on one scale and the gate alone sets their mix."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-8)


class ItemTower(nn.Module):
    """The served model: body (pth1) + final LayerNorm (pth2). `forward` returns h; no projection head here."""

    def __init__(self, cfg: TowerConfig, sizes: TowerSizes) -> None:
        super().__init__()
        self.cfg, self.sizes = cfg, sizes
        self.body = TowerBody(cfg, sizes)
        # without a slice the norm is the plain LayerNorm models before issue 9 saved (same pth2 keys)
        self.norm = (SlicedNorm(cfg.main_dim, cfg.sem_dim, cfg.sem_scale) if cfg.sem_dim
                     else nn.LayerNorm(cfg.h_dim))

    def forward(self, t_std: torch.Tensor, t_re: torch.Tensor, image: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F, M), (B, 2, T) long [, (B, image_dim) float, (B,) bool] -> h (B, h_dim), not L2-normalised."""
        return self.norm(self.body(t_std, t_re, image, image_mask))

    def semantic(self, t_std: torch.Tensor, t_re: torch.Tensor) -> torch.Tensor:
        """The semantic slice alone, normalised as in h (B, sem_dim): what the distillation teaches. Cheap: it
        skips the cross-attention and the main bag."""
        if self.body.sem is None:
            raise ValueError("this tower has no semantic slice (sem_dim = 0)")
        return self.norm.sem(self.body.sem(t_std, t_re))

    @torch.no_grad()
    def attention(self, t_std: torch.Tensor, t_re: torch.Tensor, image: torch.Tensor | None = None,
                  image_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per block, head-averaged attention of each STD query over [null] + text tokens: (B, F, 1 + T); with a
        photo module and photos given, over [null, photo] + text tokens: (B, F, 2 + T)."""
        _, weights = self.body(t_std, t_re, image, image_mask, need_weights=True)
        return weights
