"""Where an item's photo is, and its bytes and pixels.

An item's optional `image` is a string: a local path (absolute, or relative to the catalog file's folder) or an
http(s) URL. URLs are part of the format (a shop's catalog often holds them) but are fetched only when the caller
allows it (`allow_urls=True`, the CLI's `--allow-urls`): by default a URL is reported and the item has no photo,
so that reading a catalog never reaches the network on its own.

No torch here: the check and the cache need bytes and pixels, not the model.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ImageError", "ImageRef", "resolve", "read_bytes", "sha256", "decode", "IMAGE_SIZE", "MAX_BYTES"]

IMAGE_SIZE = 224  # EfficientNet-Lite0's input; the Myntra photos are already 224 x 224
MAX_BYTES = 20 * 1024 * 1024  # a product photo over 20 MB is a mistake (a video, a RAW file), not a photo
URL_TIMEOUT_S = 10.0


class ImageError(ValueError):
    """A photo that cannot be used: missing, unreadable, not an image, a URL not allowed. The message says which."""


@dataclass(frozen=True)
class ImageRef:
    """A resolved `image` value: `path` for a local file, `url` for http(s); `raw` is the catalog's string."""

    raw: str
    path: Path | None = None
    url: str | None = None


def resolve(value: Any, base_dir: str | Path | None = None) -> ImageRef:
    """The item's `image` value -> an ImageRef. Raises ImageError for a value that is not a non-empty string or
    a URL scheme other than http(s)."""
    if not isinstance(value, str) or not value.strip():
        raise ImageError(f"image must be a non-empty string (a file path or an http(s) URL), not {value!r}")
    raw = value.strip()
    low = raw.lower()
    if low.startswith(("http://", "https://")):
        return ImageRef(raw=raw, url=raw)
    if "://" in raw[:12]:
        raise ImageError(f"image URL scheme not supported (only http and https): {raw!r}")
    p = Path(raw).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return ImageRef(raw=raw, path=p)


def read_bytes(ref: ImageRef, allow_urls: bool = False, max_bytes: int = MAX_BYTES) -> bytes:
    """The photo's bytes. Raises ImageError (missing file, a directory, too big, URL not allowed or failed)."""
    if ref.url is not None:
        if not allow_urls:
            raise ImageError(f"image is a URL and fetching URLs is off (pass --allow-urls to fetch): {ref.url}")
        return _fetch(ref.url, max_bytes)
    p = ref.path
    assert p is not None
    if not p.exists():
        raise ImageError(f"image file not found: {p}")
    if not p.is_file():
        raise ImageError(f"image path is not a file: {p}")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise ImageError(f"image file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit: {p}")
        data = p.read_bytes()
    except OSError as e:
        raise ImageError(f"image file unreadable ({e.strerror or e}): {p}") from None
    if not data:
        raise ImageError(f"image file is empty: {p}")
    return data


def _fetch(url: str, max_bytes: int) -> bytes:
    """GET a URL (only when the user allowed it), refusing bodies over `max_bytes`."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as resp:  # noqa: S310 (http(s) checked above)
            data = resp.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ImageError(f"image URL could not be fetched ({e}): {url}") from None
    if len(data) > max_bytes:
        raise ImageError(f"image at URL is over the {max_bytes / 2**20:.0f} MB limit: {url}")
    if not data:
        raise ImageError(f"image URL returned no bytes: {url}")
    return data


def sha256(data: bytes) -> str:
    """The cache key: the same photo under two paths (or two catalogs) is encoded once."""
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes, size: int | None = IMAGE_SIZE, where: str = "image") -> np.ndarray:
    """Bytes -> uint8 [H, W, 3] RGB (resized to `size` x `size` unless size is None). Transparent pixels become
    white (a cut-out product on a transparent background is a product on white). Raises ImageError if Pillow
    cannot decode the bytes."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im2 = Image.alpha_composite(white, rgba).convert("RGB")
            else:
                im2 = im.convert("RGB")
            if size is not None and im2.size != (size, size):
                im2 = im2.resize((size, size), Image.BILINEAR)
            return np.asarray(im2, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{where}: not a readable image ({type(e).__name__}: {e})") from None
