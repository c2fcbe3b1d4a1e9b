"""TowerConfig (the architecture you choose) and TowerSizes (what the fitted featurizer says): both are saved in
the manifest and together rebuild an ItemTower.

The two are apart because they come from different places: a TowerConfig is requested (TrainConfig.tower, the
CLI, a TOML file), TowerSizes are measured on the catalog (vocabulary actually fitted, positions actually used).
The projection head is training's (TrainConfig.proj_dim), not the served model's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from itemtower.knobs import from_mapping, knob

__all__ = ["TowerConfig", "TowerSizes", "POOLS"]

POOLS = ("query+text", "text", "query")


@dataclass(frozen=True)
class TowerConfig:
    d_model: int = knob(256, "width of every token; h has 2 * d_model dims with pool=query+text")
    n_heads: int = knob(4, "attention heads in each cross-attention block")
    n_blocks: int = knob(1, "cross-attention blocks (STD queries over text keys/values)")
    ffn_mult: int = knob(2, "FFN hidden width = ffn_mult * d_model")
    dropout: float = knob(0.1, "model dropout (queries, FFN): with two forward passes this is SimCSE's noise")
    embed_dropout: float = knob(0.0, "dropout on every text token embedding (B, T, D): the costliest op of a CPU "
                                "step")
    attn_dropout: float = knob(0.0, "dropout on the attention weights")
    bag_dropout: float = knob(0.1, "dropout on the pooled bag vector (B, D): cheap noise for the text half")
    pool: str = knob("query+text", "query+text (cross-attention + bag, explainable) or text (the bag alone: 4-5x "
                     "more steps per CPU minute; BENCHMARKS.md 7c); query: pooled queries only (the first sketch)",
                     choices=POOLS)
    query_gate_init: float = knob(0.1, "initial per-dim scale of the query half of h (pool=query+text)")
    value_bag: bool = knob(True, "the bag also pools the STD value embeddings (weights start at value IDF), so "
                           "STD values reach h without the cross-attention (and with pool=text)")
    sem_dim: int = knob(128, "width of h's semantic slice: a second bag (own token and value tables, flat start) "
                        "over the title and STD values with its own LayerNorm, the only part the e5 distillation "
                        "teaches (BENCHMARKS.md 13); 0: no slice (models before issue 9 have none)")
    sem_scale: float = knob(1.0, "the slice's scale in the served h after its LayerNorm: its share of the cosine "
                            "is sem_scale^2 * sem_dim / (main dims + sem_scale^2 * sem_dim); training sees it at "
                            "1, so the served mix can be chosen (and changed) afterwards")
    image_dim: int = knob(0, "width of the photo feature (1280: EfficientNet-Lite0) fed as one more key/value token "
                          "(model/image.py); 0: no photo (set by training when the catalog has photos)")
    image_dropout: float = knob(0.2, "training: chance that a view loses its photo token, so the text must carry "
                                "some pairs alone (BENCHMARKS.md 12f)")
    image_bag: float = knob(0.65, "initial weight (learned) of the photo in h's bag part beside the unit-RMS text "
                            "bag (measured, Recall@10 of Myntra variants: 0.871 at 0.65 and 0.8, 0.861 at 0.5, 0.824 "
                            "through the attention alone); 0: the photo only as a key/value token (BENCHMARKS.md 12f)")
    image_pca: bool = knob(True, "training starts the photo projection at the catalog photos' top principal "
                           "directions (else random): the token's cosines start near the full feature's")

    def __post_init__(self) -> None:
        if self.image_dim < 0 or not 0 <= self.image_dropout < 1 or self.image_bag < 0:
            raise ValueError(f"image_dim must be >= 0, image_dropout in [0, 1) and image_bag >= 0, got "
                             f"{self.image_dim}, {self.image_dropout}, {self.image_bag}")
        if self.pool not in POOLS:
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
        return from_mapping(cls, d)


@dataclass(frozen=True)
class TowerSizes:
    """Table sizes only the fitted featurizer knows (training derives them from it)."""

    n_fields: int  # STD fields: one query token each
    n_values: int  # size of the shared "field=value" vocabulary (incl. PAD, MASK, UNK)
    vocab_size: int  # the fitted tokenizer's vocabulary (TrainConfig.vocab_size is only its target)
    n_types: int  # text segment types: 0 pad, 1 title, 2 + i for RE field i
    max_len: int = 128  # text positions (TrainConfig.max_text_tokens at fit time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TowerSizes":
        return from_mapping(cls, d)
