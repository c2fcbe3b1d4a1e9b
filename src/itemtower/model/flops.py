"""FLOPs per item of the tower, from its config and the text length: the yardstick of benchmarks/speed.py and
BENCHMARKS.md 14 (throughput as a fraction of the measured matmul limit). Plain arithmetic, no torch.

A multiply-add counts 2 FLOPs. Counted: every matmul (the cross-attention's projections, scores and weighted sum,
the FFN, the projection head, the loss's similarity matrix) and the bags' weighted sums. Not counted: embedding
gathers, adds, LayerNorms, softmax, masks. They do few FLOPs but read and write whole (B, T, D) tensors; what they
cost in time is what the profile shows (BENCHMARKS.md 14), and why the model runs below the matmul limit.

The cross-attention is counted as model/attention.py computes it: in the input space (W_k folded into the H*F
queries, W_v after the weighted sum: 8*F*D^2 + 4*H*F*S*D per block, S = 1 + T) when that is cheaper than
nn.MultiheadAttention's form (4*F*D^2 + 4*S*D^2 + 4*F*S*D: the keys/values projection 2*S*D*2D dominates), which
it is with the defaults (H*F = 80 < 2D = 512). Either way the cost grows with the text length, which is why
padding (T of the longest item in a batch) is waste and sorting by length pays.
"""

from __future__ import annotations

from dataclasses import dataclass

from itemtower.model.config import TowerConfig

__all__ = ["Flops", "cross_attention_flops", "forward_flops", "input_space_is_cheaper", "train_step_flops"]


@dataclass(frozen=True)
class Flops:
    """FLOPs per item, by part (total = their sum)."""

    attention: float = 0.0  # q/kv/out projections, scores, weighted sum, over all blocks
    ffn: float = 0.0
    bags: float = 0.0  # the main bag, the value bag, the semantic slice, the queries' value means
    head: float = 0.0  # training only: the projection head
    loss: float = 0.0  # training only: the NT-Xent similarity matrix, per item

    @property
    def total(self) -> float:
        return self.attention + self.ffn + self.bags + self.head + self.loss

    def scaled(self, k: float) -> "Flops":
        return Flops(self.attention * k, self.ffn * k, self.bags * k, self.head * k, self.loss * k)

    def __add__(self, other: "Flops") -> "Flops":
        return Flops(self.attention + other.attention, self.ffn + other.ffn, self.bags + other.bags,
                     self.head + other.head, self.loss + other.loss)


def cross_attention_flops(d_model: int, n_heads: int, n_queries: int, n_keys: float, form: str = "auto") -> float:
    """One block's attention per item: projections, scores and weighted sum. form "mha": nn.MultiheadAttention's
    (keys and values projected); "input": model/attention.py's folded form; "auto": the cheaper of the two (what
    CrossBlock runs by default)."""
    D, H, Fq, S = d_model, n_heads, n_queries, float(n_keys)
    mha = 2 * Fq * D * D + 2 * S * D * 2 * D + 2 * Fq * S * D * 2 + 2 * Fq * D * D
    folded = 2 * Fq * D * D * 4 + 2 * H * Fq * S * D * 2  # q, W_k fold, W_v after, out; scores, weighted sum
    if form not in ("auto", "input", "mha"):
        raise ValueError(f"form must be auto, input or mha, got {form!r}")
    return {"mha": mha, "input": folded}.get(form, min(mha, folded))


def input_space_is_cheaper(d_model: int, n_heads: int, n_queries: int, n_keys: float) -> bool:
    """CrossBlock's choice of form (auto): the folded one when it does fewer FLOPs for this shape."""
    return (cross_attention_flops(d_model, n_heads, n_queries, n_keys, "input")
            <= cross_attention_flops(d_model, n_heads, n_queries, n_keys, "mha"))


def forward_flops(cfg: TowerConfig, n_fields: int, text_len: float, values_per_field: float = 1.0,
                  attention_form: str = "auto") -> Flops:
    """One item through ItemTower.forward (h), its text `text_len` tokens long (as the model sees it: after
    truncation, without padding), `n_fields` STD queries, `values_per_field` value slots per field (the padded
    width M of t_std); the attention counted in `attention_form` (cross_attention_flops)."""
    if n_fields < 0 or text_len < 0 or values_per_field < 0:
        raise ValueError(f"n_fields, text_len and values_per_field must be >= 0, got {n_fields}, {text_len}, "
                         f"{values_per_field}")
    D, Fn, T, M = cfg.d_model, n_fields, float(text_len), float(values_per_field)
    S = 1 + T  # the null slot + the text tokens
    attention = ffn = 0.0
    bags = 2 * Fn * M * D  # queries: the mean of each field's value embeddings
    if cfg.pool != "text":
        attention = cfg.n_blocks * cross_attention_flops(D, cfg.n_heads, Fn, S, attention_form)
        ffn = cfg.n_blocks * 2 * Fn * D * cfg.ffn_mult * D * 2
    if cfg.pool != "query":
        bags += 2 * T * D + (2 * Fn * M * D if cfg.value_bag else 0.0)
    if cfg.sem_dim:
        bags += 2 * T * cfg.sem_dim + 2 * Fn * M * cfg.sem_dim
    return Flops(attention=attention, ffn=ffn, bags=bags)


def train_step_flops(cfg: TowerConfig, n_fields: int, text_len: float, values_per_field: float = 1.0,
                     proj_dim: int = 128, batch_size: int = 256, distill_batch: int = 0,
                     attention_form: str = "auto") -> Flops:
    """One item of one training step: two views, each forward (tower + projection head) and backward (about twice
    the forward: gradients for the inputs and for the weights), so 3x; the NT-Xent similarity matrix of the
    2B views, (2B)^2 * proj_dim multiply-adds per batch, shared out per item; and, with `distill_batch` > 0, the
    distillation batch (the semantic slice alone, no augmentation) per item of the step."""
    h = cfg.h_dim
    one_view = forward_flops(cfg, n_fields, text_len, values_per_field, attention_form)
    one_view = one_view + Flops(head=2 * h * h + 2 * h * proj_dim)
    step = one_view.scaled(2 * 3)
    loss = 3 * 2 * (2 * batch_size) ** 2 * proj_dim / batch_size
    step = step + Flops(loss=loss)
    if distill_batch and cfg.sem_dim:
        T, M = float(text_len), float(values_per_field)
        sem = 2 * T * cfg.sem_dim + 2 * n_fields * M * cfg.sem_dim
        step = step + Flops(bags=3 * sem * distill_batch / batch_size)
    return step
