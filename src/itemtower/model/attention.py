"""CrossBlock: the tower's cross-attention block (STD queries over the text's keys/values), its own module so that
how attention is computed (issue 13: speed) can change without touching the rest of the tower.

The attention is computed in the input space (BENCHMARKS.md 14): with F = 20 queries and T ~ 100 tokens, the
keys/values projection of nn.MultiheadAttention, (B, 1+T, D) -> (B, 1+T, 2D) plus its per-head reshaped copies,
was most of the block's FLOPs and memory traffic. Per head h, q_h . (W_k,h x + b_k,h) = (W_k,h^T q_h) . x + a term
constant over the keys (softmax drops it), and sum_s a_s (W_v,h x_s + b_v,h) = W_v,h (sum_s a_s x_s) + b_v,h
(sum_s a_s = 1). So the queries are folded through W_k (H*F vectors of size D), scored against the normalised
tokens x themselves, the weighted sum is of x, and W_v is applied to H*F vectors afterwards. Same parameters as
nn.MultiheadAttention (self.attn, same state_dict keys), same output and head-averaged weights up to float
rounding (tests/test_attention.py); `form` = "mha" runs nn.MultiheadAttention itself (the reference).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from itemtower.model.config import TowerConfig
from itemtower.model.flops import input_space_is_cheaper

__all__ = ["CrossBlock", "FORMS"]

FORMS = ("auto", "input", "mha")


class CrossBlock(nn.Module):
    """Pre-norm cross-attention block: queries attend over text, then an FFN; both residual.

    `form`: "input" (the folded computation above), "mha" (nn.MultiheadAttention's forward) or "auto" (the
    default: whichever model/flops.py counts as cheaper for this call's F, 1+T, D and heads; "input" whenever
    n_heads * F is well under 2 * d_model, the defaults' case)."""

    def __init__(self, cfg: TowerConfig, form: str = "auto") -> None:
        super().__init__()
        D = cfg.d_model
        self.ln_q, self.ln_kv, self.ln_ffn = nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, cfg.n_heads, dropout=cfg.attn_dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(D, cfg.ffn_mult * D), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.ffn_mult * D, D))
        self.drop = nn.Dropout(cfg.dropout)
        self.form = form

    @property
    def form(self) -> str:
        return self._form

    @form.setter
    def form(self, value: str) -> None:
        if value not in FORMS:
            raise ValueError(f"CrossBlock form must be one of {', '.join(FORMS)}, got {value!r}")
        self._form = value

    def forward(self, q, kv, kv_pad, need_weights: bool = False):
        # q (B, F, D), kv (B, S, D), kv_pad (B, S) True = ignore
        kv = self.ln_kv(kv)  # once: keys and values read the same normalised tokens
        qn = self.ln_q(q)
        form = self.form
        if form == "auto":
            form = "input" if input_space_is_cheaper(q.shape[-1], self.attn.num_heads, q.shape[1],
                                                     kv.shape[1]) else "mha"
        if form == "input":
            out, w = self._attend_input_space(qn, kv, kv_pad, need_weights)
        else:
            out, w = self.attn(qn, kv, kv, key_padding_mask=kv_pad,
                               need_weights=need_weights)  # out (B, F, D), w (B, F, S) head-averaged
        q = q + self.drop(out)
        q = q + self.drop(self.ffn(self.ln_ffn(q)))
        return q, w

    def _attend_input_space(self, qn, x, pad, need_weights: bool):
        """nn.MultiheadAttention(qn, x, x, key_padding_mask=pad) with W_k folded into the queries and W_v applied
        after the weighted sum (module docstring). qn (B, F, D), x (B, S, D) normalised, pad (B, S).

        The per-head products run as bmm with the head as the batch ((H, B*F, dh) @ (H, dh, D)): torch.matmul's
        broadcasting of (B, H, F, dh) @ (H, dh, D) would copy the weight B times (and its gradient back)."""
        mha = self.attn
        B, Fq, D = qn.shape
        H = mha.num_heads
        dh = D // H
        scale = 1.0 / math.sqrt(dh)
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        b_q, _, b_v = mha.in_proj_bias.chunk(3)  # b_k only shifts every score of a query alike: no effect
        qh = F.linear(qn, w_q * scale, b_q * scale).view(B * Fq, H, dh).transpose(0, 1)  # (H, B*F, dh)
        q_in = torch.bmm(qh, w_k.view(H, dh, D))  # (H, B*F, D): W_k,h^T q_h
        q_in = q_in.view(H, B, Fq, D).transpose(0, 1).reshape(B, H * Fq, D)  # queries in (head, field) order
        mask = torch.zeros(B, 1, x.shape[1], dtype=x.dtype, device=x.device).masked_fill_(pad.unsqueeze(1),
                                                                                          float("-inf"))
        a = torch.softmax(torch.baddbmm(mask, q_in, x.transpose(1, 2)), dim=-1)  # (B, H*F, S)
        p = mha.dropout if self.training else 0.0
        if p > 0:  # MHA's weights path drops its (B*H, F, S) weights the same way (same order, same draws)
            a = F.dropout(a, p=p)
        u = torch.bmm(a, x)  # (B, H*F, D): the weighted sum of the tokens themselves
        u = u.view(B, H, Fq, D).transpose(0, 1).reshape(H, B * Fq, D)
        ctx = torch.bmm(u, w_v.view(H, dh, D).transpose(1, 2))  # (H, B*F, dh): W_v,h u_h
        if p > 0:  # dropped weights no longer sum to one: the value bias counts as often as they do
            ctx = ctx + b_v.view(H, 1, dh) * a.view(B, H, Fq, -1).sum(-1).permute(1, 0, 2).reshape(H, B * Fq, 1)
        else:
            ctx = ctx + b_v.view(H, 1, dh)
        out = mha.out_proj(ctx.view(H, B, Fq, dh).permute(1, 2, 0, 3).reshape(B, Fq, D))
        w = a.view(B, H, Fq, -1).mean(1) if need_weights else None
        return out, w
