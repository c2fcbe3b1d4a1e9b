"""What every command shares: one `error:` line and an exit code instead of a traceback; the progress bar over a
catalog's lines and the summary of its problems (embed, index)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["fail", "progress_bar", "report_problems"]


def fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def progress_bar(catalog: Path, desc: str):
    """A tqdm bar over the catalog's lines (counted in blocks first), in items."""
    from tqdm import tqdm

    from itemtower.artifacts.streaming import count_lines

    return tqdm(total=count_lines(catalog), desc=desc, unit="item")


def report_problems(stream) -> None:
    """The catalog's problems (a CatalogStream read to the end), summarised on stderr; nothing when there were none."""
    if stream is not None and stream.problems:
        typer.echo(stream.report().summary(stream.n_items), err=True)
