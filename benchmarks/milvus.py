"""Index build and query times, FAISS against Milvus (milvus-lite), on the same vectors, items and queries.

    nice -n 10 .venv/bin/python benchmarks/milvus.py                  # the 100k index benchmarks/load.py built
    nice -n 10 .venv/bin/python benchmarks/milvus.py --n 20000 --synthetic --queries 100 --out runs/milvus.json

Data: the ids, vectors and items of an index directory (default: benchmarks/load.py's, real tower vectors of
100k generated items; `--n` takes a prefix), or `--synthetic` random unit vectors with random std fields.
Backends, in one run:
  faiss         FaissIndex as the service runs it (HNSW M 32, efConstruction 80, efSearch 32 past 10k items)
  milvus-file   MilvusIndex on a milvus-lite file (the in-process gRPC server pymilvus starts), HNSW with the
                same M / efConstruction / ef
  milvus-server the same data directory served by `milvus-lite server` in its own process (what several
                service processes share), queried over loopback gRPC
Build: FAISS upsert (including the HNSW build); Milvus load_all (1,000 rows per upsert), flush, and the
background segment-index build, waited for through milvus-lite's engine. Queries: `--queries` random stored
items, similar-by-id style (the item excluded), k 10, unfiltered, and the first `--filtered-queries` of them
with a std filter that ~10% of items pass;
one at a time, one thread; median and p99 ms; Recall@10 against exact numpy top 10 (filter applied).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import faiss
import numpy as np

from itemtower.index import FaissIndex
from itemtower.index.milvus_store import MilvusIndex

K = 10


def load_data(a: argparse.Namespace) -> tuple[list[str], np.ndarray, list[dict]]:
    if a.synthetic:
        rng = np.random.default_rng(0)
        vecs = rng.normal(size=(a.n, a.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        items = [{"title": f"item {i}", "std": {"color": [f"c{rng.integers(10)}"], "category": [f"k{i % 20}"]}}
                 for i in range(a.n)]
        return [f"id{i}" for i in range(a.n)], vecs, items
    src = FaissIndex.load(a.index)
    ids = list(src.ids())[: a.n]
    vecs = np.stack([src.vector(i) for i in ids]).astype(np.float32)
    return ids, vecs, [src.get(i) for i in ids]


def pick_filter(items: list[dict]) -> dict[str, str]:
    """The std (field, value) whose share of items is closest to 10%."""
    counts = Counter((f, v) for it in items for f, vs in (it.get("std") or {}).items() for v in vs)
    (field, value), _ = min(counts.items(), key=lambda kv: abs(kv[1] / len(items) - 0.10))
    return {field: value}


def exact(vecs: np.ndarray, q: np.ndarray, allowed: np.ndarray | None, skip: int) -> set[int]:
    scores = vecs @ q
    scores[skip] = -np.inf
    if allowed is not None:
        scores[~allowed] = -np.inf
    return set(np.argsort(-scores)[:K].tolist())


def measure(search, vector, ids, vecs, queries, filters, allowed) -> dict:
    """p50/p99 ms of search (and of vector + search: similar-by-id) and Recall@10, one query at a time."""
    pos = {s: i for i, s in enumerate(ids)}
    t_search, t_similar, recall = [], [], []
    for qi in queries:
        sid = ids[qi]
        t0 = time.perf_counter()
        v = vector(sid)
        t1 = time.perf_counter()
        hits = search(v, K, filters=filters or None, exclude={sid})
        t2 = time.perf_counter()
        t_search.append((t2 - t1) * 1e3)
        t_similar.append((t2 - t0) * 1e3)
        want = exact(vecs, vecs[qi], allowed, qi)
        recall.append(len({pos[h] for h, _ in hits} & want) / len(want))
    return {"search_p50_ms": float(np.median(t_search)), "search_p99_ms": float(np.percentile(t_search, 99)),
            "similar_p50_ms": float(np.median(t_similar)), "similar_p99_ms": float(np.percentile(t_similar, 99)),
            "recall@10": float(np.mean(recall))}


def queries_for(index, ids, vecs, queries, filt, allowed, n_filtered: int) -> dict:
    return {"unfiltered": measure(index.search, index.vector, ids, vecs, queries, None, None),
            "filtered": measure(index.search, index.vector, ids, vecs, queries[:n_filtered], filt, allowed)}


def wait_for_segment_indexes(path: str, collection: str) -> None:
    """milvus-lite builds segment indexes in a background worker after a flush: wait for it (private API; the
    benchmark only)."""
    from milvus_lite import server_manager_instance

    _, db, _ = server_manager_instance._servers[os.path.abspath(path)]
    db.get_collection(collection)._wait_for_bg(timeout=3600)


def run_faiss(ids, vecs, items) -> tuple[FaissIndex, float]:
    t = time.perf_counter()
    idx = FaissIndex(vecs.shape[1])
    idx.upsert(ids, vecs, items)
    return idx, time.perf_counter() - t


def run_milvus_file(path: str, ids, vecs, items) -> tuple[MilvusIndex, dict]:
    idx = MilvusIndex.connect(path, vecs.shape[1], index_type="HNSW", hnsw_m=32, ef_construction=80,
                              ef_search=32, read_cache_seconds=0)
    t0 = time.perf_counter()
    for start in range(0, len(ids), 1000):
        idx.upsert(ids[start:start + 1000], vecs[start:start + 1000], items[start:start + 1000])
    t1 = time.perf_counter()
    idx.save()  # flush
    wait_for_segment_indexes(path, idx.collection)
    t2 = time.perf_counter()
    return idx, {"insert_s": t1 - t0, "flush_and_index_s": t2 - t1, "build_s": t2 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("/tmp/itemtower-load/model-100000/index"))
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--dim", type=int, default=512, help="with --synthetic")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--filtered-queries", type=int, default=30,
                   help="the first this many queries run filtered too (milvus-lite filters in Python: seconds)")
    p.add_argument("--no-server", action="store_true", help="skip the milvus-lite server process")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    faiss.omp_set_num_threads(1)
    nf = a.filtered_queries

    ids, vecs, items = load_data(a)
    filt = pick_filter(items)
    (field, value), = filt.items()
    allowed = np.array([value in (it.get("std") or {}).get(field, []) for it in items])
    queries = np.random.default_rng(1).choice(len(ids), size=min(a.queries, len(ids)), replace=False).tolist()
    res: dict = {"n": len(ids), "dim": int(vecs.shape[1]), "queries": len(queries), "filtered_queries": nf,
                 "filter": filt,
                 "filter_share": float(allowed.mean()), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"{len(ids)} x {vecs.shape[1]}, filter {filt} ({allowed.mean():.1%})", flush=True)

    fidx, fbuild = run_faiss(ids, vecs, items)
    res["faiss"] = {"build_s": fbuild, "kind": fidx.kind, **queries_for(fidx, ids, vecs, queries, filt, allowed, nf)}
    print("faiss", json.dumps(res["faiss"]), flush=True)
    del fidx

    tmp = Path(tempfile.mkdtemp(prefix="itemtower-milvus-bench-"))
    path = str(tmp / "milvus.db")
    try:
        midx, build = run_milvus_file(path, ids, vecs, items)
        res["milvus-file"] = {**build, **queries_for(midx, ids, vecs, queries, filt, allowed, nf)}
        print("milvus-file", json.dumps(res["milvus-file"]), flush=True)
        midx.close()
        if not a.no_server:
            res["milvus-server"] = run_server(path, ids, vecs, queries, filt, allowed, int(vecs.shape[1]),
                                              a.filtered_queries)
            print("milvus-server", json.dumps(res["milvus-server"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2))


def run_server(path, ids, vecs, queries, filt, allowed, dim, n_filtered) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from milvus_support import free_port, wait_for_port

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", path, "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, 600, proc)
        idx = MilvusIndex.connect(f"http://127.0.0.1:{port}", dim, index_type="HNSW", ef_search=32,
                                  read_cache_seconds=0)
        idx.search(vecs[0], K)  # the first search loads the segments and their indexes
        opened = time.perf_counter() - t0
        out = {"open_s": opened, **queries_for(idx, ids, vecs, queries, filt, allowed, n_filtered)}
        idx.close()
        return out
    finally:
        proc.kill()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
