"""What every command shares: one `error:` line and an exit code instead of a traceback."""

from __future__ import annotations

import typer

__all__ = ["fail"]


def fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
