"""Training under `torchrun`: one process per rank, PyTorch DDP, the same `train(cfg)` (issue 14).

`session(device)` reads torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT),
starts the process group (gloo on CPU, nccl on CUDA) and yields a `Dist`; without torchrun (or with one process)
it yields a world of one whose every method is the identity, so a plain `itemtower train` runs exactly the code
and the numbers it ran before.

What a world of N changes, and why (the loop calls these; each is a no-op at N = 1):
- every global batch of the single-process loader (same seed, same order) is split into N contiguous shares, one
  per rank (`shard_loader`): N processes see exactly the batches one process would;
- the contrastive loss and the distillation term are computed over the *global* batch: every rank's rows are
  all-gathered (`gather`), the local rows keep their gradient, so the negatives come from every rank. Each rank
  then holds the same loss; the gradient it sends back to its own rows is scaled by N, which DDP's gradient
  average divides out again: the update is the single-process one on the global batch
  (tests/test_distributed.py checks losses and parameters against one process);
- the featurizer is fitted on rank 0 and broadcast, the teacher's vectors encoded on rank 0 and broadcast, a
  resume checkpoint read on rank 0 and broadcast (`from_rank0`: an error there is raised on every rank, nobody
  waits forever), so nothing but rank 0 needs the model directory (multi-node: `--out` on rank 0's disk);
- the learning rate, the time budget's stop and the validation loss are rank 0's, broadcast (`schedule`,
  `from_rank0`): every rank takes the same step with the same rate and stops after the same step;
- only rank 0 writes checkpoints, logs and progress bars.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from itemtower.model.device import DEVICES, resolve_device

__all__ = ["Dist", "session", "resolve_device", "DEVICES"]

T = TypeVar("T")


@contextmanager
def session(device: str = "cpu") -> Iterator["Dist"]:
    """The run's world: torchrun's (process group started here and destroyed at exit) or a world of one.

    A process group someone else started (a test, a launcher) is used as it is and left running."""
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (torch_dist.is_available() and torch_dist.is_initialized()):
        yield Dist(device=dev)
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    started = not torch_dist.is_initialized()
    if started:
        torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    d = Dist(rank=torch_dist.get_rank(), world=torch_dist.get_world_size(), local_rank=local_rank,
             local_world=int(os.environ.get("LOCAL_WORLD_SIZE", str(torch_dist.get_world_size()))), device=dev)
    try:
        yield d
        d.barrier()  # nobody leaves while rank 0 still writes the model directory
    finally:
        if started:
            torch_dist.destroy_process_group()


@dataclass
class Dist:
    """This process's place in the world (rank 0 of 1 without torchrun) and the collectives the loop uses."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _ddp: nn.Module | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that fits, decides, logs and writes."""
        return self.rank == 0

    def threads(self) -> int:
        """torch threads for this process: the machine's cores shared by the ranks on it."""
        return max(1, (os.cpu_count() or 1) // self.local_world)

    # -- the model and the step ------------------------------------------------------------------------------
    def wrap(self, task: nn.Module, seed: int) -> None:
        """Put the task under DDP (it starts from rank 0's weights); each rank > 0 gets its own torch seed
        (dropout masks differ between the ranks' rows, as they would between the rows of one batch)."""
        if self.world == 1:
            return
        task.shard = self  # TrainTask.step_loss: gather every rank's rows (training only; validation is local)
        self._ddp = nn.parallel.DistributedDataParallel(task, forward_sync_buffers=False)
        if self.rank:
            torch.manual_seed(seed + 1_000_003 * self.rank)

    def step_loss(self, task, batch, data):
        """TrainTask.step_loss, through DDP when there is more than one rank (DDP's forward prepares the
        gradient all-reduce that loss.backward() then runs)."""
        return task.step_loss(batch, data) if self._ddp is None else self._ddp(batch, data)

    # -- data --------------------------------------------------------------------------------------------------
    def share(self, n: int) -> slice:
        """This rank's contiguous share of n rows (shares differ by at most one row)."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def shard_loader(self, loader: DataLoader) -> DataLoader:
        """The single-process loader's batches (same sampler, same seed, same order), this rank's share of each."""
        if self.world == 1:
            return loader
        if loader.batch_size is not None and loader.batch_size < self.world:
            raise ValueError(f"batch size {loader.batch_size} is smaller than the {self.world} processes: every "
                             f"process needs rows of every batch; use --batch-size {self.world} or more")
        # the same generator: each pass draws its base seed from it before the sampler shuffles, as the original
        return DataLoader(loader.dataset, batch_sampler=_RankShare(loader.batch_sampler, self),
                          collate_fn=loader.collate_fn, generator=loader.generator,
                          pin_memory=self.device.type == "cuda")

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """cat over ranks of every rank's x (rank order; shares may differ by a row). The local rows keep their
        gradient, scaled by the world size (see the module docstring); the others are constants."""
        if self.world == 1:
            return x
        if x.requires_grad:
            return _GatherKeepLocal.apply(x, self)
        return self._gather(x)[0]

    def _gather(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        n = torch.tensor([len(x)], device=x.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        torch_dist.all_gather(sizes, n)
        sizes_i = [int(s) for s in sizes]
        pad = max(sizes_i) - len(x)
        padded = torch.cat([x, x.new_zeros((pad,) + tuple(x.shape[1:]))]) if pad else x.contiguous()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch_dist.all_gather(parts, padded)
        parts[self.rank] = x  # same values; ours is the tensor autograd knows (detached in _GatherKeepLocal)
        return torch.cat([p[:s] for p, s in zip(parts, sizes_i)]), sum(sizes_i[:self.rank])

    # -- rank 0 decides ----------------------------------------------------------------------------------------
    def broadcast(self, obj: T) -> T:
        """Rank 0's obj on every rank (pickled; small things only)."""
        if self.world == 1:
            return obj
        box = [obj if self.is_main else None]
        torch_dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def from_rank0(self, fn: Callable[[], T], send: Callable[[T], Any] | None = None,
                   receive: Callable[[Any], Any] | None = None) -> T:
        """fn() run on rank 0 only; its result broadcast to the others (as `send(result)`, turned back by
        `receive` there: what pickle cannot carry, a featurizer's tokenizer, travels as files). An exception on
        rank 0 is raised on every rank (a copy; RuntimeError if it cannot be pickled)."""
        if self.world == 1:
            return fn()
        if not self.is_main:
            status, value = self.broadcast(None)
            if status == "error":
                raise value
            return value if receive is None else receive(value)
        try:
            result = fn()
        except Exception as e:
            try:
                self.broadcast(("error", e))
            except Exception:  # noqa: BLE001 - an exception pickle cannot carry
                self.broadcast(("error", RuntimeError(f"rank 0 failed: {type(e).__name__}: {e}")))
            raise
        self.broadcast(("ok", result if send is None else send(result)))
        return result

    def fit_once(self, fit: Callable[[], tuple[Any, Any]], encode: Callable[[Any], Any]) -> tuple[Any, Any]:
        """fit() -> (featurizer, encoded items) on rank 0 alone; the featurizer broadcast (its saved files) and
        encode(featurizer) run on the other ranks: one fit, the same ids everywhere, no encoded catalog sent."""
        if self.world == 1:
            return fit()
        got = self.from_rank0(fit, send=lambda r: _pack(r[0]), receive=_unpack)
        return got if self.is_main else (got, encode(got))

    def read_resume(self, read: Callable[[], Any]) -> Any:
        """checkpoint.read_resume's (state, featurizer) or None, read on rank 0 and broadcast: the other ranks
        (other machines) need no copy of the model directory."""
        return self.from_rank0(read, send=lambda r: r and (r[0], _pack(r[1])),
                               receive=lambda v: v and (v[0], _unpack(v[1])))

    def scalar(self, value: float | None) -> float:
        """Rank 0's float on every rank (one tiny broadcast; other ranks pass None)."""
        if self.world == 1:
            return float(value)  # type: ignore[arg-type]
        t = torch.tensor([float(value) if self.is_main else 0.0], dtype=torch.float64, device=self.device)
        torch_dist.broadcast(t, src=0)
        return float(t.item())

    def schedule(self, sched):
        """The loop's Schedule, its learning rate and its deadline decided on rank 0 (clocks differ by rank)."""
        return sched if self.world == 1 else _Rank0Schedule(sched, self)

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()


def _pack(featurizer) -> dict[str, bytes]:
    """A Featurizer as the files Featurizer.save writes (its kiwipiepy pre-tokenizer cannot be pickled)."""
    with tempfile.TemporaryDirectory(prefix="itemtower-featurizer-") as d:
        featurizer.save(d)
        return {p.name: p.read_bytes() for p in Path(d).iterdir()}


def _unpack(files: dict[str, bytes]):
    from itemtower.features.featurize import Featurizer

    with tempfile.TemporaryDirectory(prefix="itemtower-featurizer-") as d:
        for name, data in files.items():
            (Path(d) / name).write_bytes(data)
        return Featurizer.load(d)


class _RankShare(Sampler):
    """A batch sampler: each batch of `batches` cut to this rank's share (Dist.share)."""

    def __init__(self, batches, d: Dist) -> None:
        self.batches, self.d = batches, d

    def __iter__(self):
        for b in self.batches:
            yield list(b)[self.d.share(len(b))]

    def __len__(self) -> int:
        return len(self.batches)


class _GatherKeepLocal(torch.autograd.Function):
    """All-gather whose backward returns the gradient of this rank's rows, times the world size: every rank
    computes the same loss on the same gathered tensor, so the rows' full gradient is world x the local one, and
    DDP's all-reduce (a mean) of the parameter gradients then gives the single-process gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, d: Dist) -> torch.Tensor:
        out, start = d._gather(x.detach())
        ctx.rows, ctx.world = (start, start + len(x)), d.world
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        start, end = ctx.rows
        return grad[start:end] * ctx.world, None


class _Rank0Schedule:
    """Schedule (training/loop.py) whose lr() and out_of_time() are rank 0's, broadcast."""

    def __init__(self, inner, d: Dist) -> None:
        self.inner, self.d = inner, d

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # t_train, train_s, total_steps, progress

    def lr(self, step: int) -> float:
        return self.d.scalar(self.inner.lr(step) if self.d.is_main else None)

    def out_of_time(self) -> bool:
        return bool(self.d.scalar(float(self.inner.out_of_time()) if self.d.is_main else None))
