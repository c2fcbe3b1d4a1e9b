"""The garment's colour from its photo's pixels, named in the catalog's own colour vocabulary.

Method (simple on purpose, and measured: BENCHMARKS.md 12d): 1. background = studio-white pixels connected to the
photo's border (so a white garment inside the frame stays); 2. skin = the classic YCbCr box (Cb 77-127,
Cr 133-173), dropped unless that would leave almost nothing (a beige or tan garment falls in the box too);
3. every remaining pixel votes for its nearest named colour in CIE Lab (a name may have several shades,
`SHADES`), among the catalog's colour values that `PALETTE` knows; the winner and its share of the votes are the answer. Nothing is learned, nothing is cropped:
a model's trousers and hair vote too, which is the method's main error on full-body photos.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["PALETTE", "garment_mask", "dominant_colour", "vocabulary", "to_lab"]

# name (lowercase) -> sRGB as it looks in a studio photo (black fabric photographs near (38, 38, 42), white
# fabric near (232, 232, 232): tuned on a 266-photo sample of Myntra, BENCHMARKS.md 12d). Myntra's and
# KFASHION's colour values plus common shop names; "multi" / "mixed" have no single colour and are never predicted.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (38, 38, 42), "white": (232, 232, 232), "off white": (235, 230, 215), "cream": (240, 228, 195),
    "grey": (128, 128, 128), "gray": (128, 128, 128), "charcoal": (80, 82, 88), "grey melange": (165, 165, 165),
    "silver": (192, 192, 192), "red": (200, 30, 40), "maroon": (110, 20, 35), "burgundy": (120, 25, 50),
    "rust": (170, 70, 35), "orange": (240, 120, 30), "peach": (250, 180, 150), "pink": (240, 140, 170),
    "magenta": (200, 30, 130), "mauve": (190, 140, 170), "lavender": (185, 165, 220), "purple": (110, 50, 140),
    "yellow": (245, 215, 40), "mustard": (210, 165, 30), "gold": (200, 165, 60), "beige": (220, 200, 165),
    "khaki": (185, 170, 120), "tan": (200, 160, 110), "skin": (230, 190, 160), "nude": (225, 185, 160),
    "brown": (115, 70, 40), "coffee brown": (90, 60, 40), "olive": (110, 115, 50), "green": (40, 140, 60),
    "sea green": (50, 160, 120), "lime green": (150, 205, 50), "teal": (0, 120, 120),
    "turquoise blue": (40, 190, 200), "blue": (40, 90, 190), "navy blue": (25, 35, 75), "navy": (25, 35, 75),
}

# More shades of the commonest names, as they photograph (denim blue, washed navy, light and dark grey ...):
# one centre per name put most blue denim nearest "Charcoal" and light-grey tees nearest "White" (BENCHMARKS 12d).
SHADES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "blue": ((70, 100, 140), (110, 150, 200), (50, 70, 120)), "navy blue": ((40, 45, 65), (35, 40, 55)),
    "grey": ((150, 150, 155), (100, 100, 105), (185, 185, 190)), "black": ((25, 25, 28), (50, 50, 55)),
    "white": ((245, 245, 245), (215, 215, 220)), "red": ((160, 30, 40),), "green": ((70, 110, 70),),
    "purple": ((80, 50, 110),), "pink": ((220, 120, 160),), "brown": ((90, 60, 45),),
}

_BG_MIN = 245  # every channel at least this ...
_BG_CHROMA = 15  # ... and max - min at most this: the studio white (a white garment is shaded, 200-240)
_MIN_PIXELS = 200  # fewer garment pixels than this after removing skin: keep the skin-coloured ones


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 [..., 3] -> CIE Lab (D65) float32 [..., 3]: nearest colours by eye, not by RGB distance."""
    c = np.asarray(rgb, dtype=np.float32) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def garment_mask(rgb: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels that are neither background (near-white reaching the border) nor skin."""
    from scipy import ndimage

    px = np.asarray(rgb, dtype=np.int16)
    near_white = (px.min(axis=2) >= _BG_MIN) & (np.ptp(px, axis=2) <= _BG_CHROMA)
    labels, _ = ndimage.label(near_white)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, border[border > 0])
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    skin = (cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173)
    keep = ~background & ~skin
    if keep.sum() < _MIN_PIXELS:
        keep = ~background
    return keep


def vocabulary(values: Iterable[str]) -> dict[str, str]:
    """The catalog's colour values that PALETTE knows: lowercase name -> the catalog's spelling."""
    out: dict[str, str] = {}
    for v in values:
        if isinstance(v, str) and v.strip().lower() in PALETTE:
            out.setdefault(v.strip().lower(), v.strip())
    return out


def dominant_colour(rgb: np.ndarray, names: Iterable[str]) -> tuple[str, float] | None:
    """(name, share of the garment pixels that voted for it) among `names` (catalog spellings; unknown names are
    ignored), or None if no name is known or no garment pixel is left."""
    vocab = vocabulary(names)
    if not vocab:
        return None
    mask = garment_mask(rgb)
    if not mask.any():
        return None
    keys = list(vocab)
    owner = [i for i, k in enumerate(keys) for _ in (PALETTE[k],) + SHADES.get(k, ())]
    centres = to_lab(np.array([c for k in keys for c in (PALETTE[k],) + SHADES.get(k, ())], dtype=np.uint8))
    lab = to_lab(np.asarray(rgb)[mask])
    d = ((lab[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    votes = np.bincount(np.asarray(owner)[d.argmin(axis=1)], minlength=len(keys))
    best = int(votes.argmax())
    return vocab[keys[best]], round(float(votes[best] / votes.sum()), 4)
