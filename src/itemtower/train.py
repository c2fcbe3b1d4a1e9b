"""train(config) -> model directory. Self-supervised: two views per item, NT-Xent on the projection head's z.

A plain function with typed defaults (torchrec's examples/retrieval style) so a test can call it with a tiny
config. The budget decides the length of the run (issue 9): --max-minutes (default 10) counts from the start of
train_items, so the featurizer and the teacher's encode come out of it, and training runs until the deadline
(epochs=None: as many passes as fit; an explicit `epochs` is a cap). The learning rate follows warm-up + cosine over
the *progress* of the run, the larger of steps done / steps planned (when epochs is set) and training time used /
training time left at the start of the loop: the schedule ends, decayed, at the deadline.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from itemtower.artifacts import atomic_save, load_resume, save_model
from itemtower.catalog import read_catalog
from itemtower.data.dataset import SimCSERecSysDataset, collate_items, collate_views
from itemtower.data.featurize import Featurizer
from itemtower.data.masking import correlated_groups, field_mutual_information
from itemtower.data.synonyms import build_swap_table
from itemtower.model import ContrastiveLoss, ItemTower, ProjectionHead, SimilarityDistillLoss, TowerSizes
from itemtower.schema import Schema, infer_schema
from itemtower.text_encoders import e5_encoder
from itemtower.training.config import TrainConfig

__all__ = ["TrainConfig", "train", "train_items"]


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _labels(items: Sequence[dict], use_groups: bool) -> list[int]:
    """Item index as label, or a shared label per `group`."""
    labels, groups = [], {}
    for i, it in enumerate(items):
        g = it.get("group") if use_groups else None
        if g is None:
            labels.append(len(items) + i)  # unique, never collides with group labels
        else:
            labels.append(groups.setdefault(g, len(groups)))
    return labels


def _lr_factor(progress: float, warmup: float) -> float:
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 0.01)
    p = (progress - warmup) / max(1e-9, 1 - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """Read the catalog, fit the featurizer, train, export pth1 + pth2 + manifest to cfg.out. Returns cfg.out."""
    report = read_catalog(cfg.catalog)
    if report.problems:
        log(report.summary())
    if not report.items:
        raise ValueError(f"{cfg.catalog}: no usable items (see the problems above)")
    schema = Schema.load(cfg.schema) if cfg.schema else infer_schema(report.items)
    return train_items(report.items, schema, cfg, log)


def _build_data(items: list[dict], encoded: list, featurizer: Featurizer, cfg: TrainConfig,
                log: Callable[[str], None]):
    """The views' lookup tables (correlated fields, synonyms, colour words), the train/validation split and the
    training loader. Returns (train_idx, train_ds, val_ds, loader, collate, batch size)."""
    mask_groups = None
    if cfg.views.corr_mask_p > 0:
        mi = field_mutual_information(encoded, seed=cfg.seed)
        mask_groups = correlated_groups(mi, cfg.views.corr_k)
        names = featurizer.std_fields
        log("correlated masking groups: " + "; ".join(
            "+".join(names[f] for f in g) for g in mask_groups[:8]) + (" ..." if len(mask_groups) > 8 else ""))
    swaps, colour_field = None, None
    if cfg.views.synonym_p > 0 or cfg.views.colour_drop_p > 0:
        swaps = build_swap_table(featurizer.tokenizer)
        names = featurizer.std_fields
        colour_field = next((names.index(f) for f in ("color", "colour", "base_colour") if f in names), None)
        log(f"title augmentation: {len(swaps.synonyms)} tokens with lexicon synonyms, "
            f"{len(swaps.colour_ids)} colour tokens")
    labels = _labels(items, cfg.use_groups)
    val_idx, train_idx = split_rows(len(items), cfg.val_frac, cfg.seed)
    train_ds = SimCSERecSysDataset([encoded[i] for i in train_idx], [labels[i] for i in train_idx], cfg.views,
                                   cfg.seed, mask_groups, swaps, colour_field)
    val_ds = SimCSERecSysDataset([encoded[i] for i in val_idx], [labels[i] for i in val_idx], cfg.views,
                                 cfg.seed + 1, mask_groups, swaps, colour_field)
    collate = lambda b: collate_views(b, cfg.max_text_tokens)  # noqa: E731
    gen = torch.Generator().manual_seed(cfg.seed)
    bs = min(cfg.batch_size, len(train_ds))
    loader = DataLoader(train_ds, batch_size=bs, shuffle=True, drop_last=len(train_ds) > bs, collate_fn=collate,
                        generator=gen)
    return train_idx, train_ds, val_ds, loader, collate, bs


def _init_idf(tower: ItemTower, featurizer: Featurizer) -> None:
    """Start the bags' token and value weights at smoothed log-IDF (as sklearn's TfidfVectorizer)."""
    def idf(df: list[int]) -> torch.Tensor:
        return torch.log((1 + featurizer.n_docs) / (1 + torch.tensor(df, dtype=torch.float32))) + 1

    tower.body.init_token_weights(idf(featurizer.token_df))
    if featurizer.value_df:
        tower.body.init_value_weights(idf(featurizer.value_df))


def train_items(items: Sequence[dict], schema: Schema, cfg: TrainConfig,
                log: Callable[[str], None] = print) -> Path:
    """Train on already-read items (normalized dicts). See `train`."""
    _seed_all(cfg.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    items = list(items)
    if cfg.fast and len(items) > cfg.fast_items:
        items = random.Random(cfg.seed).sample(items, cfg.fast_items)
    cap = cfg.epoch_cap()
    epochs = cap if cap is not None else 10**9  # the deadline ends a budget-only run

    t0 = t_start = time.perf_counter()
    featurizer, encoded = Featurizer.fit_encode(items, schema, vocab_size=cfg.vocab_size,
                                                min_frequency=cfg.min_frequency, max_text_tokens=cfg.max_text_tokens)
    log(f"featurizer: {len(items)} items, {len(schema.std_fields)} std fields, {len(schema.re_fields)} re fields, "
        f"{featurizer.tokenizer.vocab_size} tokens, {featurizer.n_values} values ({time.perf_counter() - t0:.1f}s)")

    train_idx, train_ds, val_ds, loader, collate, bs = _build_data(items, encoded, featurizer, cfg, log)

    tcfg = cfg.tower
    sizes = TowerSizes(n_fields=max(1, len(schema.std_fields)), n_values=featurizer.n_values,
                       vocab_size=featurizer.tokenizer.vocab_size, n_types=2 + len(schema.re_fields),
                       max_len=cfg.max_text_tokens)
    tower = ItemTower(replace(tcfg, sem_scale=1.0), sizes)  # trained at 1; _checkpoint exports tower.sem_scale
    if cfg.idf_init and featurizer.n_docs:
        _init_idf(tower, featurizer)
    teacher = _teacher(items, train_idx, cfg, log) if cfg.distill_items > 0 else None
    distill = SimilarityDistillLoss(cfg.distill_student_t, cfg.distill_teacher_t)
    d_rng = np.random.default_rng(cfg.seed + 2)
    head = ProjectionHead(tcfg.h_dim, cfg.proj_dim)
    loss_fn = ContrastiveLoss(cfg.temperature)
    params = list(tower.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = max(1, cap * len(loader)) if cap is not None else None
    history: dict[str, list] = {"step": [], "loss": [], "lr": [], "epoch_val_loss": [], "epoch_train_loss": [],
                                "distill_loss": []}
    step, start_epoch, best_val = 0, 0, float("inf")

    resume_path = out / "resume.pt"
    if cfg.resume and resume_path.exists():
        step, start_epoch, best_val = load_resume(resume_path, tower, head, opt)  # ModelLoadError naming it
        start_epoch += 1
        history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else history
        log(f"resumed from {resume_path} at epoch {start_epoch}, step {step}")

    def progress() -> float:
        p = step / total_steps if total_steps else 0.0
        if train_s:
            p = max(p, (time.perf_counter() - t_train) / train_s)
        return p

    def val_loss() -> float | None:
        if not len(val_ds):
            return None
        tower.eval(), head.eval()  # deterministic views (fixed seed) + no dropout: comparable across epochs
        losses = []
        with torch.no_grad():
            for (s1, r1), (s2, r2), y in DataLoader(val_ds, batch_size=bs, collate_fn=collate):
                losses.append(float(loss_fn(head(tower(s1, r1)), head(tower(s2, r2)), y)))
        tower.train(), head.train()
        return float(np.mean(losses))

    from tqdm import tqdm

    t_train = time.perf_counter()
    train_s = _training_seconds(cfg.max_minutes, t_train - t_start, log)
    stopped, bad_epochs, epoch = "epochs", 0, start_epoch - 1
    tower.train(), head.train()
    for epoch in range(start_epoch, epochs):
        train_ds.set_epoch(epoch)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cap or '-'}", unit="step", disable=not cfg.progress,
                   dynamic_ncols=True)
        ep_losses, t_ep, seen = [], time.perf_counter(), 0
        for (s1, r1), (s2, r2), y in bar:
            for g in opt.param_groups:
                g["lr"] = cfg.lr * _lr_factor(progress(), cfg.warmup_frac)
            loss = c_loss = loss_fn(head(tower(s1, r1)), head(tower(s2, r2)), y)
            if teacher is not None:  # a second batch: clean teacher items, h follows e5's neighbourhoods
                rows, t_vecs = teacher
                j = d_rng.choice(len(rows), size=min(cfg.distill_batch, len(rows)), replace=False)
                ds, dr = collate_items([encoded[rows[k]] for k in j], cfg.max_text_tokens)
                student = tower.semantic(ds, dr) if tcfg.sem_dim else tower(ds, dr)  # the slice, or all of h
                dl = distill(student, torch.from_numpy(t_vecs[j]))
                history["distill_loss"].append(float(dl.detach()))
                loss = loss + cfg.distill_weight * dl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            seen += len(y)
            lv = float(c_loss.detach())  # the contrastive part: comparable with the validation loss
            ep_losses.append(lv)
            history["step"].append(step), history["loss"].append(lv), history["lr"].append(opt.param_groups[0]["lr"])
            postfix = {"loss": f"{lv:.3f}", "lr": f"{opt.param_groups[0]['lr']:.1e}",
                       "items_s": f"{seen / (time.perf_counter() - t_ep):.0f}"}
            if teacher is not None:
                postfix["distill"] = f"{history['distill_loss'][-1]:.3f}"
            bar.set_postfix(postfix)
            if train_s and time.perf_counter() - t_train > train_s:
                stopped = "time budget"
                break
        bar.close()
        vl = val_loss()
        history["epoch_train_loss"].append(float(np.mean(ep_losses)) if ep_losses else None)
        history["epoch_val_loss"].append(vl)
        log(f"epoch {epoch + 1}: train loss {history['epoch_train_loss'][-1]:.4f}"
            + (f", val loss {vl:.4f}" if vl is not None else "")
            + f", {seen / max(1e-9, time.perf_counter() - t_ep):.0f} items/s")
        improved = vl is None or vl < best_val - 1e-4
        if vl is not None and vl < best_val:
            best_val = vl
        _checkpoint(out, tower, head, opt, featurizer, cfg, step, epoch, best_val, history, t_train, stopped)
        if stopped == "time budget":
            break
        bad_epochs = 0 if improved else bad_epochs + 1
        if bad_epochs >= cfg.patience:
            stopped = "early stopping"
            break
    if epoch < start_epoch:  # nothing to do (resumed a finished run): still export
        _checkpoint(out, tower, head, opt, featurizer, cfg, step, epoch, best_val, history, t_train, stopped)
    log(f"stopped by {stopped} after {step} steps, {time.perf_counter() - t_train:.0f}s; model in {out}")
    return out


def _training_seconds(max_minutes: float | None, used_s: float, log: Callable[[str], None]) -> float | None:
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


def split_rows(n_items: int, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows, training rows) of a catalog of n_items: a seeded permutation, at most 2,000 held out."""
    n_val = min(2000, int(n_items * val_frac)) if n_items >= 200 else 0
    perm = np.random.default_rng(seed).permutation(n_items)
    return perm[:n_val], perm[n_val:]


def teacher_rows(train_idx: np.ndarray, distill_items: int, seed: int) -> np.ndarray:
    """The sorted rows whose titles e5 teaches: a seeded sample of distill_items training rows (all, if fewer).
    benchmarks/teacher_overlap.py calls it (with split_rows) to find them again from a model's train_config."""
    n = min(distill_items, len(train_idx))
    return np.sort(np.random.default_rng(seed + 3).choice(train_idx, size=n, replace=False))


def _teacher(items: Sequence[dict], train_idx: np.ndarray, cfg: TrainConfig,
             log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, vectors): a seeded sample of `distill_items` training items and e5's vectors of their titles (every
    valid item has one), encoded once and cached (text_encoders.e5_encoder). None when fewer than two items."""
    rows = teacher_rows(train_idx, cfg.distill_items, cfg.seed)
    n = len(rows)
    if n < 2:
        log(f"distillation off: {n} training item(s), it compares items with each other")
        return None
    texts = [str(items[i].get("title") or "") for i in rows]
    t0 = time.perf_counter()
    vecs = e5_encoder(cfg.cache_dir, progress=cfg.progress, log=log, name="e5-titles")(texts)
    log(f"distillation teacher: e5 vectors of {n} titles ({time.perf_counter() - t0:.1f}s)")
    return rows, np.asarray(vecs, dtype=np.float32)


def _checkpoint(out: Path, tower, head, opt, featurizer, cfg: TrainConfig, step: int, epoch: int,
                best_val: float, history: dict, t_train: float, stopped: str) -> None:
    """Export the served model and the resume checkpoint (atomically), plus the history and resolved config."""
    training = {"steps": step, "epochs_done": epoch + 1, "best_val_loss": best_val if best_val < 1e30 else None,
                "seconds": round(time.perf_counter() - t_train, 1), "stopped_by": stopped,
                "items": len(featurizer.token_df) and featurizer.n_docs, "config": cfg.to_dict()}
    if tower.cfg.sem_dim:  # export the served mix: the slice at cfg.tower.sem_scale (the loop trains it at 1)
        served = ItemTower(replace(tower.cfg, sem_scale=cfg.tower.sem_scale), tower.sizes)
        served.load_state_dict(tower.state_dict())
        save_model(out, served, featurizer, training)
    else:
        save_model(out, tower, featurizer, training)
    atomic_save({"tower": tower.state_dict(), "head": head.state_dict(), "optimizer": opt.state_dict(),
                 "step": step, "epoch": epoch, "best_val": best_val}, out / "resume.pt")
    (out / "history.json").write_text(json.dumps(history), encoding="utf-8")
    (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, ensure_ascii=False),
                                           encoding="utf-8")
