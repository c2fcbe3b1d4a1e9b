"""The measurements of benchmarks/speed.py, one function each; every figure comes with the 1-minute load average
it was taken under (the machine is shared: same-run ratios are what to compare)."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from itemtower.model.flops import forward_flops, train_step_flops


def load() -> float:
    """The 1-minute load average, the noise every figure is read against."""
    return round(os.getloadavg()[0], 2)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def matmul_limit(n: int = 2048, repeats: int = 7) -> dict[str, Any]:
    """fp32 (n x n) @ (n x n) in torch, median of `repeats` after one warm-up: the limit throughputs are read
    against (GFLOP/s). bf16 beside it, for what autocast could reach (AMX on this CPU)."""
    out: dict[str, Any] = {"n": n, "threads": torch.get_num_threads(), "repeats": repeats}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        med, _ = median_time(lambda: a @ b, repeats)
        out[f"{name}_gflops"] = round(2 * n ** 3 / med / 1e9, 1)
    out["load"] = load()
    return out


def build_model(items: Sequence[dict], out_dir: Path, log: Callable[[str], None]):
    """A model directory with the default TrainConfig's architecture and featurizer, fitted on `items`, weights
    at their start (IDF-initialised bags): speed depends on the architecture and the text, not on the trained
    weights. Returns (dir, featurizer, encoded items, seconds the featurizer took)."""
    from itemtower.artifacts import save_model
    from itemtower.catalog.schema import infer_schema
    from itemtower.training.config import TrainConfig
    from itemtower.training.data import featurize
    from itemtower.training.task import new_tower

    cfg = TrainConfig(progress=False)
    t = time.perf_counter()
    featurizer, encoded = featurize(items, infer_schema(items), cfg, log)
    fit_s = time.perf_counter() - t
    save_model(out_dir, new_tower(cfg, featurizer), featurizer)
    return out_dir, featurizer, encoded, fit_s


def run_command(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one command, the child's own rusage (os.wait4)."""
    t = time.perf_counter()
    p = subprocess.Popen(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env={**os.environ, **(env or {})})
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if status != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({status}): {err[-2000:]}")
    return wall, ru.ru_maxrss / 1024


def text_lengths(encoded, max_text_tokens: int) -> np.ndarray:
    """Tokens the tower reads per item (title + RE phrases, truncated as collate_items truncates)."""
    return np.minimum([len(e.title) + sum(len(p) for ph in e.re for p in ph) for e in encoded], max_text_tokens)


def model_only(embedder, encoded, batch_size: int, repeats: int) -> dict[str, Any]:
    """The tower's forward pass alone over the encoded catalog (batches built beforehand, as embed_encoded
    builds them: length-sorted), median of `repeats`; FLOPs per item as the model reads it (no padding) and as
    computed (with each batch's padding)."""
    from itemtower.features.dataset import collate_items

    cfg, max_len = embedder.tower.cfg, embedder.featurizer.max_text_tokens
    lens = text_lengths(encoded, max_len)
    order = np.argsort(lens, kind="stable")
    t = time.perf_counter()
    batches = [collate_items([encoded[i] for i in order[s:s + batch_size]], max_len)
               for s in range(0, len(encoded), batch_size)]
    collate_s = time.perf_counter() - t
    n_fields = batches[0][0].shape[1]
    useful = padded = 0.0
    for s, (t_std, t_re) in zip(range(0, len(encoded), batch_size), batches):
        rows = lens[order[s:s + batch_size]]
        M = t_std.shape[2]
        useful += sum(forward_flops(cfg, n_fields, float(x), M).total for x in rows)
        padded += len(rows) * forward_flops(cfg, n_fields, t_re.shape[2], M).total
    tower, bf16 = embedder.tower, embedder.bf16  # the Embedder's precision (auto: bf16 where the CPU has it)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for b in batches:
                tower(*b)

    run()  # warm-up (allocator, oneDNN primitives)
    med, times = median_time(run, repeats)
    n = len(encoded)
    return {"items": n, "batch_size": batch_size, "precision": "bf16" if bf16 else "fp32",
            "threads": torch.get_num_threads(), "collate_s": collate_s,
            "forward_s": med, "forward_times": times, "items_s": n / med, "collate_items_s": n / collate_s,
            "flops_per_item": useful / n, "padded_flops_per_item": padded / n, "gflops": useful / med / 1e9,
            "mean_len": float(lens.mean()), "n_fields": int(n_fields), "load": load()}


def fake_teacher(train_idx: np.ndarray, cfg, dim: int = 384, seed: int = 0):
    """The distillation target with random unit vectors: a step costs the same whatever e5 said, and the
    benchmark skips e5's encode of 3,000 titles (minutes)."""
    from itemtower.training.data import Teacher, teacher_rows

    rows = teacher_rows(train_idx, cfg.distill_items, cfg.seed)
    v = np.random.default_rng(seed).standard_normal((len(rows), dim)).astype(np.float32)
    return Teacher(rows, v / np.linalg.norm(v, axis=1, keepdims=True))


def training(items, featurizer, encoded, steps: int, log: Callable[[str], None],
             around_steps=contextlib.nullcontext) -> dict[str, Any]:
    """Default training steps (two views, NT-Xent, the distillation batch, AdamW) timed as the loop runs them
    (training/loop.run_epoch's body), after one warm-up step; and the data pipeline alone (the loader: views +
    collate) over as many batches. Items are counted once per step (the two views of an item are one item).
    `around_steps()`: a context manager around the steps alone (speed_profile's profiler)."""
    from itemtower.training.config import TrainConfig
    from itemtower.training.data import build_data
    from itemtower.training.loop import adamw
    from itemtower.training.task import TrainTask, new_tower

    cfg = TrainConfig(progress=False)
    data = build_data(items, featurizer, encoded, cfg, log)
    task = TrainTask(new_tower(cfg, featurizer), cfg, fake_teacher(data.train_idx, cfg))
    opt = adamw(task.trainable(), cfg)  # the loop's optimizer (foreach)
    params = task.trainable()
    task.train()
    it = iter(data.loader)
    t = time.perf_counter()
    batches = [next(it) for _ in range(steps + 1)]
    pipe_s = (time.perf_counter() - t) / (steps + 1)
    step_times, flops = [], []
    n_fields = batches[0][0][0].shape[1]
    with around_steps():
        _steps(task, opt, params, cfg, data, batches, step_times)
    for batch in batches:
        (s1, r1), (s2, r2), _ = batch
        view_len = float(((r1[:, 1] != 0).sum() + (r2[:, 1] != 0).sum()) / (2 * len(r1)))
        flops.append(train_step_flops(cfg.tower, n_fields, view_len, (s1.shape[2] + s2.shape[2]) / 2,
                                      cfg.proj_dim, data.batch_size, cfg.distill_batch).total)
    step_s = statistics.median(step_times)
    fl = float(np.mean(flops[1:]))
    n_train = len(data.train_idx)
    from itemtower.model.device import use_bf16

    return {"steps": steps, "batch_size": data.batch_size, "step_s": step_s, "step_times": step_times,
            "precision": "bf16" if use_bf16(cfg.precision, torch.device("cpu")) else "fp32",
            "items_s": data.batch_size / step_s, "flops_per_item": fl,
            "step_gflops": fl * data.batch_size / step_s / 1e9, "epoch_s": n_train / (data.batch_size / step_s),
            "train_items": n_train, "pipeline_batch_s": pipe_s, "pipeline_items_s": data.batch_size / pipe_s,
            "load": load()}


def one_step(task, opt, params, cfg, data, batch) -> float:
    """One optimizer step as the loop takes it (the forward under cfg.precision's autocast, loss, backward, clip,
    step); returns its seconds."""
    from itemtower.model.device import use_bf16

    bf16 = use_bf16(cfg.precision, torch.device("cpu"))
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _, _ = task.step_loss(batch, data)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    return time.perf_counter() - t


def _steps(task, opt, params, cfg, data, batches, step_times: list[float]) -> None:
    for k, batch in enumerate(batches):
        dt = one_step(task, opt, params, cfg, data, batch)
        if k:  # the first step warms up
            step_times.append(dt)


def reference(name: str, texts: list[str], encode: Callable[[list[str]], np.ndarray]) -> dict[str, Any]:
    """One pass of a pretrained encoder over `texts` (loaded and warmed on two texts first): items/s."""
    encode(texts[:2])
    t = time.perf_counter()
    encode(texts)
    s = time.perf_counter() - t
    return {"name": name, "items": len(texts), "s": s, "items_s": len(texts) / s,
            "mean_chars": float(np.mean([len(x) for x in texts])), "load": load()}


def kiwi_cost(titles: list[str]) -> dict[str, Any]:
    """kiwipiepy's pre-tokenization of Korean titles (the PreTokenizer as the featurizer runs it), µs per title;
    loading the analyser apart."""
    from itemtower.features.pretokenize import PreTokenizer

    pre = PreTokenizer()
    t = time.perf_counter()
    pre._get_kiwi()
    load_s = time.perf_counter() - t
    pre.batch(titles[:50])
    med, _ = median_time(lambda: pre.batch(titles), 3)
    return {"titles": len(titles), "load_s": load_s, "us_per_title": med / len(titles) * 1e6,
            "titles_s": len(titles) / med, "load": load()}
