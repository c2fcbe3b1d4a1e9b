"""`itemtower embed`'s work, after the flags: one streamed run into OUT.npz, one shard of it (--shard i/n, or
RANK/WORLD_SIZE under torchrun) into OUT.npz.shards/, or the merge of the shards (--merge) into OUT.npz
(artifacts/streaming.py, artifacts/shards.py). Problems in the catalog are summarised on stderr once it is read
(the stream reports them as it goes; the file is never held whole)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from itemtower.cli.common import fail, progress_bar, report_problems

__all__ = ["run_embed"]


def run_embed(load_model: Callable[[], object], model: Path, catalog: Path, out: Path, batch_size: int,
              shard: Optional[str], merge: bool) -> None:
    from itemtower.artifacts.shards import ShardError, merge_shards, parse_shard, shard_dir, shard_from_env

    if not catalog.exists():
        fail(f"catalog not found: {catalog}")
    if catalog.is_dir():
        fail(f"{catalog} is a directory; --catalog takes a .jsonl file (one JSON object per line)")
    try:
        if merge:
            if shard:
                fail("--merge joins the shards already written; run it without --shard")
            n, dim = merge_shards(out, model_dir=model, catalog=catalog)
            typer.echo(f"merged {shard_dir(out)} into {n} x {dim} embeddings in {out}")
            return
        spec = parse_shard(shard) if shard else shard_from_env()
        emb = load_model()
        if spec is None:
            _whole(emb, catalog, out, batch_size)
        else:
            _shard(emb, model, catalog, out, batch_size, *spec)
    except (ShardError, OSError, ValueError) as e:  # bad spec/shards, unreadable or non-JSONL catalog, no items
        fail(str(e))


def _whole(emb, catalog: Path, out: Path, batch_size: int) -> None:
    from itemtower.artifacts.streaming import embed_catalog

    with progress_bar(catalog, "embed") as bar:
        n, dim, stream = embed_catalog(emb, catalog, out, batch_size, on_chunk=lambda done: bar.update(done - bar.n))
    report_problems(stream)
    typer.echo(f"wrote {n} x {dim} embeddings to {out}")


def _shard(emb, model: Path, catalog: Path, out: Path, batch_size: int, i: int, n: int) -> None:
    from itemtower.artifacts.shards import embed_shard, shard_dir

    with progress_bar(catalog, f"embed shard {i}/{n}") as bar:
        bar.total = (bar.total + n - 1 - i) // n  # this shard's share of the lines, about
        m, skipped, stream = embed_shard(emb, model, catalog, out, i, n, batch_size,
                                         on_chunk=lambda done: bar.update(done - bar.n))
    report_problems(stream)
    where = shard_dir(out)
    if skipped:
        typer.echo(f"shard {i}/{n} already done ({m.rows} items in {where}); skipped")
    else:
        typer.echo(f"wrote shard {i}/{n}: {m.rows} x {m.dim} embeddings to {where}")
    typer.echo(f"when every shard is done: itemtower embed --merge --model {model} --catalog {catalog} --out {out}")
