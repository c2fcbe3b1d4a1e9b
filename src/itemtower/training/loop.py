"""train(cfg) -> model directory: the one entry point (CLI, benchmarks, tests). Self-supervised: two views per
item, NT-Xent on the projection head's z (training/task.py), plus the distillation term.

The budget decides the length of the run (issue 9): max_minutes (default 10) counts from the start of `train`,
so the featurizer and the teacher's encode come out of it, and training runs until the deadline (epochs=None: as
many passes as fit; an explicit `epochs` is a cap). The learning rate follows warm-up + cosine over the *progress*
of the run, the larger of steps done / steps planned (when epochs is set) and training time used / training time
left at the start of the loop: the schedule ends, decayed, at the deadline.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from itemtower.catalog import read_catalog
from itemtower.catalog.schema import Schema, infer_schema
from itemtower.artifacts import checkpoint
from itemtower.training.config import TrainConfig
from itemtower.training.data import TrainData, build_data, featurize, load_teacher
from itemtower.model.device import use_bf16
from itemtower.training.distributed import Dist, session
from itemtower.training.task import TrainTask, new_tower
from itemtower.training.slice_weight import serve_chosen_slice

__all__ = ["train", "adamw", "lr_factor", "Schedule", "RunState"]

Log = Callable[[str], None]


def train(cfg: TrainConfig, items: Sequence[dict] | None = None, schema: Schema | None = None,
          log: Log = print) -> Path:
    """Train and export pth1 + pth2 + manifest (+ resume.pt, history, config) to cfg.out. Returns cfg.out.

    Args:
        items: normalized items already read (the CLI reads them to report problems); None reads cfg.catalog.
        schema: None: cfg.schema if set, else inferred from the items. On resume, the saved featurizer's schema.

    Under torchrun (WORLD_SIZE > 1) every rank calls this: DDP over the global batch, rank 0 fits, decides,
    logs and writes (training/distributed.py). Without it, one process, as before.
    """
    with session(cfg.device) as dist:
        if not dist.is_main:
            cfg, log = replace(cfg, progress=False), _quiet
        return _train(cfg, items, schema, log, dist)


def _quiet(_: str) -> None:
    """The log of ranks > 0: rank 0 speaks for the run."""


def _train(cfg: TrainConfig, items: Sequence[dict] | None, schema: Schema | None, log: Log, dist: Dist) -> Path:
    precision = "bf16" if use_bf16(cfg.precision, dist.device) else "fp32"  # ValueError before any work
    if items is None:
        items, schema = _read(cfg, log)
    elif schema is None:
        schema = Schema.load(cfg.schema) if cfg.schema else infer_schema(items)
    _seed_all(cfg.seed)
    torch.set_num_threads(dist.threads())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    items = list(items)
    if cfg.fast and len(items) > cfg.fast_items:
        items = random.Random(cfg.seed).sample(items, cfg.fast_items)

    t_start = time.perf_counter()
    resumed = dist.read_resume(lambda: checkpoint.read_resume(out) if cfg.resume and checkpoint.has_resume(out)
                               else None)
    saved = resumed[1] if resumed else None
    featurizer, encoded = dist.fit_once(lambda: featurize(items, schema, cfg, log, featurizer=saved),
                                        lambda fitted: featurize(items, schema, cfg, log, featurizer=fitted)[1])
    data = build_data(items, featurizer, encoded, cfg, log)
    data.loader = dist.shard_loader(data.loader)
    tower = new_tower(cfg, featurizer, data.photos)
    teacher = dist.from_rank0(lambda: load_teacher(items, data.train_idx, cfg, log))
    task = TrainTask(tower, cfg, teacher).to(dist.device)
    opt = adamw(task.trainable(), cfg)
    state = RunState()
    if resumed:
        step, epoch, best, history = checkpoint.apply_resume(out, resumed[0], task, opt)  # ModelLoadError
        for g in opt.param_groups:  # a resume.pt saved before foreach carries foreach=None in its groups
            g["foreach"] = True
        state = RunState(step=step, start_epoch=epoch + 1, best_val=best, history=history or state.history)
        log(f"resumed from {checkpoint.resume_path(out)} at epoch {state.start_epoch}, step {state.step}")
    dist.wrap(task, cfg.seed)
    state.precision = precision
    log(f"precision: {state.precision}" + (" autocast (the losses in fp32)" if state.precision == "bf16" else ""))

    cap = cfg.epoch_cap()
    t_train = time.perf_counter()
    sched = dist.schedule(Schedule(cfg, total_steps=max(1, cap * len(data.loader)) if cap is not None else None,
                                   t_train=t_train, train_s=_training_seconds(cfg.max_minutes, t_train - t_start, log)))
    _run_epochs(task, data, opt, sched, state, cfg, cap, out, log, dist)
    if cfg.auto_sem_scale and dist.is_main:  # the slice's served weight, from the catalog (label-free)
        serve_chosen_slice(out, data.encoded, teacher, log=log)
    log(f"stopped by {state.stopped} after {state.step} steps, {time.perf_counter() - t_train:.0f}s; model in {out}")
    return out


def _read(cfg: TrainConfig, log: Log) -> tuple[list[dict], Schema]:
    report = read_catalog(cfg.catalog)
    if report.problems:
        log(report.summary())
    if not report.items:
        raise ValueError(f"{cfg.catalog}: no usable items (see the problems above)")
    return report.items, Schema.load(cfg.schema) if cfg.schema else infer_schema(report.items)


def adamw(params, cfg: TrainConfig) -> torch.optim.AdamW:
    """The run's optimizer: AdamW, its foreach implementation (each update op over all tensors at once, instead of
    a Python loop of small ops per tensor): 1.34x the whole training step on this CPU (BENCHMARKS.md 14e), the
    same update up to float rounding."""
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class RunState:
    """Where a run is: what resume.pt restores and every epoch updates."""

    step: int = 0
    start_epoch: int = 0
    best_val: float = float("inf")
    history: dict[str, list] = field(default_factory=lambda: {
        "step": [], "loss": [], "lr": [], "epoch_val_loss": [], "epoch_train_loss": [], "distill_loss": []})
    stopped: str = "epochs"
    precision: str = "fp32"  # what the steps ran under (cfg.precision resolved on the device)


def lr_factor(progress: float, warmup: float) -> float:
    """Warm-up from 1% to 1 over `warmup` of the run, then cosine down to 0.05."""
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 0.01)
    p = (progress - warmup) / max(1e-9, 1 - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


@dataclass
class Schedule:
    """The run's progress in [0, 1] (steps of the cap, or time of the budget, whichever is further) and the
    learning rate it sets."""

    cfg: TrainConfig
    total_steps: int | None
    t_train: float
    train_s: float | None  # seconds the loop may run; None: no budget

    def progress(self, step: int) -> float:
        p = step / self.total_steps if self.total_steps else 0.0
        if self.train_s:
            p = max(p, (time.perf_counter() - self.t_train) / self.train_s)
        return p

    def lr(self, step: int) -> float:
        return self.cfg.lr * lr_factor(self.progress(step), self.cfg.warmup_frac)

    def out_of_time(self) -> bool:
        return bool(self.train_s) and time.perf_counter() - self.t_train > self.train_s


def _run_epochs(task: TrainTask, data: TrainData, opt, sched: Schedule, state: RunState, cfg: TrainConfig,
                cap: int | None, out: Path, log: Log, dist: Dist | None = None) -> None:
    """Epochs until the cap, the deadline or early stopping; a checkpoint after each (rank 0's validation loss
    decides for every rank; rank 0 writes)."""
    dist = dist or Dist()
    epochs = cap if cap is not None else 10**9  # the deadline ends a budget-only run
    bad_epochs, epoch = 0, state.start_epoch - 1
    task.train()
    for epoch in range(state.start_epoch, epochs):
        t_ep = time.perf_counter()
        ep_losses, seen = run_epoch(task, data, opt, sched, state, epoch, cap, dist)
        vl = dist.from_rank0(lambda: task.val_loss(data))
        hist = state.history
        hist["epoch_train_loss"].append(float(np.mean(ep_losses)) if ep_losses else None)
        hist["epoch_val_loss"].append(vl)
        log(f"epoch {epoch + 1}: train loss {hist['epoch_train_loss'][-1]:.4f}"
            + (f", val loss {vl:.4f}" if vl is not None else "")
            + f", {seen / max(1e-9, time.perf_counter() - t_ep):.0f} items/s")
        improved = vl is None or vl < state.best_val - 1e-4
        if vl is not None and vl < state.best_val:
            state.best_val = vl
        if dist.is_main:
            checkpoint.save_run(out, task, opt, data.featurizer, cfg, state, epoch, sched.t_train)
        if state.stopped == "time budget":
            return
        bad_epochs = 0 if improved else bad_epochs + 1
        if bad_epochs >= cfg.patience:
            state.stopped = "early stopping"
            return
    if epoch < state.start_epoch and dist.is_main:  # nothing to do (resumed a finished run): still export
        checkpoint.save_run(out, task, opt, data.featurizer, cfg, state, epoch, sched.t_train)


def run_epoch(task: TrainTask, data: TrainData, opt, sched: Schedule, state: RunState, epoch: int,
              cap: int | None, dist: Dist | None = None) -> tuple[list[float], int]:
    """One pass over the loader (or until the deadline, which sets state.stopped). Returns (the contrastive loss
    of each step, items seen by all ranks)."""
    from tqdm import tqdm

    dist = dist or Dist()

    cfg, hist = task.cfg, state.history
    data.train_ds.set_epoch(epoch)
    bar = tqdm(data.loader, desc=f"epoch {epoch + 1}/{cap or '-'}", unit="step", disable=not cfg.progress,
               dynamic_ncols=True)
    ep_losses, t_ep, seen = [], time.perf_counter(), 0
    params = task.trainable()
    bf16 = state.precision == "bf16"
    for batch in bar:
        for g in opt.param_groups:
            g["lr"] = sched.lr(state.step)
        with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=bf16):  # the losses stay fp32
            loss, c_loss, d_loss = dist.step_loss(task, batch, data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        state.step += 1
        seen += len(batch[2]) * dist.world
        lv = float(c_loss.detach())  # the contrastive part: comparable with the validation loss
        ep_losses.append(lv)
        hist["step"].append(state.step), hist["loss"].append(lv), hist["lr"].append(opt.param_groups[0]["lr"])
        postfix = {"loss": f"{lv:.3f}", "lr": f"{opt.param_groups[0]['lr']:.1e}",
                   "items_s": f"{seen / (time.perf_counter() - t_ep):.0f}"}
        if d_loss is not None:
            hist["distill_loss"].append(float(d_loss.detach()))
            postfix["distill"] = f"{hist['distill_loss'][-1]:.3f}"
        bar.set_postfix(postfix)
        if sched.out_of_time():
            state.stopped = "time budget"
            break
    bar.close()
    return ep_losses, seen


def _training_seconds(max_minutes: float | None, used_s: float, log: Log) -> float | None:
    """Seconds the training loop may run: what the budget leaves after the featurizer and the teacher (None: no
    budget). At least a tenth of the budget, so that a slow teacher encode cannot leave no training at all."""
    if not max_minutes:
        return None
    budget = 60 * max_minutes
    left = budget - used_s
    if left < 0.1 * budget:
        log(f"featurizer and teacher took {used_s:.0f}s of the {budget:.0f}s budget: training {0.1 * budget:.0f}s "
            "anyway (a smaller --distill-items or a warm teacher cache leaves more)")
    else:
        log(f"training loop: {left:.0f}s of the {budget:.0f}s budget ({used_s:.0f}s went to featurizer and teacher)")
    return max(left, 0.1 * budget)
