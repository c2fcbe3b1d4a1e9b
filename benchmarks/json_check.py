"""What the JSON-safety check (itemtower.catalog.jsonsafe, issue 10) costs `read_catalog`: the same catalog read with the
check (parse hooks + text test, the walk only for suspect lines) and without it (plain json.loads, no walk),
alternating, medians of N rounds.

    .venv/bin/python benchmarks/json_check.py [--n 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import itemtower.catalog.records as catalog
from itemtower.catalog import write_catalog
from itemtower.catalog.demo import generate
from itemtower.catalog.schema import KFASHION


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "catalog.jsonl"
        write_catalog(path, generate(args.n, 0))
        check, parse = catalog.json_problems, catalog._parse_line
        times: dict[bool, list[float]] = {True: [], False: []}
        ratios = []
        for _ in range(args.rounds):
            for on in (False, True):  # alternating: a round's pair shares the machine's load
                # off: plain json.loads and no walk, as read_catalog was before the check
                catalog.json_problems = check if on else (lambda obj: [])
                catalog._parse_line = parse if on else (lambda text: (json.loads(text), True))
                t = time.perf_counter()
                report = catalog.read_catalog(path, KFASHION)
                times[on].append(time.perf_counter() - t)
                assert len(report.items) == args.n
            ratios.append(times[True][-1] / times[False][-1])
        catalog.json_problems, catalog._parse_line = check, parse
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"read_catalog, {args.n} demo items, {args.rounds} rounds: without the check {off:.2f} s, with it "
          f"{on:.2f} s; with/without (median of rounds) {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
