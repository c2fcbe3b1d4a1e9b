"""Write the Myntra apparel styles (../shared/data/myntra) as one flat CSV, the way a shop's product system exports
its article table: one row per style, one column per source field, `articleAttributes` spread into one column per
key ("Sleeve Length", "Fabric"...), `colour_variant_styleids` joined with "|", the description beside them, and
`image` = the path of the style's photo in ../shared/data/myntra_images when there is one (relative to the CSV's
folder).

It is the stand-in for "a retailer's table in the wild" that `itemtower convert table --suggest-map` is tried on
(README, "A shop's own table"). The CSV goes under runs/ (never into the repository: the data is not ours).

    .venv/bin/python benchmarks/myntra_csv.py --src ../shared/data/myntra --out runs/myntra_styles.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

TOP = ("id", "productDisplayName", "brandName", "gender", "ageGroup", "masterCategory", "subCategory",
       "articleType", "baseColour", "colour1", "colour2", "season", "year", "usage", "fashionType", "variantName",
       "price", "discountedPrice", "displayCategories")


def _lines(files: list[Path]):
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=Path("../shared/data/myntra"))
    ap.add_argument("--images", type=Path, default=None,
                    help="folder of <id>.jpg (default: SRC/../myntra_images/images)")
    ap.add_argument("--out", type=Path, default=Path("runs/myntra_styles.csv"))
    a = ap.parse_args()
    images = a.images or a.src.parent / "myntra_images" / "images"
    styles = list(_lines(sorted(a.src.glob("*styles_part*.jsonl"))))
    desc = {str(d["id"]): d.get("description_text") or "" for d in _lines(sorted(a.src.glob("*descriptions_part*")))}
    attr_keys = list(dict.fromkeys(k for s in styles for k in (s.get("articleAttributes") or {})))
    header = list(TOP) + attr_keys + ["colour_variant_styleids", "description", "image"]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for s in styles:
            attrs = s.get("articleAttributes") or {}
            photo = images / f"{s['id']}.jpg"
            w.writerow([("" if s.get(k) is None else s[k]) for k in TOP] + [attrs.get(k, "") for k in attr_keys]
                       + ["|".join(map(str, s.get("colour_variant_styleids") or [])), desc.get(str(s["id"]), ""),
                          os.path.relpath(photo, a.out.parent) if photo.exists() else ""])  # as a shop would
    print(f"wrote {len(styles)} rows x {len(header)} columns to {a.out}")


if __name__ == "__main__":
    main()
