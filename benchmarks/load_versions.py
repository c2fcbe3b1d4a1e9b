"""Several versions of the service under the same load, interleaved: which change helped, measured fairly.

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python benchmarks/load_versions.py --version before=/tmp/before/src --version now=src

Each version (a `src` directory put first on PYTHONPATH) serves its own hard-linked copy of the index directory
(the directory lock allows one process per directory; nothing is written, so the copies share the bytes), all of
them and the bare endpoint (benchmarks/load/bare_app.py) run at once, and every round runs wrk on each in turn,
so that a change in the machine's load hits every version alike. Medians over rounds, ratios to the bare endpoint.
Reuses the model and index of benchmarks/load.py (--work). Every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import threading
import time
import http.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load as L  # noqa: E402  (benchmarks/load.py: server(), wrk(), _median())


class Writer:
    """PUTs new items (catalog items under new ids) at `rate` per second to one service while wrk reads, so that
    reads are measured with writes arriving (the neighbour lists are checked against each)."""

    def __init__(self, url: str, items: list[dict], rate: float, name: str) -> None:
        self.url, self.items, self.rate, self.name = url, items, rate, name
        self.done = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Writer":
        if self.rate > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        start, n = time.monotonic(), self.done
        while not self._stop.is_set():
            item = dict(self.items[self.done % len(self.items)])
            item["title"] = f"{item.get('title', '')} new {self.done}"
            item.pop("id", None)
            conn.request("PUT", f"/items/bench-{self.name}-{self.done}", body=json.dumps(item),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            self.done += 1
            self.failed += resp.status >= 300
            wait = start + (self.done - n) / self.rate - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action="append", required=True, help="NAME=SRC_DIR (repeatable)")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--version-env", action="append", default=[],
                   help="NAME=KEY=VALUE: an environment variable for one version (repeatable), e.g. "
                        "now-search=ITEMTOWER_NEIGHBOUR_DEPTH=0 with --version now-search=src")
    p.add_argument("--writes-per-s", type=float, default=0.0,
                   help="PUT new items at this rate to each version while it is read (0: reads only)")
    p.add_argument("--work", type=Path, default=Path("/tmp/itemtower-load"))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    model = L.prepare(a.work, a.items)
    lua = {"WRK_N_ITEMS": str(a.items), "WRK_K": "10"}
    payload = a.work / "payload.json"
    if not payload.exists():
        sys.exit(f"{payload} is missing: run benchmarks/load.py once first")
    copies = []
    with contextlib.ExitStack() as stack:
        bp = L._free_port()
        stack.enter_context(L.server(["--app-dir", str(L.HERE), "bare_app:app"],
                                     {"ITEMTOWER_BENCH_PAYLOAD": str(payload)}, bp))
        urls = {"bare": f"http://127.0.0.1:{bp}"}
        for i, spec in enumerate(a.version):
            name, src = spec.split("=", 1)
            copy = a.work / f"versions-{i}"
            if copy.exists():
                shutil.rmtree(copy)
            shutil.copytree(model, copy, copy_function=os.link, ignore=shutil.ignore_patterns("write.lock"))
            for log in copy.rglob("wal*"):  # appended to in place: each copy needs its own bytes, not a link
                data = log.read_bytes()
                log.unlink()
                log.write_bytes(data)
            copies.append(copy)
            port = L._free_port()
            extra = dict(e.split("=", 2)[1:] for e in a.version_env if e.split("=", 1)[0] == name)
            stack.enter_context(L.server(["--factory", "itemtower.serve.app:create_app"],
                                         {"ITEMTOWER_MODEL": str(copy), "PYTHONPATH": str(Path(src).resolve()),
                                          **extra}, port))
            urls[name] = f"http://127.0.0.1:{port}"
        for name, url in urls.items():
            if name != "bare":
                L.wait_for_lists(url)
        for url in urls.values():  # warm-up
            L.wrk(url, L.HERE / "similar.lua", a.connections, 2, lua)
        runs: dict[str, list[dict]] = {n: [] for n in urls}
        catalog = a.work / f"catalog-{a.items}.jsonl"
        sample = [json.loads(line) for line in catalog.open().readlines()[:2000]] if a.writes_per_s else []
        writers = {n: Writer(u, sample, a.writes_per_s if n != "bare" else 0, n) for n, u in urls.items()}
        for r in range(a.rounds):
            for name, url in urls.items():
                with writers[name]:
                    runs[name].append(L.wrk(url, L.HERE / "similar.lua", a.connections, a.duration, lua))
                runs[name][-1]["writes"] = writers[name].done
                runs[name][-1]["write_errors"] = writers[name].failed
            print(f"round {r + 1}:", {n: round(v[-1]["rps"]) for n, v in runs.items()}, flush=True)
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
    bare = statistics.median(x["rps"] for x in runs["bare"])
    res = {n: {**L._median(v), "rps_ratio": L._median(v)["rps"] / bare, "rounds": v} for n, v in runs.items()}
    (a.out or a.work / "versions.json").write_text(json.dumps(res, indent=2))
    print("| version | req/s | x bare | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for n, m in res.items():
        print(f"| {n} | {m['rps']:.0f} | {m['rps_ratio']:.2f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
              f"{m['errors']:.0f} |")


if __name__ == "__main__":
    main()
