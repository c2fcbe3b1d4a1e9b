"""Milvus (milvus-lite file) toward a million items, bounded in time (issue 14: build and query times at 1M).

    nice -n 10 .venv/bin/python benchmarks/milvus_scale.py --n 1000000 --max-insert-seconds 540 \
        --out runs/bench/milvus_scale.json

Data: the 100k real tower vectors and items of benchmarks/load.py's index, made into `--n` vectors the way
benchmarks/ann_scale.py makes its million (each new vector between a real one and another, plus noise,
re-normalised); the items of the made vectors are their source item's under a new id. MilvusIndex as the service
uses it (HNSW M 32, efConstruction 80, ef 32; 16x under a filter), rows upserted 1,000 per call, in order, until
all are in or `--max-insert-seconds` have passed; then flush and milvus-lite's background segment-index build
(waited for at most `--max-index-seconds`), then `--queries` similar-by-id queries over what was inserted
(one at a time, k 10, the item excluded) and the first `--filtered-queries` of them under a std filter ~10% pass,
with Recall@10 against the exact top 10 over the inserted rows. When the insert stops early the row says so, with
the rate and the time the whole `--n` would take at it: an extrapolation, not a measurement. FAISS at 1M:
BENCHMARKS.md 11f (benchmarks/ann_scale.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann_scale import made_vectors  # noqa: E402
from milvus import load_data, pick_filter, queries_for  # noqa: E402

from itemtower.index.milvus_store import MilvusIndex  # noqa: E402


def _wait_index(path: str, collection: str, timeout: float) -> bool:
    """milvus-lite's background segment-index build after a flush (private API, the benchmark only)."""
    import os

    from milvus_lite import server_manager_instance

    _, db, _ = server_manager_instance._servers[os.path.abspath(path)]
    try:
        db.get_collection(collection)._wait_for_bg(timeout=timeout)
        return True
    except Exception:  # noqa: BLE001  (a timeout: the queries then run over what is indexed so far)
        return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("/tmp/itemtower-load/model-100000/index"))
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--max-insert-seconds", type=float, default=540)
    p.add_argument("--max-index-seconds", type=float, default=240)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--filtered-queries", type=int, default=3)
    p.add_argument("--synthetic", action="store_true",
                   help="made from 100k random unit vectors with random std fields, not load.py's real index")
    p.add_argument("--dim", type=int, default=512, help="with --synthetic")
    p.add_argument("--faiss", action="store_true", help="the same vectors, items and queries in FaissIndex instead "
                   "(HNSW M 32 / efConstruction 80 / ef 32, all rows in one upsert): the reference for the Milvus run")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    base = argparse.Namespace(index=a.index, n=100_000, synthetic=a.synthetic, dim=a.dim)
    ids0, vecs0, items0 = load_data(base)
    vecs = made_vectors(vecs0, a.n, np.random.default_rng(0))
    m = len(ids0)
    res: dict = {"n_target": a.n, "synthetic": a.synthetic, "dim": int(vecs.shape[1]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if a.faiss:
        return faiss_run(a, ids0, vecs, items0, res)
    tmp = Path(tempfile.mkdtemp(prefix="itemtower-milvus-scale-"))
    path = str(tmp / "milvus.db")
    try:
        idx = MilvusIndex.connect(path, vecs.shape[1], index_type="HNSW", hnsw_m=32, ef_construction=80,
                                  ef_search=32, read_cache_seconds=0)
        t0 = time.perf_counter()
        done = 0
        while done < a.n and time.perf_counter() - t0 < a.max_insert_seconds:
            rows = range(done, min(done + 1000, a.n))
            idx.upsert([ids0[k % m] if k < m else f"{ids0[k % m]}-m{k // m}" for k in rows], vecs[rows.start:rows.stop],
                       [items0[k % m] for k in rows])
            done = rows.stop
            if done % 50_000 == 0:
                print(f"{done} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        insert_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        idx.save()  # flush
        indexed = _wait_index(path, idx.collection, a.max_index_seconds)
        flush_s = time.perf_counter() - t1
        res.update(inserted=done, insert_s=insert_s, insert_rows_s=done / insert_s, stopped=done < a.n,
                   insert_extrapolated_s=a.n / (done / insert_s), flush_and_index_s=flush_s, index_finished=indexed)
        print(json.dumps(res), flush=True)
        ids = [ids0[k % m] if k < m else f"{ids0[k % m]}-m{k // m}" for k in range(done)]
        items = [items0[k % m] for k in range(done)]
        filt, allowed, queries = query_setup(items, a, res)
        res["milvus-file"] = queries_for(idx, ids, vecs[:done], queries, filt, allowed, a.filtered_queries)
        print("milvus-file", json.dumps(res["milvus-file"]), flush=True)
        idx.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2))


def query_setup(items: list[dict], a: argparse.Namespace, res: dict) -> tuple[dict, np.ndarray, list[int]]:
    """The std filter (~10% pass), which items pass it, and the seeded query rows over the stored items."""
    filt = pick_filter(items)
    (field, value), = filt.items()
    allowed = np.array([value in (it.get("std") or {}).get(field, []) for it in items])
    n = len(items)
    queries = np.random.default_rng(1).choice(n, size=min(a.queries, n), replace=False).tolist()
    res.update(filter=filt, filter_share=float(allowed.mean()), queries=len(queries),
               filtered_queries=a.filtered_queries)
    return filt, allowed, queries


def faiss_run(a: argparse.Namespace, ids0: list[str], vecs: np.ndarray, items0: list[dict], res: dict) -> None:
    from itemtower.index import FaissIndex

    m = len(ids0)
    ids = [ids0[k % m] if k < m else f"{ids0[k % m]}-m{k // m}" for k in range(a.n)]
    items = [items0[k % m] for k in range(a.n)]
    t0 = time.perf_counter()
    idx = FaissIndex(vecs.shape[1])
    idx.upsert(ids, vecs, items)
    res.update(backend="faiss", inserted=a.n, build_s=time.perf_counter() - t0, kind=idx.kind)
    print(json.dumps(res), flush=True)
    filt, allowed, queries = query_setup(items, a, res)
    res["faiss"] = queries_for(idx, ids, vecs, queries, filt, allowed, a.filtered_queries)
    print("faiss", json.dumps(res["faiss"]), flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
