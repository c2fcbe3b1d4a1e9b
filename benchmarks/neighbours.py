"""The kept similar-by-id lists (serve/neighbours.py) on a real index: are they what a fresh search returns after
writes, what does a write cost, and how much memory do they take?

    .venv/bin/python benchmarks/neighbours.py                       # the 100k index of benchmarks/load.py
    .venv/bin/python benchmarks/neighbours.py --hold-out 2000 --check 1000

Protocol: load the index benchmarks/load.py built (real tower vectors), take `--hold-out` items out, fill the
lists of the rest, then write the held-out items back one by one through `NeighbourCache.note` (the service's
write path): each write is a new item that belongs in other items' lists. Then, for `--check` random items, the
list against a fresh search of the index as it now is (the same HNSW search the route would run): Recall@10 and
the share of lists that are exactly the search's top 10. Also: the time of `note` per write, of `lookup` and of a
search, medians; resident memory before and after the fill.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from itemtower.index.store import load_current
from itemtower.serve.neighbours import NeighbourCache


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("/tmp/itemtower-load/model-100000/index"))
    p.add_argument("--hold-out", type=int, default=2000)
    p.add_argument("--check", type=int, default=1000)
    p.add_argument("--depth", type=int, default=30)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    index = load_current(a.index)
    index.configure(search_threads=1)
    if index.needs_rebuild():
        index.rebuild()
    ids = list(index.ids())
    held = [ids[i] for i in rng.choice(len(ids), a.hold_out, replace=False)]
    saved = [(h, index.vector(h), index.get(h)) for h in held]
    for h in held:
        index.delete(h)
    print(f"index: {index} ({len(index)} live after the hold-out)", flush=True)

    cache = NeighbourCache(depth=a.depth, max_items=len(ids))
    rss0, t0 = _rss_mb(), time.perf_counter()
    cache.fill_in_background(index).join()
    fill_s, rss1 = time.perf_counter() - t0, _rss_mb()
    print(f"filled {len(cache)} lists in {fill_s:.1f} s; RSS {rss0:.0f} -> {rss1:.0f} MB", flush=True)

    note_ms = []
    for h, vec, item in saved:
        index.upsert([h], vec.reshape(1, -1), [item])
        t = time.perf_counter()
        cache.note(index, [h], vec.reshape(1, -1))
        note_ms.append((time.perf_counter() - t) * 1e3)

    live = list(index.ids())
    found = total = exact = 0
    lookup_us, search_us = [], []
    for item_id in (live[i] for i in rng.choice(len(live), a.check, replace=False)):
        t = time.perf_counter()
        got = cache.lookup(item_id, a.k)
        lookup_us.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        want = index.search(index.vector(item_id), a.k, exclude={item_id})
        search_us.append((time.perf_counter() - t) * 1e6)
        if got is None:
            got = cache.compute(index, item_id)[: a.k]
        g, w = [h for h, _ in got], [h for h, _ in want]
        found += len(set(g) & set(w))
        total += len(w)
        exact += g == w
    res = {"index": str(index), "items": len(live), "hold_out": a.hold_out, "depth": a.depth,
           "fill_s": round(fill_s, 1), "rss_mb_before_fill": round(rss0), "rss_mb_after_fill": round(rss1),
           "note_ms_median": round(statistics.median(note_ms), 3), "note_ms_p99": round(float(np.percentile(note_ms, 99)), 3),
           "lookup_us_median": round(statistics.median(lookup_us), 1),
           "search_us_median": round(statistics.median(search_us), 1),
           f"recall_at_{a.k}_vs_fresh_search": round(found / total, 4), "lists_exactly_the_search": round(exact / a.check, 4),
           "hit_rate": cache.info()["hit_rate"],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print("| figure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in res.items()))
    if a.out:  # the same figures as JSON
        a.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
