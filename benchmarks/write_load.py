"""Write throughput with the durable log: what fsync costs, and PUT /items/{id} and PUT /items (batch) per second,
against the same service with an in-memory index (no log, nothing survives a crash) in the same run.

    .venv/bin/python benchmarks/write_load.py                                   # hashing embedder (dim 256)
    .venv/bin/python benchmarks/write_load.py --model runs/myntra_adapter_1min  # a trained model

1. The log alone (index/wal.py): appends of one 1-item upsert record (dim 256), fsync on and off, 1 thread and
   8 threads (group commit: concurrent appends share an fsync).
2. The service, two processes side by side (`uvicorn --factory`, this file's make_app): "durable" (the model
   directory's index: log + snapshots) and "memory" (the index passed in: the pre-log behaviour). They take turns,
   the order swapped each round, --rounds times: single-item PUT from 1 client and from --clients clients, and
   PUT /items with --batch items from 1 client; the ratio is the median of each round's durable / memory.
   The embedder is the same in both: a bag-of-words hash (so the numbers show the log's cost, not the model's) or,
   with --model, the trained model.
Medians over rounds go to stdout as a markdown table and to --out as JSON. Binds 127.0.0.1 only; every process it
starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIM = 256


# ---------------------------------------------------------------------------------------------------- the server side


class HashEmbedder:
    """Bag of hashed title words, L2-normalised: microseconds per item, so the log's cost shows."""

    def __init__(self, dim: int = DIM) -> None:
        from itemtower.catalog.schema import KFASHION

        self.dim, self.schema = dim, KFASHION
        self.manifest = {"format": "hash", "dim": dim, "serves": "h"}

    def embed(self, items, batch_size: int = 256, **_) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)  # (N, D)
        for i, it in enumerate(items):
            for w in (it.get("title") or "x").split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def make_app():
    """uvicorn --factory entry: WRITE_LOAD_MODE=durable|memory, WRITE_LOAD_DIR (the model dir), WRITE_LOAD_MODEL
    (a trained model, or empty for HashEmbedder)."""
    model = os.environ.get("WRITE_LOAD_MODEL") or ""
    if model:
        from itemtower.artifacts import Embedder

        embedder = Embedder.load(Path(model))
    else:
        embedder = HashEmbedder()
    # The durable path loads "the model" through artifacts.Embedder.load: answer with the embedder built above.
    stub = types.ModuleType("itemtower.artifacts")
    stub.Embedder = type("Embedder", (), {"load": classmethod(lambda cls, d: embedder)})
    sys.modules["itemtower.artifacts"] = stub
    from itemtower.serve.app import create_app
    from itemtower.serve.settings import Settings

    settings = Settings(model_dir=Path(os.environ["WRITE_LOAD_DIR"]), max_batch=1024)
    if os.environ["WRITE_LOAD_MODE"] == "memory":
        return create_app(settings, embedder=embedder)
    return create_app(settings)


# ---------------------------------------------------------------------------------------------------- the client side


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, mode: str, model: str, workdir: Path) -> None:
        self.dir = workdir / f"model-{mode}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "WRITE_LOAD_MODE": mode, "WRITE_LOAD_DIR": str(self.dir), "WRITE_LOAD_MODEL": model,
               "PYTHONPATH": str(ROOT / "benchmarks")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "write_load:make_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"], env=env, cwd=ROOT)

    def __enter__(self) -> "Server":
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the {self.url} server ({self.dir.name}) exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1).json().get("model_loaded"):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        raise SystemExit("the server did not start within 120 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_clients(url: str, n_clients: int, bodies: list[tuple[str, dict]]) -> tuple[float, list[float]]:
    """Send `bodies` ((path, json)) from n_clients threads (each its own share, in order). -> (seconds, latencies)"""
    import httpx

    lat: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker(share: list[tuple[str, dict]]) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=120) as c:
            for path, body in share:
                t = time.perf_counter()
                r = c.put(path, json=body)
                mine.append(time.perf_counter() - t)
                if r.status_code not in (200, 201):
                    errors.append(f"{path}: {r.status_code} {r.text[:200]}")
        with lock:
            lat.extend(mine)

    shares = [bodies[i::n_clients] for i in range(n_clients)]
    threads = [threading.Thread(target=worker, args=(s,)) for s in shares]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} failed writes, e.g. {errors[0]}")
    return elapsed, lat


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def service_round(url: str, items: list[dict], args, tag: str) -> dict:
    """The three loads, on fresh ids (`tag`), against one running server."""
    out = {}

    def single(prefix: str) -> list[tuple[str, dict]]:
        return [(f"/items/{prefix}-{i}", {**it, "id": f"{prefix}-{i}"}) for i, it in enumerate(items[: args.n])]

    secs, lat = run_clients(url, 1, single(f"s{tag}"))
    out["put_1_client"] = {"per_s": args.n / secs, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}
    secs, lat = run_clients(url, args.clients, single(f"c{tag}"))
    out[f"put_{args.clients}_clients"] = {"per_s": args.n / secs, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}
    batches = [("/items", {"items": [{**it, "id": f"b{tag}-{b}-{i}"} for i, it in enumerate(items[: args.batch])]})
               for b in range(args.batches)]
    secs, lat = run_clients(url, 1, batches)
    out[f"batch_{args.batch}"] = {"items_per_s": args.batch * args.batches / secs, "p50_ms": pct(lat, 50),
                                  "p99_ms": pct(lat, 99)}
    return out


# ---------------------------------------------------------------------------------------------------- the log alone


def wal_bench(workdir: Path, n: int) -> dict:
    from itemtower.index.wal import WriteAheadLog

    vec = np.random.default_rng(0).normal(size=(1, DIM)).astype(np.float32)
    item = {"id": "x", "title": "와이드 데님 팬츠 wide denim pants", "std": {"category": ["04bottom_01pants"]}}
    out = {}
    for fsync in (True, False):
        for threads in (1, 8):
            path = workdir / f"wal-{fsync}-{threads}.jsonl"
            path.unlink(missing_ok=True)
            wal = WriteAheadLog(path, next_seq=1, fsync=fsync)
            lat: list[float] = []
            lock = threading.Lock()

            def writer(k: int) -> None:
                mine = []
                for _ in range(k):
                    t = time.perf_counter()
                    wal.append("upsert", ["x"], [item], vec)
                    mine.append(time.perf_counter() - t)
                with lock:
                    lat.extend(mine)

            ths = [threading.Thread(target=writer, args=(n // threads,)) for _ in range(threads)]
            t0 = time.perf_counter()
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            secs = time.perf_counter() - t0
            wal.close()
            out[f"fsync={'on' if fsync else 'off'} threads={threads}"] = {
                "appends_per_s": len(lat) / secs, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                "bytes_per_record": path.stat().st_size // max(1, len(lat))}
    return out


def _rate(m: dict) -> str:
    return "per_s" if "per_s" in m else "items_per_s"


def median_of(rounds: list[dict]) -> dict:
    keys = rounds[0].keys()
    return {k: {m: statistics.median(r[k][m] for r in rounds) for m in rounds[0][k]} for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="", help="a trained model directory (default: the hashing embedder)")
    ap.add_argument("--n", type=int, default=150, help="single-item PUTs per load")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64, help="items per PUT /items")
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--wal-n", type=int, default=800, help="appends per log-alone load")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "write_load.json")
    args = ap.parse_args()
    from itemtower.catalog.demo import generate

    items = [{k: v for k, v in it.items() if k != "id"} for it in generate(max(args.n, args.batch), seed=0)]
    work = Path(tempfile.mkdtemp(prefix="write_load-"))
    try:
        wal = median_of([wal_bench(work, args.wal_n) for _ in range(args.rounds)])
        per_mode: dict[str, list[dict]] = {"memory": [], "durable": []}
        # Both servers run side by side (idle but for the one under load) and take turns, the order swapped each
        # round: on a shared machine the load drifts, and each round's pair sees the same drift.
        with Server("memory", args.model, work) as mem, Server("durable", args.model, work) as dur:
            urls = {"memory": mem.url, "durable": dur.url}
            for mode, url in urls.items():
                run_clients(url, 1, [(f"/items/warm-{i}", {**it, "id": f"warm-{i}"})
                                     for i, it in enumerate(items[:20])])
            for rnd in range(args.rounds):
                order = ("memory", "durable") if rnd % 2 == 0 else ("durable", "memory")
                for mode in order:
                    per_mode[mode].append(service_round(urls[mode], items, args, str(rnd)))
        service = {mode: median_of(r) for mode, r in per_mode.items()}
        ratios = {k: statistics.median(d[k][_rate(d[k])] / m[k][_rate(m[k])]
                                       for m, d in zip(per_mode["memory"], per_mode["durable"]))
                  for k in per_mode["memory"][0]}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nlog alone (one 1-item upsert record, dim {DIM}), median of {args.rounds} rounds\n")
    print("| load | appends/s | p50 ms | p99 ms | bytes/record |\n|---|---|---|---|---|")
    for k, v in wal.items():
        print(f"| {k} | {v['appends_per_s']:.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
              f"{v['bytes_per_record']:.0f} |")
    print(f"\nservice, embedder: {args.model or 'hash'}, median of {args.rounds} rounds\n")
    print("| load | memory (no log) | durable (log, fsync) | durable / memory (median of rounds) | "
          "memory p50 / p99 ms | durable p50 / p99 ms |")
    print("|---|---|---|---|---|---|")
    for k in service["memory"]:
        m, d = service["memory"][k], service["durable"][k]
        unit = "items/s" if _rate(m) == "items_per_s" else "req/s"
        print(f"| {k} | {m[_rate(m)]:.0f} {unit} | {d[_rate(d)]:.0f} {unit} | {ratios[k]:.2f} | "
              f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "wal": wal,
                                    "service": service, "durable_over_memory": ratios,
                                    "rounds": per_mode}, indent=2))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
