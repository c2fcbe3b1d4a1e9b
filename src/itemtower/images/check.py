"""`itemtower validate`'s photo check: every item whose `image` cannot be used, as a warning with line and id.

A bad photo never drops an item (the item is kept and has no photo), so every finding is a WARNING. Checked:
the file exists and is a readable file, and Pillow recognises it as an image (`verify()`: the header and the
structure, without decoding every pixel, so validating 100k photos stays fast; a photo that passes this and
still fails to decode is a warning again when `itemtower images` encodes it). A URL is checked only when URL
fetching is allowed; otherwise it is reported once per item as not fetched.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable

from itemtower.catalog import WARNING, Problem
from itemtower.images.source import ImageError, read_bytes, resolve

__all__ = ["check_image", "image_problems", "image_lines"]

URL_OFF = "a URL, not fetched: URL fetching is off (--allow-urls fetches it); the item has no photo for now"


def check_image(value: Any, base_dir: str | Path | None = None, allow_urls: bool = False) -> str | None:
    """None if the photo is usable, else what is wrong with it (one sentence, for a Problem)."""
    from PIL import Image, UnidentifiedImageError

    try:
        ref = resolve(value, base_dir)
        if ref.url is not None and not allow_urls:
            return URL_OFF
        data = read_bytes(ref, allow_urls=allow_urls)
    except ImageError as e:
        return f"{e}; the item is kept without a photo"
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return f"not a readable image ({type(e).__name__}: {e}); the item is kept without a photo"
    return None


def image_lines(catalog_path: str | Path) -> dict[str, int]:
    """id -> 1-based line for the catalog lines that mention "image" (read_catalog keeps no line numbers on
    items; only lines with the word are parsed again, so a catalog without photos costs one pass over bytes)."""
    out: dict[str, int] = {}
    with Path(catalog_path).open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if b'"image"' not in raw:
                continue
            try:
                obj = json.loads(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(obj, dict) and obj.get("id") is not None:
                out.setdefault(str(obj["id"]).strip(), lineno)
    return out


def image_problems(items: Iterable[dict[str, Any]], catalog_path: str | Path | None = None,
                   allow_urls: bool = False) -> list[Problem]:
    """A warning Problem (line, id, field "image") for every item whose photo cannot be used. Relative paths are
    read from the catalog file's folder."""
    base = Path(catalog_path).parent if catalog_path is not None else None
    lines = image_lines(catalog_path) if catalog_path is not None else {}
    problems: list[Problem] = []
    for it in items:
        value = it.get("image")
        if value is None:
            continue
        iid = str(it.get("id"))
        msg = check_image(value, base, allow_urls)
        if msg is not None:
            problems.append(Problem(lines.get(iid), iid, "image", value, msg, WARNING))
    return problems
