"""Photos sent to the service (issue 12): where `image` may point, and how uploaded bytes are taken in.

An item's `image` in PUT /items/{id}, PUT /items and POST /embed is one of:
  - a path inside ITEMTOWER_IMAGE_ROOT (relative to it, or absolute inside it). The real path (symlinks followed)
    must stay inside the root: `../` traversal, an absolute path elsewhere and a symlink out are a 422 naming the
    item. Unset root: every path is refused (the service never reads an arbitrary server file);
  - a data URL `data:image/<type>;base64,<bytes>` of at most ITEMTOWER_MAX_IMAGE_BYTES decoded bytes, which must
    decode as an image (Pillow). PUT keeps the bytes under ROOT/uploads/<sha256>.<type> (content-addressed, so the
    same photo twice is one file) and stores that relative path; without a root it is refused. POST /embed uses
    them for the vector only (a temporary file, removed after the call).
An http(s) URL is stored as sent but never fetched (the item embeds from its text; a warning says so).

`prepare` gives the items as stored (image: the path relative to the root) and as the model reads them (image:
the absolute real path), so the stored item never names a server path outside the root. A model trained without
photos reads no `image`: the items pass unchanged (`image` is then an extra key, as before issue 12).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from itemtower.serve.schemas import ProblemOut
from itemtower.serve.validation import ApiError, summary

__all__ = ["prepare", "inside_root", "reads_photos", "UPLOADS"]

UPLOADS = "uploads"  # ROOT/uploads/<sha256>.<type>: photos sent as bytes to PUT
_DATA_URL = re.compile(r"^data:image/([a-z0-9.+-]{1,20});base64,", re.IGNORECASE)


def reads_photos(embedder: Any) -> bool:
    """Whether the loaded model reads items' photos (artifacts.Embedder.uses_photos; fakes and text models not)."""
    return bool(getattr(embedder, "uses_photos", False))


class _Refused(ValueError):
    """One item's photo refused: the message says why and what to send instead."""


def inside_root(value: str, root: Path | None) -> Path:
    """The real path of `value` (relative to root, or absolute) if it is a file inside root; else _Refused."""
    if root is None:
        raise _Refused("image paths are refused: the service has no image root (set ITEMTOWER_IMAGE_ROOT to the "
                       "photo folder, or send the photo as a data URL)")
    real_root = root.resolve()
    p = Path(value)
    real = (p if p.is_absolute() else real_root / p).resolve()
    if not real.is_relative_to(real_root):
        raise _Refused(f"image path is outside the image root {str(real_root)!r} (after following '..' and "
                       "symlinks): only photos inside ITEMTOWER_IMAGE_ROOT are read")
    if not real.is_file():
        raise _Refused(f"no file at image path {value!r} inside the image root")
    return real


def _decode_data_url(value: str, max_bytes: int) -> tuple[bytes, str]:
    m = _DATA_URL.match(value)
    if m is None:
        raise _Refused("image data must be a data URL 'data:image/<type>;base64,<bytes>'")
    b64 = value[m.end():]
    if len(b64) > 4 * (max_bytes // 3 + 2):  # before decoding: an oversized body costs nothing
        raise _Refused(f"image is larger than the limit of {max_bytes} bytes (ITEMTOWER_MAX_IMAGE_BYTES)")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("image data is not valid base64") from None
    if len(data) > max_bytes:
        raise _Refused(f"image is larger than the limit of {max_bytes} bytes (ITEMTOWER_MAX_IMAGE_BYTES)")
    from itemtower.images.source import ImageError, decode

    try:
        decode(data, where="the sent image")
    except ImageError as e:
        raise _Refused(str(e)) from None
    ext = m.group(1).lower().replace("jpeg", "jpg")
    return data, ext if re.fullmatch(r"[a-z0-9]{1,8}", ext) else "img"


def _store_upload(data: bytes, ext: str, root: Path) -> Path:
    """ROOT/uploads/<sha256>.<ext>, written once (atomically); the real path."""
    d = root.resolve() / UPLOADS
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{hashlib.sha256(data).hexdigest()}.{ext}"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".up-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path


@contextmanager
def prepare(embedder: Any, settings: Any, items: Sequence[dict[str, Any]], store: bool, numbered: bool = True
            ) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[ProblemOut]]]:
    """(items as stored, items as the model reads them, warnings) for normalized items; a refused photo is a
    422 naming every such item. `store`: keep sent bytes under ROOT/uploads (PUT); else in a temporary folder
    that lives as long as the `with` block (POST /embed). settings: image_root, max_image_bytes."""
    items = list(items)
    if not reads_photos(embedder) or not any(isinstance(it.get("image"), str) for it in items):
        yield items, items, []
        return
    root = Path(settings.image_root) if settings.image_root else None
    errors: list[ProblemOut] = []
    warnings: list[ProblemOut] = []
    stored, for_model = [], []
    with tempfile.TemporaryDirectory(prefix="itemtower-photo-") as tmp:
        for i, it in enumerate(items):
            value = it.get("image")
            where = dict(item=i if numbered else None, field="image", value=_short(value or ""))
            if not isinstance(value, str):
                stored.append(it), for_model.append(it)
                continue
            if value.lower().startswith(("http://", "https://")):
                warnings.append(ProblemOut(**where, severity="warning", message="image URL not fetched (the "
                                           "service fetches nothing): embedded from the text alone"))
                stored.append(it), for_model.append({k: v for k, v in it.items() if k != "image"})
                continue
            try:
                s, m = _one(value, root, settings.max_image_bytes, store, Path(tmp), i)
            except _Refused as e:
                errors.append(ProblemOut(**where, message=str(e), severity="error"))
                continue
            stored.append({**it, "image": s}), for_model.append({**it, "image": m})
        if errors:
            raise ApiError(422, "invalid image: " + summary(errors), errors)
        yield stored, for_model, warnings


def _one(value: str, root: Path | None, max_bytes: int, store: bool, tmp: Path, i: int) -> tuple[str, str]:
    """(stored image value, the absolute path the model reads) of one item's `image`."""
    if value[:5].lower() == "data:":
        data, ext = _decode_data_url(value, max_bytes)
        if not store:
            path = tmp / f"{i}.{ext}"
            path.write_bytes(data)
            return str(path), str(path)
        if root is None:
            raise _Refused("a sent photo is kept in the image root, and the service has none (set "
                           "ITEMTOWER_IMAGE_ROOT)")
        path = _store_upload(data, ext, root)
        return path.relative_to(root.resolve()).as_posix(), str(path)
    real = inside_root(value, root)
    return real.relative_to(root.resolve()).as_posix(), str(real)


def _short(value: str) -> str:
    return value if len(value) <= 80 else value[:60] + f"... ({len(value)} characters)"
