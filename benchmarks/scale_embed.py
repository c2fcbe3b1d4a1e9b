"""Embed (and index) time and peak resident memory against catalog size (issue 13, BENCHMARKS.md 14).

    nice -n 10 .venv/bin/python benchmarks/scale_embed.py --sizes 10000 100000 [--index | --index-only] [--threads 1]
    nice -n 10 .venv/bin/python benchmarks/scale_embed.py --sizes 1000000 --threads 1 --max-seconds 600

Generated catalogs (`itemtower generate`, the K-Fashion demo: Korean and English titles) in a temporary folder
(past 100,000 items: the 100,000-item one repeated, ids and groups suffixed per copy, since the generator holds
its items in memory);
one default-architecture model fitted on the first 10,000 items (benchmarks/speed_parts.build_model: speed is the
architecture's); each size is one `itemtower embed` (and/or `itemtower index`: --index, --index-only) subprocess,
its wall time and peak RSS from its own rusage (index_s, index_rss_mb; the index's items, its layout and its
size on disk beside them). Linear cost shows as constant items/s; bounded memory as RSS growing by the kept items
and vectors, not by per-item encodings. Results: runs/bench/scale_embed.json.

--max-seconds S stops an embed after S seconds (a 1M catalog takes more than an hour on the busy 2-core machine):
the row then has the items done (the command's progress line), the resident memory sampled every 2 s over the
run (/proc/PID/status VmRSS: flat once the first chunk is in, if nothing grows with the catalog), its peak, and
the extrapolated time; it says "stopped" so nobody reads it as a finished run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_parts as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


GENERATE_MAX = 100_000


def _generate(n: int, path: Path) -> None:
    sp.run_command([str(BIN / "itemtower"), "generate", "--n", str(n), "--seed", "0", "--out", str(path)])


def _repeat(src: Path, n: int, out: Path) -> None:
    """n items: the generated catalog's lines again and again, each copy's ids (and variant groups) suffixed
    with -rK so that every id is new (streamed: nothing held)."""
    written, k = 0, 0
    with out.open("w", encoding="utf-8") as fh:
        while written < n:
            with src.open(encoding="utf-8") as lines:
                for line in lines:
                    if written == n:
                        break
                    it = json.loads(line)
                    if k:
                        it["id"] = f"{it['id']}-r{k}"
                        if it.get("group"):
                            it["group"] = f"{it['group']}-r{k}"
                    fh.write(json.dumps(it, ensure_ascii=False) + "\n")
                    written += 1
            k += 1


def run_sampled(args: list[str], max_s: float, log_path: Path) -> dict:
    """One command, stopped after max_s seconds: wall, peak RSS (rusage), RSS samples (t, MB) and the items
    done by its last progress line."""
    t0 = time.perf_counter()
    with log_path.open("wb") as err:
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        samples, stopped = [], False
        while p.poll() is None:
            time.sleep(2)
            try:
                kb = next(int(line.split()[1]) for line in open(f"/proc/{p.pid}/status") if line.startswith("VmRSS"))
                samples.append((round(time.perf_counter() - t0, 1), round(kb / 1024, 1)))
            except (OSError, StopIteration):
                pass
            if time.perf_counter() - t0 > max_s and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                stopped = True
                break
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    done = re.findall(rb"(\d+)/(\d+) \[", log_path.read_bytes())
    return {"wall_s": wall, "peak_rss_mb": ru.ru_maxrss / 1024, "rss_samples": samples, "stopped": stopped,
            "items_done": int(done[-1][0]) if done else None, "status": status}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--index", action="store_true", help="also time `itemtower index` per size")
    ap.add_argument("--index-only", action="store_true", help="time `itemtower index` only (no embed)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop each embed after this long (see above)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "scale_embed.json")
    args = ap.parse_args()
    from itemtower.catalog import read_catalog

    rows = []
    extra = ["--threads", str(args.threads)] if args.threads else []
    with tempfile.TemporaryDirectory(prefix="itemtower-scale-") as tmp:
        tmp = Path(tmp)
        cats = {}
        for n in sorted(set(args.sizes) | {10_000}):
            cats[n] = tmp / f"demo_{n}.jsonl"
            t = time.perf_counter()
            if n > GENERATE_MAX:  # the generator holds its items in memory: larger catalogs repeat a generated one
                if GENERATE_MAX not in cats:
                    cats[GENERATE_MAX] = tmp / f"demo_{GENERATE_MAX}.jsonl"
                    _generate(GENERATE_MAX, cats[GENERATE_MAX])
                _repeat(cats[GENERATE_MAX], n, cats[n])
            else:
                _generate(n, cats[n])
            print(f"catalog of {n} items in {time.perf_counter() - t:.0f} s", flush=True)
        model, _, _, _ = sp.build_model(read_catalog(cats[10_000]).items, tmp / "model", lambda s: None)
        for n in args.sizes:
            row = {"items": n}
            if not args.index_only:
                _embed_row(row, n, model, cats[n], tmp, extra, args.max_seconds)
            if args.index or args.index_only:
                _index_row(row, n, model, cats[n])
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "rss_samples"}), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                            "threads": args.threads, "rows": rows}, indent=2))


def _embed_row(row: dict, n: int, model: Path, catalog: Path, tmp: Path, extra: list[str],
               max_seconds: float | None) -> None:
    cmd = [str(BIN / "itemtower"), "embed", "--model", str(model), "--catalog", str(catalog), "--out",
           str(tmp / "e.npz"), *extra]
    if max_seconds:
        r = run_sampled(cmd, max_seconds, tmp / f"embed_{n}.log")
        done = r["items_done"] or (0 if r["stopped"] else n)
        row.update(embed_s=r["wall_s"], embed_rss_mb=r["peak_rss_mb"], embed_load=sp.load(),
                   stopped=r["stopped"], items_done=done, rss_samples=r["rss_samples"],
                   embed_items_s=done / r["wall_s"],
                   extrapolated_s=n / done * r["wall_s"] if done else None)
    else:
        wall, rss = sp.run_command(cmd)
        row.update(embed_s=wall, embed_items_s=n / wall, embed_rss_mb=rss, embed_load=sp.load())


def _index_row(row: dict, n: int, model: Path, catalog: Path) -> None:
    """One `itemtower index` (MODEL/index replaced each time): wall, peak RSS, and what it wrote."""
    wall, rss = sp.run_command([str(BIN / "itemtower"), "index", "--model", str(model), "--catalog", str(catalog)])
    meta = json.loads((model / "index" / "ids.json").read_text(encoding="utf-8"))
    disk = sum(p.stat().st_size for p in (model / "index").iterdir() if p.is_file())
    row.update(index_s=wall, index_items_s=n / wall, index_rss_mb=rss, index_load=sp.load(),
               index_items=meta["count"], index_kind=meta.get("kind", "flat"), index_disk_mb=disk / 2**20)


if __name__ == "__main__":
    main()
