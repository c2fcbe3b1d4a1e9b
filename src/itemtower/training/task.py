"""TrainTask: what training adds around the served tower (torchrec's retrieval TrainTask, SimCSE's head): the
projection head, NT-Xent on z, and the distillation term on the semantic slice. Exporting the tower can never
carry the head along: the head lives here, not in ItemTower."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from itemtower.features.dataset import collate_items
from itemtower.features.featurize import Featurizer
from itemtower.model import ContrastiveLoss, ItemTower, ProjectionHead, SimilarityDistillLoss, TowerSizes
from itemtower.training.config import TrainConfig
from itemtower.training.data import Teacher, TrainData

__all__ = ["TrainTask", "new_tower", "tower_sizes"]


def tower_sizes(featurizer: Featurizer) -> TowerSizes:
    """The table sizes the fitted featurizer sets (at least one STD query, so a schema without STD fields works)."""
    schema = featurizer.schema
    return TowerSizes(n_fields=max(1, len(schema.std_fields)), n_values=featurizer.n_values,
                      vocab_size=featurizer.tokenizer.vocab_size, n_types=2 + len(schema.re_fields),
                      max_len=featurizer.max_text_tokens)


def new_tower(cfg: TrainConfig, featurizer: Featurizer, photos=None) -> ItemTower:
    """A fresh tower, its slice at scale 1 (training's view; the export writes cfg.tower.sem_scale), its bags'
    weights at log-IDF when cfg.idf_init. With `photos` (TrainData.photos: features, present) that hold at least
    one photo, a photo token of their width, centred on their mean, its projection at their principal directions
    (image_pca; model/image.py)."""
    tcfg = replace(cfg.tower, sem_scale=1.0)
    has_photos = photos is not None and bool(photos[1].any())
    tcfg = replace(tcfg, image_dim=photos[0].shape[1] if has_photos else 0)
    tower = ItemTower(tcfg, tower_sizes(featurizer))
    if has_photos:
        tower.body.image.init_from(torch.from_numpy(photos[0][photos[1]]), pca=cfg.tower.image_pca)
    if cfg.idf_init and featurizer.n_docs:
        _init_idf(tower, featurizer)
    return tower


def _init_idf(tower: ItemTower, featurizer: Featurizer) -> None:
    """Start the bags' token and value weights at smoothed log-IDF (as sklearn's TfidfVectorizer)."""
    def idf(df: list[int]) -> torch.Tensor:
        return torch.log((1 + featurizer.n_docs) / (1 + torch.tensor(df, dtype=torch.float32))) + 1

    tower.body.init_token_weights(idf(featurizer.token_df))
    if featurizer.value_df:
        tower.body.init_value_weights(idf(featurizer.value_df))


class TrainTask(nn.Module):
    """The tower under training, the projection head and the two losses.

    Args:
        tower: built by `new_tower` (before the teacher is loaded: the order of random draws is the run's).
        teacher: e5's vectors for the distillation term, or None (off).
    """

    def __init__(self, tower: ItemTower, cfg: TrainConfig, teacher: Teacher | None = None) -> None:
        super().__init__()
        self.tower = tower
        self.head = ProjectionHead(tower.cfg.h_dim, cfg.proj_dim)
        self.contrastive = ContrastiveLoss(cfg.temperature)
        self.distill = SimilarityDistillLoss(cfg.distill_student_t, cfg.distill_teacher_t)
        self.teacher, self.cfg = teacher, cfg
        self._d_rng = np.random.default_rng(cfg.seed + 2)  # which teacher items each step draws
        self.shard = None  # under torchrun, the Dist (training/distributed.py): step_loss sees every rank's rows

    def forward(self, batch, data: TrainData):
        """step_loss: what DistributedDataParallel's forward runs."""
        return self.step_loss(batch, data)

    def _on_device(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        dev = next(self.head.parameters()).device
        return [t.to(dev, non_blocking=True) for t in tensors]

    def trainable(self) -> list[nn.Parameter]:
        """The optimizer's parameters: the tower's, then the head's (the order resume.pt's optimizer state has)."""
        return list(self.tower.parameters()) + list(self.head.parameters())

    def z(self, *view: torch.Tensor) -> torch.Tensor:
        """A view's tensors ((B, F, M), (B, 2, T)[, photos (B, P), (B,)]) -> z (B, proj_dim): the head over h,
        what NT-Xent compares."""
        return self.head(self.tower(*view))

    def contrastive_loss(self, batch, shard=None) -> torch.Tensor:
        """NT-Xent between the two views' z; items sharing a label are positives. With `shard` (a Dist), over
        every rank's rows in rank order: the global batch, laid out as one process would."""
        v1, v2, y = batch
        (y,) = self._on_device(y)
        z1, z2 = self.z(*self._on_device(*v1)), self.z(*self._on_device(*v2))
        if shard is not None:
            z1, z2, y = shard.gather(z1), shard.gather(z2), shard.gather(y)
        return self.contrastive(z1, z2, y)

    def distill_loss(self, data: TrainData, shard=None) -> torch.Tensor | None:
        """A second, un-augmented batch of teacher items: the slice (or all of h without one) follows e5's
        in-batch neighbourhoods. None without a teacher. With `shard`, every rank draws the same items, embeds
        its share and the loss is over the gathered batch."""
        if self.teacher is None:
            return None
        rows, vecs = self.teacher.rows, self.teacher.vectors
        j = self._d_rng.choice(len(rows), size=min(self.cfg.distill_batch, len(rows)), replace=False)
        mine = j if shard is None else j[shard.share(len(j))]
        ds, dr = self._on_device(*collate_items([data.encoded[rows[k]] for k in mine],
                                                data.featurizer.max_text_tokens))
        student = self.tower.semantic(ds, dr) if self.tower.cfg.sem_dim else self.tower(ds, dr)
        if shard is not None:
            student = shard.gather(student)
        return self.distill(student, torch.from_numpy(vecs[j]))

    def step_loss(self, batch, data: TrainData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(total, contrastive, distillation or None) of one training step (over every rank's rows when
        self.shard is set)."""
        c_loss = self.contrastive_loss(batch, self.shard)
        d_loss = self.distill_loss(data, self.shard)
        total = c_loss if d_loss is None else c_loss + self.cfg.distill_weight * d_loss
        return total, c_loss, d_loss

    @torch.no_grad()
    def val_loss(self, data: TrainData) -> float | None:
        """Mean contrastive loss over the validation views, eval mode (fixed views, no dropout: comparable across
        epochs). None without validation items."""
        if not len(data.val_ds):
            return None
        self.eval()
        losses = [float(self.contrastive_loss(batch)) for batch in data.val_loader()]
        self.train()
        return float(np.mean(losses))

    def served_tower(self) -> ItemTower:
        """The tower as it is served: the slice at cfg.tower.sem_scale (training sees it at 1), same weights."""
        if not self.tower.cfg.sem_dim:
            return self.tower
        served = ItemTower(replace(self.tower.cfg, sem_scale=self.cfg.tower.sem_scale), self.tower.sizes)
        served.load_state_dict(self.tower.state_dict())
        return served
