"""TrainConfig: every training knob, its default, type and help in one place (the CLI's `train` options, TOML
files and `--set` overrides are derived from these fields; knobs.py). The tower's architecture is the nested
`tower` (a TowerConfig, saved in the manifest), the views' augmentations the nested `views`."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from itemtower.features.views import ViewConfig
from itemtower.knobs import from_mapping, knob
from itemtower.model import TowerConfig
from itemtower.model.device import PRECISIONS

__all__ = ["TrainConfig"]

_TOWER_KEYS = {f.name for f in fields(TowerConfig)}


@dataclass(frozen=True)
class TrainConfig:
    catalog: str = knob("", "JSONL catalog to train on")
    out: str = knob("runs/model", "model directory to write")
    schema: str | None = knob(None, "schema JSON; default: inferred from the catalog")
    epochs: int | None = knob(None, "cap on passes over the items; default: as many as the budget allows (10 "
                              "without one)")
    batch_size: int = knob(256, "items per step; the loss sees 2 * batch_size views")
    lr: float = knob(2e-3, "peak learning rate (AdamW; warm-up, then cosine over the run)")
    weight_decay: float = knob(0.01, "AdamW weight decay")
    warmup_frac: float = knob(0.05, "share of the run spent warming the learning rate up")
    grad_clip: float = knob(1.0, "gradient norm clip")
    temperature: float = knob(0.3, "NT-Xent temperature; 0.07 pushes near-duplicate products apart (findings.md)")
    seed: int = knob(0, "seed of every random draw: same seed, same model")
    max_minutes: float | None = knob(10.0, "budget from catalog to model, in minutes: featurizer, teacher encode "
                                     "and training; the run and its schedule end there")
    fast: bool = knob(False, "about 1,000 items, at most 3 epochs: under a minute")
    fast_items: int = knob(1000, "items sampled in fast mode")
    val_frac: float = knob(0.05, "held-out share for the validation loss (at most 2,000 items)")
    patience: int = knob(2, "epochs without validation improvement before stopping")
    use_groups: bool = knob(True, "items sharing `group` share a label (no false negatives); --no-groups: "
                            "ignore `group` (pure self-supervised)", flags=("--groups/--no-groups",))
    resume: bool = knob(False, "continue from OUT/resume.pt (with the featurizer saved there)")
    vocab_size: int = knob(30000, "the tokenizer's target vocabulary (the fitted one may be smaller)")
    min_frequency: int = knob(2, "words seen fewer times are not whole tokens")
    max_text_tokens: int = knob(128, "title + RE tokens per item, after which RE text is truncated")
    colour_blind: bool = knob(False, "embed items without their colour (colour words and the STD colour field "
                              "left out by the featurizer, in training and serving alike): colour variants of a "
                              "product become its nearest neighbours; filter by colour in the service instead")
    proj_dim: int = knob(128, "projection head output (z): the head is training's, never exported")
    idf_init: bool = knob(True, "start the token bag at log-IDF weights: rare words (model names, variant words) "
                          "count most; --no-idf-init for similarity by kind of product, whose head nouns are "
                          "common words (BENCHMARKS.md 10)")
    distill_items: int = knob(3000, "distil multilingual-e5-small: it encodes this many titles once (cached under "
                              "~/.cache/itemtower; the encode counts in the budget) and h's semantic slice "
                              "(tower.sem_dim) learns their neighbourhoods, or the whole h when sem_dim = 0 "
                              "(BENCHMARKS.md 13). 0: off")
    distill_weight: float = knob(1.0, "weight of the distillation loss beside the contrastive loss")
    distill_batch: int = knob(256, "teacher items per step (a second, un-augmented batch)")
    distill_student_t: float = knob(0.2, "student softmax temperature of the distillation: softer than the "
                                    "teacher's, so the slice learns who is near, not exact cosines (BENCHMARKS.md "
                                    "13d: the slice alone on Musinsa 0.797 at 0.05, 0.841 at 0.2)")
    distill_teacher_t: float = knob(0.01, "teacher softmax temperature: e5 cosines of titles sit in 0.78-0.95; at "
                                    "0.01, ~10 of 256 count")
    auto_sem_scale: bool = knob(True, "serve the semantic slice at the scale (0.25-4) where h's top-10 neighbours "
                                "agree most with e5's on the teacher's titles, chosen when training ends "
                                "(training/slice_weight.py, BENCHMARKS.md 13f): label-free, per catalog; "
                                "--no-auto-sem-scale serves --sem-scale as set")
    cache_dir: str | None = knob(None, "where distillation keeps e5's vectors (default ~/.cache/itemtower)")
    images: bool = knob(True, "use the items' photos (`image`) when the catalog has them: features (cached) before "
                        "training, inside the budget, and a photo token in the tower (BENCHMARKS.md 12f); "
                        "--no-images: text only", flags=("--images/--no-images",))
    image_cache: str | None = knob(None, "photo feature cache, by file content (default CACHE_DIR/images, "
                                   "~/.cache/itemtower/images)")
    progress: bool = knob(True, "progress bars")
    device: str = knob("cpu", "where the tower trains: cpu (the tested path), cuda (an error without a GPU), auto "
                       "(cuda when present); under torchrun, each process takes cuda:LOCAL_RANK and nccl",
                       choices=("cpu", "cuda", "auto"))
    precision: str = knob("auto", "the tower's matmuls: auto (bf16 autocast where the device has bf16 kernels, "
                          "AVX-512 BF16 / AMX CPUs and Ampere+ GPUs; fp32 elsewhere), fp32, bf16; the losses "
                          "stay fp32 (BENCHMARKS.md 14g)", choices=PRECISIONS)
    views: ViewConfig = field(default_factory=ViewConfig)  # augmentations of the two views ([views] in TOML)
    tower: TowerConfig = field(default_factory=TowerConfig)  # the served model's architecture ([tower] in TOML)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = True, where: str = "") -> "TrainConfig":
        """Build from a dict with nested "tower" / "views" dicts.

        A tower knob at the top level (d_model=64, the layout of train_config.json and manifests before issue 11,
        and a short form for benchmarks' --set) goes into "tower". strict (what a person wrote): an unknown key,
        or a knob given both ways, is a ValueError naming `where`. Not strict (a copy written by an older version,
        e.g. a manifest): keys this version lacks are dropped with a warning.
        """
        d = dict(d)
        flat = sorted(k for k in d if k in _TOWER_KEYS)
        if flat:
            tower = d.get("tower") or {}
            tower = tower.to_dict() if isinstance(tower, TowerConfig) else dict(tower)
            both = [k for k in flat if k in tower]
            if both and strict:
                raise ValueError(f"{', '.join(both)} given both at the top level and under tower"
                                 + (f" in {where}" if where else ""))
            d["tower"] = {**{k: d.pop(k) for k in flat}, **tower}
        return from_mapping(cls, d, strict=strict, where=where)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """A TOML file of TrainConfig keys ([tower] and [views] tables for the nested ones); unknown keys are an
        error naming the file."""
        with open(path, "rb") as f:
            d = tomllib.load(f)
        return cls.from_dict({**d, **overrides}, where=str(path))

    def __post_init__(self) -> None:
        if self.distill_items < 0 or self.distill_batch < 2 or self.distill_weight < 0:
            raise ValueError("distill_items must be >= 0, distill_batch >= 2 and distill_weight >= 0")
        if (self.epochs is not None and self.epochs < 1) or (self.max_minutes is not None and self.max_minutes <= 0):
            raise ValueError(f"epochs must be >= 1 or None and max_minutes > 0 or None, got {self.epochs}, "
                             f"{self.max_minutes}")

    def epoch_cap(self) -> int | None:
        """Passes over the data that end the run: the explicit cap (3 at most in fast mode), none when a time
        budget decides alone, 10 with neither."""
        cap = self.epochs if self.epochs is not None else (None if self.max_minutes else 10)
        return min(cap or 3, 3) if self.fast else cap
