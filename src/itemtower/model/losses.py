"""The contrastive loss: NT-Xent on cat(z1, z2) with labels cat(y, y) (the SimCLR 2B-way form).

Each of the 2B vectors has as positives every other vector with its label (its other view, and the views of items
in the same group) and as negatives everything with another label. For each positive pair (a, p):

    loss_ap = -log( e^{s_ap / T} / (e^{s_ap / T} + sum_{n: y_n != y_a} e^{s_an / T}) ),   s = cosine similarity

averaged over positive pairs: exactly pytorch-metric-learning's `NTXentLoss`. Its implementation, though, builds a
(positive pairs x all negative pairs) matrix: (2B) x (2B)^2 floats, 133M at B = 256, ten seconds a step on two
cores. `MatrixNTXentLoss` computes the same numbers from the (2B x 2B) similarity matrix, inside pml's own
`GenericPairLoss` (same distance, reducer and miner hooks, usable by its `DistributedLossWrapper`), and the tests
check it against pml's `NTXentLoss` and a naive loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import GenericPairLoss, NTXentLoss
from pytorch_metric_learning.distances import CosineSimilarity
from torch import nn

__all__ = ["ContrastiveLoss", "MatrixNTXentLoss", "SimilarityDistillLoss"]


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """bf16 / fp16 (a tower under autocast) -> fp32; fp32 and fp64 as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


class MatrixNTXentLoss(GenericPairLoss):
    """pml's NTXentLoss, computed on the similarity matrix: O(N^2) memory instead of O(N^3)."""

    def __init__(self, temperature: float = 0.07, **kwargs) -> None:
        super().__init__(mat_based_loss=True, **kwargs)
        self.temperature = temperature
        self.add_to_recordable_attributes(list_of_names=["temperature"], is_stat=False)

    def _compute_loss(self, mat, pos_mask, neg_mask):
        if not self.distance.is_inverted:  # a distance, not a similarity: larger = farther
            mat = -mat
        s = mat / self.temperature  # (N, N)
        a, p = torch.nonzero(pos_mask, as_tuple=True)
        if len(a) == 0:
            return self.zero_losses()
        neg = s.masked_fill(neg_mask == 0, float("-inf"))  # (N, N), -inf where not a negative
        # Per-anchor max over positives and negatives, for a stable exp (pml does the same per pair).
        row_max = torch.maximum(s.masked_fill(pos_mask == 0, float("-inf")).amax(1), neg.amax(1)).detach()
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        neg_sum = torch.exp(neg - row_max[:, None]).sum(1)  # (N,)
        sp = s[a, p] - row_max[a]  # (P,)
        losses = torch.logaddexp(sp, torch.log(neg_sum[a])) - sp  # -log(e^sp / (e^sp + neg_sum))
        return {"loss": {"losses": losses, "indices": (a, p), "reduction_type": "pos_pair"}}

    def get_default_distance(self):
        return CosineSimilarity()


class ContrastiveLoss(nn.Module):
    """NT-Xent over two views. `impl="pml"` uses pml's NTXentLoss itself (small batches only; tests)."""

    def __init__(self, temperature: float = 0.3, impl: str = "matrix") -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if impl not in ("matrix", "pml"):
            raise ValueError(f"impl must be 'matrix' or 'pml', not {impl!r}")
        self.temperature = temperature
        self.loss = (MatrixNTXentLoss if impl == "matrix" else NTXentLoss)(temperature=temperature)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z1, z2: (B, P) the two views; labels: (B,) item or group ids. Returns a scalar, computed in fp32
        whatever autocast the tower ran under (similarities / 0.05 in bf16 would be off by ~0.1)."""
        with torch.autocast(z1.device.type, enabled=False):
            return self.loss(_at_least_fp32(torch.cat([z1, z2])), torch.cat([labels, labels]))


class SimilarityDistillLoss(nn.Module):
    """Relational distillation (as in CompRess / SEED): over a batch, each item's softmax over its cosine
    similarities to the other items (student: h, temperature `student_t`) follows the teacher's (a frozen
    encoder's vectors, temperature `teacher_t`): KL(teacher || student), averaged over the rows.

    The student keeps its own space and width; only who-is-near-whom is taught. pytorch-metric-learning has no
    distillation loss, hence this one.
    """

    def __init__(self, student_t: float = 0.2, teacher_t: float = 0.01) -> None:
        super().__init__()
        if student_t <= 0 or teacher_t <= 0:
            raise ValueError(f"temperatures must be > 0, got {student_t}, {teacher_t}")
        self.student_t, self.teacher_t = student_t, teacher_t

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """student (B, D), teacher (B, E), rows of one item each (any scale: both are L2-normalised here)."""
        if len(student) != len(teacher) or len(student) < 2:
            raise ValueError(f"need >= 2 matching rows, got {len(student)} student and {len(teacher)} teacher")
        with torch.autocast(student.device.type, enabled=False):  # fp32: teacher_t 0.01 needs it
            eye = torch.eye(len(student), dtype=torch.bool, device=student.device)
            sn = F.normalize(_at_least_fp32(student), dim=1)
            tn = F.normalize(teacher.to(sn), dim=1)
            log_p = F.log_softmax((sn @ sn.T / self.student_t).masked_fill(eye, -1e9), dim=1)
            q = F.softmax((tn @ tn.T / self.teacher_t).masked_fill(eye, -1e9), dim=1)
            return F.kl_div(log_p, q, reduction="batchmean")
