"""Embed (and index) time and peak resident memory against catalog size (issue 13, BENCHMARKS.md 14).

    nice -n 10 .venv/bin/python benchmarks/scale_embed.py --sizes 10000 100000 [--index] [--threads 1]

Generated catalogs (`itemtower generate`, the K-Fashion demo: Korean and English titles) in a temporary folder;
one default-architecture model fitted on the first 10,000 items (benchmarks/speed_parts.build_model: speed is the
architecture's); each size is one `itemtower embed` (and `itemtower index`) subprocess, its wall time and peak
RSS from its own rusage. Linear cost shows as constant items/s; bounded memory as RSS growing by the kept items
and vectors, not by per-item encodings. Results: runs/bench/scale_embed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_parts as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--index", action="store_true", help="also time `itemtower index` per size")
    ap.add_argument("--threads", type=int, default=None)
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
            sp.run_command([str(BIN / "itemtower"), "generate", "--n", str(n), "--seed", "0", "--out", str(cats[n])])
        model, _, _, _ = sp.build_model(read_catalog(cats[10_000]).items, tmp / "model", lambda s: None)
        for n in args.sizes:
            row = {"items": n}
            wall, rss = sp.run_command([str(BIN / "itemtower"), "embed", "--model", str(model), "--catalog",
                                        str(cats[n]), "--out", str(tmp / "e.npz"), *extra])
            row.update(embed_s=wall, embed_items_s=n / wall, embed_rss_mb=rss, embed_load=sp.load())
            if args.index:
                wall, rss = sp.run_command([str(BIN / "itemtower"), "index", "--model", str(model), "--catalog",
                                            str(cats[n])])
                row.update(index_s=wall, index_items_s=n / wall, index_rss_mb=rss, index_load=sp.load())
            rows.append(row)
            print(json.dumps(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                            "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
