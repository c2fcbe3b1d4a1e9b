"""`itemtower convert ...`: public catalogs (Myntra, Musinsa) and a shop's own table -> itemtower JSON Lines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from itemtower.cli.common import fail as _fail

__all__ = ["convert_app"]

convert_app = typer.Typer(no_args_is_help=True, help="Convert a public catalog into itemtower JSONL.")


def _write_converted(result, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write(out)
    n_err = sum(p.severity == "error" for p in result.problems)
    typer.echo(f"wrote {len(result.items)} items to {out}"
               + (f" and {len(result.pairs)} pairs to {out.with_suffix('.pairs.tsv')}" if result.pairs else "")
               + (f"; {len(result.problems)} problems ({n_err} errors)" if result.problems else ""))
    for p in result.problems[:20]:
        typer.echo(f"  {p}", err=True)


@convert_app.command("myntra")
def convert_myntra(src: Path = typer.Option(..., help="folder with myntra_apparel_*.jsonl"),
                   out: Path = typer.Option(...),
                   with_groups: bool = typer.Option(False, help="put colour-variant groups into `group` "
                                                    "(supervised; keep off for self-supervised benchmarks)"),
                   product_fields: bool = typer.Option(True, help="price point (std) and variantName (re) as "
                                                       "features; --no-product-fields = the first adapter's items"),
                   images: Optional[Path] = typer.Option(None, help="folder of <id>.jpg photos: fills `image` "
                                                         "for the styles that have one")
                   ) -> None:
    """Myntra apparel -> JSONL; colour-variant pairs -> OUT.pairs.tsv (the evaluation answer key)."""
    from itemtower.catalog.adapters import myntra

    if not src.is_dir():
        _fail(f"source folder not found: {src}")
    if images is not None and not images.is_dir():
        _fail(f"images folder not found: {images}")
    _write_converted(myntra.convert(src, with_groups=with_groups, product_fields=product_fields,
                                    images_dir=images), out)


@convert_app.command("musinsa")
def convert_musinsa(src: Path = typer.Option(..., help="folder with summary_*.csv"),
                    out: Path = typer.Option(...)) -> None:
    """Musinsa listing CSVs (Korean titles) -> JSONL."""
    from itemtower.catalog.adapters import musinsa

    if not src.is_dir():
        _fail(f"source folder not found: {src}")
    _write_converted(musinsa.convert(src), out)


@convert_app.command("table")
def convert_table(src: Path = typer.Option(..., help="the shop's table: .csv, .tsv, .jsonl or .parquet"),
                  map_file: Optional[Path] = typer.Option(None, "--map", help="TOML column map (see --suggest-map)"),
                  suggest: Optional[Path] = typer.Option(None, "--suggest-map", help="write a suggested TOML map "
                                                         "here, from the data, for you to edit"),
                  out: Optional[Path] = typer.Option(None, help="output catalog JSONL (with --map)"),
                  limit: int = typer.Option(20, help="problems to print")) -> None:
    """A shop's own table -> JSONL through a column map: id, title, std, re, image, group columns, separators,
    renames, number buckets. Without a map, --suggest-map proposes one. Bad rows are named by line and column."""
    from itemtower.catalog.adapters import table, table_suggest

    if (map_file is None) == (suggest is None):
        _fail("give --map MAP.toml (convert) or --suggest-map MAP.toml (propose a map), not both or neither")
    try:
        if suggest is not None:
            _, suggestions, problems = table_suggest.suggest_map(src, suggest)
            roles = Counter(s.role for s in suggestions)
            typer.echo(f"wrote a suggested map to {suggest}: " + ", ".join(f"{n} {r}" for r, n in roles.items())
                       + "; check it, then: itemtower convert table --src "
                       f"{src} --map {suggest} --out CATALOG.jsonl")
            for p in problems[:limit]:
                typer.echo(f"  {p}", err=True)
            return
        if out is None:
            _fail("--map needs --out FILE.jsonl")
        result = table.convert(src, table.load_map(map_file))
    except (OSError, ValueError, ImportError) as e:
        _fail(str(e))
    result.write(out)
    for p in result.problems[:limit]:
        typer.echo(f"{p.severity}: {p}")
    if len(result.problems) > limit:
        typer.echo(f"... and {len(result.problems) - limit} more")
    typer.echo(result.report().summary())
    typer.echo(f"wrote {len(result.items)} items to {out}")
