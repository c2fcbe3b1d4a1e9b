"""`itemtower images`: image features for a catalog, and (with --match) photo matches and what they fill in.

Registered on the main typer app by `itemtower.cli` (one line there); the work is in the library modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["images"]

_MAX_WARNINGS_SHOWN = 20


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def images(catalog: Path = typer.Option(..., help="catalog JSONL whose items have `image` (path or URL)"),
           out: Path = typer.Option(..., help="folder for features.npy / features.json (and matched.jsonl)"),
           cache: Optional[Path] = typer.Option(None, help="feature cache folder, by photo content hash "
                                                "(default: OUT/cache; share one between runs and catalogs)"),
           batch_size: int = typer.Option(32, help="photos per encoder batch"),
           allow_urls: bool = typer.Option(False, help="fetch http(s) `image` URLs (off: URLs are skipped)"),
           match: bool = typer.Option(False, help="also match items by photo and reinforce from the matches: "
                                      "writes OUT/matched.jsonl (the catalog with image_matches and the "
                                      "inferred values)"),
           limit: int = typer.Option(1000, help="with --match: match the first N items with a photo (0: all)"),
           k: int = typer.Option(10, help="with --match: neighbours looked at per item"),
           threshold: Optional[float] = typer.Option(None, help="with --match: least cosine of a match "
                                                     "(default: the measured near-duplicate threshold)"),
           field: Optional[list[str]] = typer.Option(None, "--field", help="with --match: STD field(s) to fill "
                                                     "from matches (default: all but colour, brand, price, "
                                                     "season, usage)"),
           colour: bool = typer.Option(False, help="with --match: also name a missing colour from the garment's "
                                       "pixels (off by default: it matched Myntra's base colour for 43% of the "
                                       "photos, 58% at the default --colour-min-share; BENCHMARKS.md 12d)"),
           colour_min_share: float = typer.Option(0.5, help="with --colour: least share of the garment's pixels "
                                                  "the colour needs"),
           progress: bool = typer.Option(True, help="show a progress bar")) -> None:
    """Image features (EfficientNet-Lite0, mean-pooled 1280-d, cached by file content) for every item with a
    photo; a missing or broken photo is a warning. --match: photo neighbours and reinforcement (from: image)."""
    from itemtower.catalog import read_catalog, write_catalog
    from itemtower.images.encoder import INSTALL_HINT, EfficientNetLite0, encoder_available
    from itemtower.images.features import extract, save_features

    if not catalog.exists():
        _fail(f"catalog not found: {catalog}")
    if batch_size < 1:
        _fail("--batch-size must be at least 1")
    if limit < 0 or k < 1:
        _fail("--limit must be 0 (all) or more, --k at least 1")
    report = read_catalog(catalog)
    if report.problems:
        typer.echo(report.summary(), err=True)
    with_photo = [it for it in report.items if it.get("image") is not None]
    if not with_photo:
        _fail(f"{catalog}: no item has an `image`; add one per item (a path relative to the catalog, or an "
              f"absolute path), e.g. with `itemtower convert myntra --images DIR`")
    if not encoder_available():
        _fail(INSTALL_HINT)
    fs = extract(report.items, EfficientNetLite0, cache or out / "cache", base_dir=catalog.parent,
                 batch_size=batch_size, allow_urls=allow_urls, progress=progress)
    save_features(fs, out)
    for iid, msg in fs.warnings[:_MAX_WARNINGS_SHOWN]:
        typer.echo(f"warning: (id {iid!r}): {msg}", err=True)
    if len(fs.warnings) > _MAX_WARNINGS_SHOWN:
        typer.echo(f"... and {len(fs.warnings) - _MAX_WARNINGS_SHOWN} more warnings (OUT/features.json)", err=True)
    typer.echo(f"{len(fs.ids)} of {len(with_photo)} photos usable; of their {len(set(fs.hashes))} distinct files "
               f"{fs.n_cached} came from the cache, {fs.n_encoded} were encoded; {len(fs.warnings)} warnings; "
               f"features in {out}")
    if match:
        _match(report.items, fs, out, catalog.parent, limit, k, threshold, field, colour, colour_min_share,
               allow_urls, write_catalog)


def _match(items, fs, out: Path, base_dir: Path, limit: int, k: int, threshold: Optional[float],
           fields: Optional[list[str]], colour: bool, min_share: float, allow_urls: bool, write_catalog) -> None:
    from itemtower.images.match import NEAR_DUPLICATE, find_matches
    from itemtower.images.reinforce import colour_field_of, format_summary, photo_colours, reinforce_from_images

    if len(fs.ids) < 2:
        _fail("matching needs at least two items with a usable photo")
    queries = fs.ids[:limit] if limit else fs.ids
    thr = NEAR_DUPLICATE if threshold is None else threshold
    matches = find_matches(fs.ids, fs.vectors, queries, k=k, threshold=thr)
    colours = None
    cfield = colour_field_of(dict.fromkeys(f for it in items for f in (it.get("std") or {})))
    if colour and cfield:
        names = [v for it in items for v in (it.get("std") or {}).get(cfield) or ()]
        q = set(queries)
        colours = photo_colours([it for it in items if str(it["id"]) in q], names, base_dir, allow_urls)
    new_items, summary = reinforce_from_images(items, matches, fields=fields or None, colours=colours,
                                               colour_field=cfield, min_colour_share=min_share)
    write_catalog(out / "matched.jsonl", new_items)
    (out / "matches.json").write_text(json.dumps({"threshold": thr, "k": k, "matches": matches}), encoding="utf-8")
    typer.echo(format_summary(summary))
    typer.echo(f"threshold {thr}; wrote {len(new_items)} items to {out / 'matched.jsonl'} "
               f"(image_matches, std_inferred, inferred_audit with from=image)")
