"""HNSW against exact search at a million vectors: build time, memory, per-query latency and Recall@10.

    .venv/bin/python benchmarks/ann_scale.py                     # 1M vectors made from the 100k real ones
    .venv/bin/python benchmarks/ann_scale.py --n 300000 --ef 16 32 64

The 100k index of benchmarks/load.py holds real tower vectors; embedding a million generated items would take
this machine ~20 minutes, so the million is made from them: each new vector lies between a real vector and
another random real one (v_i + a (v_j - v_i), a uniform in [0, 0.3]) plus a little noise (sigma 0.01 a
coordinate), re-normalised. They keep the real vectors' layout (clusters of categories and colours) without
being copies. The index is built the way the service builds it (index/ann.py: HNSW M 32, efConstruction 80,
inner product, through FaissIndex.upsert of a flat index and a rebuild). Queries: `--queries` random stored
vectors, each excluded from its own results; exact top 10 from a brute-force scan (batched); latency one query at
a time, one thread, as the service searches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import faiss
import numpy as np

from itemtower.index import AnnConfig, FaissIndex
from itemtower.index.store import load_current


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def made_vectors(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors near the real ones (see the module docstring); the real ones first."""
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    for start in range(len(real), n, 100_000):
        m = min(100_000, n - start)
        i, j = rng.integers(0, len(real), m), rng.integers(0, len(real), m)
        a = rng.uniform(0, 0.3, (m, 1)).astype(np.float32)
        v = real[i] + a * (real[j] - real[i]) + rng.normal(0, 0.01, (m, real.shape[1])).astype(np.float32)
        out[start: start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("/tmp/itemtower-load/model-100000/index"))
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--threads", type=int, default=2, help="OpenMP threads for the build")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    src = load_current(a.index)
    real = np.stack([src.vector(i) for i in src.ids()])
    del src
    vecs = made_vectors(real, a.n, rng)
    ids = [f"v{j:07d}" for j in range(a.n)]
    faiss.omp_set_num_threads(a.threads)
    rss0 = _rss_mb()
    index = FaissIndex(vecs.shape[1], AnnConfig(threshold=a.n + 1))  # flat while loading
    index.upsert(ids, vecs, [{"id": i} for i in ids])
    t = time.perf_counter()
    index.configure(AnnConfig(threshold=10_000), search_threads=a.threads, background_rebuilds=False)  # -> HNSW
    build_s = time.perf_counter() - t
    rss1 = _rss_mb()
    print(f"built {index} in {build_s:.0f} s, RSS {rss0:.0f} -> {rss1:.0f} MB", flush=True)

    qi = rng.choice(a.n, a.queries, replace=False)
    flat = faiss.IndexFlatIP(vecs.shape[1])
    flat.add(vecs)
    t = time.perf_counter()
    _, exact = flat.search(vecs[qi], 11)
    exact_ms_per_query_batched = (time.perf_counter() - t) * 1e3 / a.queries
    faiss.omp_set_num_threads(1)
    single = []
    for q in qi[:20]:
        t = time.perf_counter()
        flat.search(vecs[q: q + 1], 11)
        single.append((time.perf_counter() - t) * 1e3)
    del flat
    truth = [[ids[x] for x in row if x != q][:10] for row, q in zip(exact, qi)]
    rows = {}
    for ef in a.ef:
        index.configure(AnnConfig(threshold=10_000, ef_search=ef), search_threads=1)  # same layout: no rebuild
        times, found = [], 0
        for q, want in zip(qi, truth):
            t = time.perf_counter()
            hits = index.search(vecs[q], 10, exclude={ids[q]})
            times.append((time.perf_counter() - t) * 1e3)
            found += len({h for h, _ in hits} & set(want))
        rows[ef] = {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
                    "recall_at_10": round(found / (10 * a.queries), 4)}
        print(f"efSearch {ef}: {rows[ef]}", flush=True)
    res = {"n": a.n, "dim": int(vecs.shape[1]), "build_s": round(build_s), "build_threads": a.threads,
           "rss_mb_flat_loaded": round(rss0), "rss_mb_after_build": round(rss1),
           "exact_p50_ms_one_thread": round(statistics.median(single), 1),
           "exact_ms_per_query_batched": round(exact_ms_per_query_batched, 2), "hnsw": rows,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
