"""HNSW over 8-bit scalar-quantized codes, with and without an exact re-rank, against the index's IndexHNSWFlat.

    .venv/bin/python benchmarks/ann_sq8.py                  # the 100k index benchmarks/load.py built

Measured for BENCHMARKS.md 11e and not adopted: the graph walk over 4x smaller codes saves less than the bytes
suggest. Builds `IndexHNSWSQ` (QT_8bit, M 32, efConstruction 80, inner product) from the index's own vectors
(~100 s on 2 cores), then, one thread, 300 random stored items as queries (each excluded from its results):
p50/p99 latency and Recall@10 against exact search, for efSearch values and re-rank depths (0 = none; R = the
top R of the HNSW list re-scored with the float vectors).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np

SETTINGS = ((16, 0), (32, 0), (64, 0), (16, 16), (24, 24), (32, 32), (48, 48), (64, 64))


def measure(index, x: np.ndarray, qi: np.ndarray, exact: list[set], ef: int, rerank: int) -> tuple[float, float, float]:
    index.hnsw.efSearch = ef
    got, times = [], []
    for qid in qi:
        q = x[qid]
        t = time.perf_counter()
        _, ids = index.search(q[None], max(11, rerank))
        ids = ids[0][ids[0] >= 0]
        if rerank:
            ids = ids[np.argsort(-(x[ids] @ q))]
        times.append(time.perf_counter() - t)
        got.append(set([int(j) for j in ids if j != qid][:10]))
    recall = float(np.mean([len(a & b) / 10 for a, b in zip(got, exact)]))
    return float(np.median(times) * 1e3), float(np.percentile(times, 99) * 1e3), recall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("/tmp/itemtower-load/model-100000/index"))
    p.add_argument("--queries", type=int, default=300)
    a = p.parse_args()
    raw = faiss.read_index(str(a.index / "index.faiss"))
    flat_hnsw = faiss.downcast_index(raw.index)
    if not isinstance(flat_hnsw, faiss.IndexHNSWFlat):
        raise SystemExit(f"{a.index} is not an HNSW index; build one with benchmarks/load.py")
    x = np.ascontiguousarray(flat_hnsw.storage.reconstruct_n(0, raw.ntotal), dtype=np.float32)
    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    sq = faiss.IndexHNSWSQ(x.shape[1], faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
    sq.hnsw.efConstruction = 80
    sq.train(x)
    sq.add(x)
    print(f"IndexHNSWSQ 8-bit built in {time.perf_counter() - t:.0f} s")
    faiss.omp_set_num_threads(1)
    qi = np.random.default_rng(0).choice(len(x), min(a.queries, len(x)), replace=False)
    exact_index = faiss.IndexFlatIP(x.shape[1])
    exact_index.add(x)
    _, e = exact_index.search(x[qi], 11)
    exact = [set([int(j) for j in row if j != qid][:10]) for row, qid in zip(e, qi)]
    for ef in (16, 32, 64):
        m50, m99, r = measure(flat_hnsw, x, qi, exact, ef, 0)
        print(f"IndexHNSWFlat efSearch {ef}: p50 {m50:.3f} ms, p99 {m99:.3f} ms, Recall@10 {r:.4f}")
    for ef, rr in SETTINGS:
        m50, m99, r = measure(sq, x, qi, exact, ef, rr)
        print(f"HNSWSQ 8-bit efSearch {ef}, re-rank {rr}: p50 {m50:.3f} ms, p99 {m99:.3f} ms, Recall@10 {r:.4f}")


if __name__ == "__main__":
    main()
