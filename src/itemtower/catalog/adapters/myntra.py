"""Myntra apparel catalog (English; ../shared/data/myntra, see its SOURCE.md) -> items + colour-variant pairs.

Input: `*styles_part*.jsonl` (one style per line) and `*descriptions_part*.jsonl` (`{"id", "description_text"}`).
Output items:
- id = str(id), title = productDisplayName;
- std: gender, article_type, sub_category, base_colour, season, usage, brand, and the categorical
  `articleAttributes` listed in ATTRIBUTE_KEYS (names lowercased with underscores: "Sleeve Length" ->
  "sleeve_length"); the value "NA" and empty strings mean missing and are skipped;
- re: description -> [description text]; color -> colour1/colour2 when given (lowercased);
- with `product_fields=True` (the default) two retailer fields the first adapter left out are features too:
  std `price` = the price point as a string ("1595": a categorical value, like a shop's price ladder) and re
  `variant_name` = variantName ("Roundneck Jersey"). Colour variants share them far more often than look-alikes
  (price 87% of variant pairs vs 5% of same-articleType pairs, variantName 60% vs 7%; BENCHMARKS.md section 7a);
  `product_fields=False` gives the first adapter's items, for comparing with older numbers;
- extras (kept, never features): price, year, variantName.
Pairs: the retailer's `colour_variant_styleids` (the same product in another colour), as unordered unique pairs of
ids that are both in the catalog. `with_groups=True` also sets `group` to the connected component of that graph.
Photos: with `images_dir`, `image` = the absolute path of `<images_dir>/<id>.jpg` for every style that has one
(../shared/data/myntra_images/images holds 5,353 of them); styles without a photo get no `image`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from itemtower.catalog.adapters import ConvertResult, jsonl_objects
from itemtower.catalog import WARNING, Problem

__all__ = ["convert", "TOP_FIELDS", "ATTRIBUTE_KEYS"]

# source key -> std field name
TOP_FIELDS = {
    "gender": "gender",
    "articleType": "article_type",
    "subCategory": "sub_category",
    "baseColour": "base_colour",
    "season": "season",
    "usage": "usage",
    "brandName": "brand",
}
# categorical articleAttributes worth a field; the others (Wash Care, Body or Garment Size, Fabric 2 ...) are
# care/size notes or too sparse to help
ATTRIBUTE_KEYS = (
    "Fabric", "Pattern", "Sleeve Length", "Fit", "Neck", "Occasion", "Length", "Collar", "Sleeve Styling",
    "Waist Rise", "Closure", "Transparency",
)
EXTRA_KEYS = ("price", "year", "variantName")
_MISSING = {"", "NA"}


def _field_name(key: str) -> str:
    """"Sleeve Length" -> "sleeve_length", "Waist Rise" -> "waist_rise"."""
    return re.sub(r"[^0-9a-z]+", "_", key.lower()).strip("_")


def _parts(src: Path, kind: str) -> list[Path]:
    """`*<kind>_part<N>.jsonl` in numeric order (part10 after part9)."""
    files = list(src.glob(f"*{kind}_part*.jsonl"))

    def key(p: Path) -> tuple[int, str]:
        m = re.search(r"_part(\d+)", p.name)
        return (int(m.group(1)) if m else 0, p.name)

    return sorted(files, key=key)


def _id_key(s: str) -> tuple[int, int | str]:
    """Numeric ids sort numerically, others after them as strings (stable pair and group order)."""
    return (0, int(s)) if s.isdigit() else (1, s)


def _read_jsonl(path: Path, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line that is a JSON object; the others become error Problems."""
    return jsonl_objects(path, problems, bad_json=f"{path.name}: not valid JSON: {{error}}",
                         not_object=f"{path.name}: not a JSON object")


def _clean(value: Any) -> str | None:
    """A categorical value as a stripped string, or None for missing ("NA", "", null, non-scalars)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    s = str(value).strip()
    return None if s in _MISSING else s


def _style_to_item(obj: dict[str, Any], lineno: int, fname: str, problems: list[Problem],
                   product_fields: bool = True) -> dict[str, Any] | None:
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not str(raw_id).strip():
        problems.append(Problem(lineno, None, "id", raw_id, f"{fname}: missing or invalid id; style skipped"))
        return None
    item_id = str(raw_id).strip()
    title = obj.get("productDisplayName")
    if not isinstance(title, str) or not title.strip():
        problems.append(Problem(lineno, item_id, "productDisplayName", title, f"{fname}: no title; style skipped"))
        return None

    std: dict[str, list[str]] = {}
    for src_key, name in TOP_FIELDS.items():
        v = _clean(obj.get(src_key))
        if v is not None:
            std[name] = [v]
    attrs = obj.get("articleAttributes")
    if attrs is None:
        attrs = {}
    elif not isinstance(attrs, dict):
        problems.append(Problem(lineno, item_id, "articleAttributes", attrs,
                                f"{fname}: not an object; attributes ignored", WARNING))
        attrs = {}
    for key in ATTRIBUTE_KEYS:
        v = _clean(attrs.get(key))
        if v is not None:
            std[_field_name(key)] = [v]

    re_: dict[str, list[str]] = {}
    colours = [c.lower() for c in (_clean(obj.get("colour1")), _clean(obj.get("colour2"))) if c]
    if colours:
        re_["color"] = list(dict.fromkeys(colours))
    if product_fields:
        price = _price_point(obj.get("price"))
        if price is not None:
            std["price"] = [price]
        elif obj.get("price") not in (None, ""):
            problems.append(Problem(lineno, item_id, "price", obj.get("price"),
                                    f"{fname}: not a positive number; no price point for this style", WARNING))
        variant = _clean(obj.get("variantName"))
        if variant is not None:
            re_["variant_name"] = [variant]

    item: dict[str, Any] = {"id": item_id, "title": title.strip(), "std": std, "re": re_}
    for key in EXTRA_KEYS:
        if obj.get(key) not in (None, ""):
            item[key] = obj[key]
    return item


def _price_point(value: Any) -> str | None:
    """895 / 895.0 / "895" -> "895"; anything else (missing, negative, text) -> None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    if not 0 < f < float("inf"):  # also rejects NaN
        return None
    return str(int(f)) if f == int(f) else f"{f:g}"


def convert(src_dir: str | Path, with_groups: bool = False, product_fields: bool = True,
            images_dir: str | Path | None = None) -> ConvertResult:
    """Convert the Myntra files in `src_dir` (see the module docstring). Bad lines are Problems, never crashes.

    `product_fields`: map price (std) and variantName (re) to features; False = the first adapter's items.
    `images_dir`: a folder of `<id>.jpg` photos; each style with one gets `image` (its absolute path).

    Raises FileNotFoundError if `src_dir` has no styles files, or `images_dir` is given and is not a folder.
    """
    src = Path(src_dir)
    style_files = _parts(src, "styles")
    if not style_files:
        raise FileNotFoundError(f"no Myntra styles files (*styles_part*.jsonl) in {src}")
    photos = _photos(images_dir) if images_dir is not None else {}
    problems: list[Problem] = []
    items: dict[str, dict[str, Any]] = {}  # insertion-ordered: file order, line order
    variants: dict[str, list[Any]] = {}
    where: dict[str, str] = {}  # id -> "file:line", for duplicate messages

    for path in style_files:
        for lineno, obj in _read_jsonl(path, problems):
            item = _style_to_item(obj, lineno, path.name, problems, product_fields)
            if item is None:
                continue
            iid = item["id"]
            if iid in items:
                problems.append(Problem(lineno, iid, "id", iid,
                                        f"{path.name}: duplicate id (first at {where[iid]}); later row skipped", WARNING))
                continue
            items[iid] = item
            where[iid] = f"{path.name}:{lineno}"
            vs = obj.get("colour_variant_styleids")
            if isinstance(vs, list):
                variants[iid] = vs
            elif vs is not None:
                problems.append(Problem(lineno, iid, "colour_variant_styleids", vs,
                                        f"{path.name}: not a list; variants ignored", WARNING))

    for path in _parts(src, "descriptions"):
        for lineno, obj in _read_jsonl(path, problems):
            iid = str(obj.get("id", "")).strip()
            text = obj.get("description_text")
            if iid not in items:
                problems.append(Problem(lineno, iid or None, "id", obj.get("id"),
                                        f"{path.name}: description for an id not in the styles; ignored", WARNING))
                continue
            if isinstance(text, str) and text.strip():
                items[iid]["re"]["description"] = [text.strip()]

    # Pairs: only inside the catalog (the projection keeps Apparel; links to shoes etc. point outside it).
    pair_set: set[tuple[str, str]] = set()
    for iid, vs in variants.items():
        for v in vs:
            other = str(v).strip()
            if other != iid and other in items:
                a, b = sorted((iid, other), key=_id_key)
                pair_set.add((a, b))
    pairs = sorted(pair_set, key=lambda p: (_id_key(p[0]), _id_key(p[1])))

    if with_groups:
        for iid, group in _components(pairs).items():
            items[iid]["group"] = group

    out = []
    for it in items.values():
        if not it["re"]:
            del it["re"]
        if it["id"] in photos:
            it["image"] = photos[it["id"]]
        out.append(it)
    return ConvertResult(items=out, pairs=pairs, problems=problems)


def _photos(images_dir: str | Path) -> dict[str, str]:
    """id -> absolute path of `<id>.jpg` (or .jpeg / .png) in `images_dir`."""
    d = Path(images_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"images folder not found: {d}")
    out: dict[str, str] = {}
    for p in sorted(d.iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file():
            out.setdefault(p.stem, str(p.resolve()))
    return out


def _components(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """id -> group id ("myntra-g<smallest id>") for every id in a pair: union-find over the variant graph."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            # the smaller id becomes the root, so the group name does not depend on pair order
            if _id_key(rb) < _id_key(ra):
                ra, rb = rb, ra
            parent[rb] = ra
    return {x: f"myntra-g{find(x)}" for x in parent}
