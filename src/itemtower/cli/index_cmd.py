"""`itemtower index`'s work, after the flags: the catalog streamed into MODEL/index (index/build.py: items read,
embedded and written chunk by chunk, FAISS built at the end; memory flat in the items), or, with
ITEMTOWER_INDEX_BACKEND=milvus, the whole catalog embedded and loaded into the Milvus collection (in memory, as
before: index/backend.py's rebuild_milvus). Problems in the catalog are summarised on stderr as `itemtower embed`
summarises them (cli/embed_cmd.py), once the catalog is read."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import typer

from itemtower.cli.common import fail, progress_bar, report_problems

__all__ = ["run_index"]


def run_index(load_model: Callable[[], object], read_all: Callable[[], object], model: Path, catalog: Path) -> None:
    """`load_model()`: the Embedder (fails with one `error:` line); `read_all()`: the whole catalog's
    CatalogReport, its problems already reported (the Milvus path only)."""
    from itemtower.index.backend import MILVUS, backend_of
    from itemtower.serve.settings import Settings

    settings = Settings(model_dir=model)  # the service's own variables: ITEMTOWER_INDEX_BACKEND, ITEMTOWER_MILVUS_*
    if backend_of(settings) == MILVUS:
        _milvus(settings, load_model(), read_all(), model)
    else:
        _faiss(load_model, model, catalog)


def _faiss(load_model: Callable[[], object], model: Path, catalog: Path) -> None:
    from itemtower.catalog import CatalogStream
    from itemtower.index.build import EmptyIndexError, IndexBuild
    from itemtower.index.lock import DirectoryLocked

    emb = load_model()
    if not catalog.exists():
        fail(f"catalog not found: {catalog}")
    if catalog.is_dir():
        fail(f"{catalog} is a directory; --catalog takes a .jsonl file (one JSON object per line)")
    directory = model / "index"
    stream = CatalogStream(catalog)
    try:
        with IndexBuild(directory) as build:
            with progress_bar(catalog, "index") as bar:
                build.write(emb, stream, on_chunk=lambda done: bar.update(done - bar.n))
            del emb
            _free_embedding_memory()  # before FAISS holds the vectors: the peak is that, not embedding's
            n = build.finish()
    except DirectoryLocked as e:
        fail(str(e))
    except EmptyIndexError:
        report_problems(stream)
        fail(f"{catalog}: no usable items")
    except (OSError, ValueError) as e:  # unreadable, or no line of it is JSON
        fail(str(e))
    report_problems(stream)
    typer.echo(f"indexed {n} items into {directory}")


def _free_embedding_memory() -> None:
    """Give back what embedding held once the model is dropped: the Korean analyser (kiwi, ~200 MB resident,
    cached for the process by features/pretokenize.py; loaded again if anything tokenizes later) and the heap
    pages freed since (glibc keeps them otherwise). At a million items FAISS then adds its 2.6 GB to ~0.7 GB,
    not ~1.1 GB."""
    import ctypes
    import gc

    from itemtower.features.pretokenize import release_kiwi

    release_kiwi()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the pages stay with the process, nothing else changes
        pass


def _milvus(settings, emb, report, model: Path) -> None:
    from itemtower.index.backend import rebuild_milvus

    vecs = emb.embed(report.items, progress=True)
    try:
        where = rebuild_milvus(settings, model, [it["id"] for it in report.items], vecs, report.items)
    except (RuntimeError, ValueError) as e:  # MilvusUnavailable (a RuntimeError) names the URI
        fail(str(e))
    typer.echo(f"indexed {len(report.items)} items into {where}")
