"""HNSW against exact flat search in FaissIndex: per-query latency and Recall@10, and where flat stops being fast.

    .venv/bin/python benchmarks/ann.py                       # the 100k index benchmarks/load.py built
    .venv/bin/python benchmarks/ann.py --index DIR --queries 300 --ef 16 32 64

Vectors: those of an index directory (default: the one benchmarks/load.py builds, real tower vectors of 100k
generated items). Queries: `--queries` random stored items, each excluded from its own results (what
similar-by-id does). Recall@10: |HNSW top 10 & exact top 10| / 10, averaged. Latency: one query at a time, one
thread (the service's search_threads=1), median and p99 over the queries. Flat latency is also measured on
prefixes of the vectors, to place the ANN threshold (ITEMTOWER_ANN_THRESHOLD).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from itemtower.index import AnnConfig, FaissIndex


def _timed(fn, queries) -> tuple[list, float, float]:
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append((time.perf_counter() - t) * 1e3)
    return out, float(np.median(times)), float(np.percentile(times, 99))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("/tmp/itemtower-load/model-100000/index"))
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--flat-sizes", type=int, nargs="+", default=[2_000, 5_000, 10_000, 20_000, 50_000])
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    faiss.omp_set_num_threads(1)

    hnsw = FaissIndex.load(a.index)
    if hnsw.kind != "hnsw":
        raise SystemExit(f"{a.index} is a {hnsw.kind} index; build an HNSW one (benchmarks/load.py does)")
    ids = list(hnsw.ids())
    vecs = np.stack([hnsw.vector(i) for i in ids])  # (N, D)
    flat = FaissIndex(hnsw.dim, AnnConfig(threshold=10**9))
    flat.upsert(ids, vecs, [{"title": ""}] * len(ids))
    rng = np.random.default_rng(0)
    qi = rng.choice(len(ids), min(a.queries, len(ids)), replace=False)
    queries = [(vecs[i], ids[i]) for i in qi]
    exact, f50, f99 = _timed(lambda q: [h for h, _ in flat.search(q[0], 10, exclude={q[1]})], queries)
    res = {"n": len(ids), "dim": hnsw.dim, "queries": len(queries), "flat": {"p50_ms": f50, "p99_ms": f99},
           "hnsw": []}
    print(f"{len(ids)} x {hnsw.dim}: flat p50 {f50:.2f} ms, p99 {f99:.2f} ms")
    for ef in a.ef:
        hnsw.configure(AnnConfig(threshold=0, ef_search=ef))
        got, h50, h99 = _timed(lambda q: [h for h, _ in hnsw.search(q[0], 10, exclude={q[1]})], queries)
        recall = float(np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, exact)]))
        res["hnsw"].append({"ef_search": ef, "p50_ms": h50, "p99_ms": h99, "recall_at_10": recall})
        print(f"HNSW efSearch {ef}: p50 {h50:.3f} ms, p99 {h99:.3f} ms, Recall@10 {recall:.4f}")
    res["flat_by_size"] = []
    for n in a.flat_sizes:
        if n >= len(ids):
            continue
        small = faiss.IndexFlatIP(hnsw.dim)
        small.add(vecs[:n])
        _, s50, s99 = _timed(lambda q: small.search(q[0][None], 11), queries[:100])
        res["flat_by_size"].append({"n": n, "p50_ms": s50, "p99_ms": s99})
        print(f"flat at {n}: p50 {s50:.2f} ms, p99 {s99:.2f} ms")
    out = a.out or a.index.parent / "ann_results.json"
    out.write_text(json.dumps(res, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
