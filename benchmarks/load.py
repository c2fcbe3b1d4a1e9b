"""Load benchmark of the HTTP service: similar-by-id against a bare FastAPI endpoint, and /embed with and without
cross-request batching, with wrk on loopback.

    .venv/bin/python benchmarks/load.py                       # 100k items, 16 connections, 10 s per run
    .venv/bin/python benchmarks/load.py --items 20000 --duration 5 --skip-embed

What it does (everything under --work, reused by later runs):
  1. prepare: `itemtower generate` N items, `itemtower train --fast` on the first 3,000, `itemtower index` all N
     (real tower vectors, so HNSW sees the structure real embeddings have); minutes, once.
  2. starts the service (`uvicorn --factory itemtower.serve.app:create_app`, ITEMTOWER_MODEL=the model) and the
     bare endpoint (benchmarks/load/bare_app.py) returning the bytes of one real similar response;
  3. wrk -c C -d D on each, alternating, `--rounds` times: GET /items/<random id>/similar?k=10 (similar.lua);
  4. POST /embed, one item per request, with ITEMTOWER_BATCH_WAIT_MS=W and with batching off (=0).
Medians over rounds are printed as a markdown table and written to --out as JSON.

Needs wrk (`apt-get install -y wrk`). Binds 127.0.0.1 only; every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "load"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def prepare(work: Path, n_items: int) -> Path:
    """A model and an N-item index under `work` (built once); returns the model directory."""
    model = work / f"model-{n_items}"
    if (model / "index" / "ids.json").exists():
        return model
    work.mkdir(parents=True, exist_ok=True)
    cat = work / f"catalog-{n_items}.jsonl"
    _run([str(BIN / "itemtower"), "generate", "--n", str(n_items), "--seed", "0", "--out", str(cat)])
    small = work / "catalog-3000.jsonl"
    with open(cat, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
        for _, line in zip(range(3000), src):
            dst.write(line)
    _run([str(BIN / "itemtower"), "train", "--catalog", str(small), "--out", str(model), "--fast"])
    _run([str(BIN / "itemtower"), "index", "--model", str(model), "--catalog", str(cat)])
    return model


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback only)
        return r.read()


@contextmanager
def server(args: list[str], env: dict[str, str], port: int, ready_path: str = "/health",
           timeout: float = 180.0) -> Iterator[subprocess.Popen]:
    """Start `python -m uvicorn ARGS --port PORT`, wait until ready_path answers, stop it on exit."""
    cmd = [sys.executable, "-m", "uvicorn", *args, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(cmd)}")
            try:
                _get(f"http://127.0.0.1:{port}{ready_path}", timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after {timeout:.0f}s: {' '.join(cmd)}") from None
                time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wait_for_lists(url: str, timeout: float = 900.0) -> float | None:
    """Wait until the service's neighbour lists (serve/neighbours.py) are filled; seconds waited, None if off."""
    start = time.monotonic()
    while True:
        h = json.loads(_get(f"{url}/health"))
        lists = h.get("neighbours")
        if lists is None:
            return None
        if lists["items"] >= h["n_items"] or time.monotonic() - start > timeout:
            waited = time.monotonic() - start
            print(f"{url}: neighbour lists {lists['items']} of {h['n_items']} after {waited:.0f} s", flush=True)
            return waited
        time.sleep(2.0)


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, script: Path, connections: int, duration: float, env: dict[str, str] | None = None) -> dict:
    """One wrk run; returns p50/p90/p99 (ms), requests/s, requests, errors (non-2xx + socket errors)."""
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration:g}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})},
                         timeout=duration + 60).stdout
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.M))  # wrk pads "1.02s " with a space
    if not {"50", "90", "99"} <= set(lat):
        raise RuntimeError(f"wrk printed no latency distribution (no request answered?):\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"p50_ms": _ms(lat["50"]), "p90_ms": _ms(lat["90"]), "p99_ms": _ms(lat["99"]), "rps": rps,
            "requests": total, "errors": errors}


def _median(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def bench_similar(model: Path, n_items: int, a: argparse.Namespace, work: Path) -> dict:
    """Service vs bare endpoint, alternating, `a.rounds` times each; the medians and the ratios."""
    sp, bp = _free_port(), _free_port()
    env = {"ITEMTOWER_MODEL": str(model), **dict(kv.split("=", 1) for kv in a.env)}
    lua_env = {"WRK_N_ITEMS": str(n_items), "WRK_K": str(a.k)}
    with server(["--factory", "itemtower.serve.app:create_app"], env, sp):
        payload = _get(f"http://127.0.0.1:{sp}/items/demo-000000/similar?k={a.k}")
        (work / "payload.json").write_bytes(payload)
        with server(["--app-dir", str(HERE), "bare_app:app"],
                    {"ITEMTOWER_BENCH_PAYLOAD": str(work / "payload.json")}, bp):
            svc_url, bare_url = f"http://127.0.0.1:{sp}", f"http://127.0.0.1:{bp}"
            wait_for_lists(svc_url)
            for url in (svc_url, bare_url):  # warm-up: first requests pay for imports and page faults
                wrk(url, HERE / "similar.lua", a.connections, 2, lua_env)
            svc, bare = [], []
            for r in range(a.rounds):
                bare.append(wrk(bare_url, HERE / "similar.lua", a.connections, a.duration, lua_env))
                svc.append(wrk(svc_url, HERE / "similar.lua", a.connections, a.duration, lua_env))
                print(f"round {r + 1}: service {svc[-1]}\n         bare    {bare[-1]}", flush=True)
    s, b = _median(svc), _median(bare)
    return {"payload_bytes": len(payload), "service": s, "bare": b,
            "rps_ratio": s["rps"] / b["rps"], "p99_ratio": s["p99_ms"] / b["p99_ms"], "rounds": {"service": svc,
                                                                                                  "bare": bare}}


def bench_embed(model: Path, a: argparse.Namespace) -> dict:
    """POST /embed (one item per request) with cross-request batching at its default wait, and switched off."""
    out = {}
    for name, wait in (("batched", a.batch_wait_ms), ("unbatched", "0")):
        port = _free_port()
        env = {"ITEMTOWER_MODEL": str(model), "ITEMTOWER_BATCH_WAIT_MS": wait,
               **dict(kv.split("=", 1) for kv in a.env)}
        with server(["--factory", "itemtower.serve.app:create_app"], env, port):
            url = f"http://127.0.0.1:{port}"
            wrk(url, HERE / "embed.lua", a.connections, 2)
            runs = [wrk(url, HERE / "embed.lua", a.connections, a.duration) for _ in range(a.rounds)]
            out[name] = {"wait_ms": float(wait), **_median(runs)}
            print(f"embed {name}: {out[name]}", flush=True)
    out["rps_gain"] = out["batched"]["rps"] / out["unbatched"]["rps"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="alternating service/bare runs; medians are reported")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch-wait-ms", default="2", help="ITEMTOWER_BATCH_WAIT_MS for the batched embed run")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the service (repeatable)")
    p.add_argument("--skip-embed", action="store_true")
    p.add_argument("--skip-similar", action="store_true")
    p.add_argument("--work", type=Path, default=Path("/tmp/itemtower-load"))
    p.add_argument("--out", type=Path, default=None, help="JSON results (default: WORK/results.json)")
    a = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    model = prepare(a.work, a.items)
    res: dict = {"items": a.items, "connections": a.connections, "duration_s": a.duration, "rounds": a.rounds,
                 "env": a.env, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "cpus": os.cpu_count()}
    if not a.skip_similar:
        res["similar"] = bench_similar(model, a.items, a, a.work)
    if not a.skip_embed:
        res["embed"] = bench_embed(model, a)
    out = a.out or a.work / "results.json"
    out.write_text(json.dumps(res, indent=2))
    print(f"\n{a.items} items, {a.connections} connections, {a.duration:g} s x {a.rounds} rounds (medians)")
    print("| run | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
    if "similar" in res:
        for name in ("service", "bare"):
            r = res["similar"][name]
            print(f"| similar: {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']:.0f} |")
        print(f"ratio service/bare: req/s {res['similar']['rps_ratio']:.2f}, p99 {res['similar']['p99_ratio']:.2f}; "
              f"payload {res['similar']['payload_bytes']} bytes")
    if "embed" in res:
        for name in ("batched", "unbatched"):
            r = res["embed"][name]
            print(f"| embed: {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']:.0f} |")
        print(f"batching gain: {res['embed']['rps_gain']:.2f}x req/s")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
