"""TowerConfig: everything needed to rebuild an ItemTower (saved in the manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["TowerConfig", "reject_unknown_keys"]


def reject_unknown_keys(cls: type, d: dict[str, Any]) -> None:
    """A config dict with a key the dataclass lacks is an error (a typo must not be silently ignored)."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")


@dataclass(frozen=True)
class TowerConfig:
    n_fields: int  # STD fields: one query token each
    n_values: int  # size of the shared "field=value" vocabulary (incl. PAD, MASK, UNK)
    vocab_size: int  # text tokenizer vocabulary
    n_types: int  # text segment types: 0 pad, 1 title, 2 + i for RE field i
    d_model: int = 256  # width of every token; h has 2 * d_model dims with pool="query+text"
    n_heads: int = 4  # attention heads in each cross-attention block
    n_blocks: int = 1  # cross-attention blocks (STD queries over text keys/values)
    ffn_mult: int = 2  # FFN hidden width = ffn_mult * d_model
    dropout: float = 0.1  # model dropout (queries, FFN): with two forward passes this is SimCSE's noise
    embed_dropout: float = 0.0  # dropout on every text token embedding (B, T, D): the costliest op of a CPU step
    attn_dropout: float = 0.0  # dropout on the attention weights
    bag_dropout: float = 0.1  # dropout on the pooled bag vector (B, D): cheap noise for the text half
    max_len: int = 128  # text positions
    pool: str = "query+text"  # "query": pooled query outputs only (the first sketch); "text": IDF-weighted
    #                           token bag only; "query+text": both, concatenated (keeps the title's lexical identity)
    proj_dim: int = 128  # projection head output (z), training only
    query_gate_init: float = 0.1  # initial per-dim scale of the query half of h (pool="query+text")
    value_bag: bool = True  # the bag also pools the STD value embeddings (weights start at value IDF), so STD
    #                          values reach h without the cross-attention (and with pool="text")
    sem_dim: int = 0  # > 0: a semantic slice of h, a second bag (own token and value tables, flat start) over the
    #                   title and STD values, with its own LayerNorm; the e5 distillation teaches this slice only,
    #                   so the variant signal of the main part is left alone. 0 (models before it): no slice
    sem_scale: float = 1.0  # the slice's scale in h after its LayerNorm: its share of the cosine is
    #                         sem_scale^2 * sem_dim / (main dims + sem_scale^2 * sem_dim)

    def __post_init__(self) -> None:
        if self.pool not in ("query", "text", "query+text"):
            raise ValueError(f"pool must be 'query', 'text' or 'query+text', not {self.pool!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.sem_dim < 0 or self.sem_scale < 0:
            raise ValueError(f"sem_dim and sem_scale must be >= 0, got {self.sem_dim}, {self.sem_scale}")

    @property
    def main_dim(self) -> int:
        """Width of the main part of h (bag and/or pooled queries), before the semantic slice."""
        return 2 * self.d_model if self.pool == "query+text" else self.d_model

    @property
    def h_dim(self) -> int:
        return self.main_dim + self.sem_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TowerConfig":
        reject_unknown_keys(cls, d)
        return cls(**d)
