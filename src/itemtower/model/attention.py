"""CrossBlock: the tower's cross-attention block (STD queries over the text's keys/values), its own module so that
how attention is computed (issue 13: speed) can change without touching the rest of the tower."""

from __future__ import annotations

from torch import nn

from itemtower.model.config import TowerConfig

__all__ = ["CrossBlock"]


class CrossBlock(nn.Module):
    """Pre-norm cross-attention block: queries attend over text, then an FFN; both residual."""

    def __init__(self, cfg: TowerConfig) -> None:
        super().__init__()
        D = cfg.d_model
        self.ln_q, self.ln_kv, self.ln_ffn = nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, cfg.n_heads, dropout=cfg.attn_dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(D, cfg.ffn_mult * D), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.ffn_mult * D, D))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, q, kv, kv_pad, need_weights: bool = False):
        # q (B, F, D), kv (B, S, D), kv_pad (B, S) True = ignore
        kv = self.ln_kv(kv)  # once: keys and values read the same normalised tokens
        out, w = self.attn(self.ln_q(q), kv, kv, key_padding_mask=kv_pad,
                           need_weights=need_weights)  # out (B, F, D), w (B, F, S) head-averaged
        q = q + self.drop(out)
        q = q + self.drop(self.ffn(self.ln_ffn(q)))
        return q, w
