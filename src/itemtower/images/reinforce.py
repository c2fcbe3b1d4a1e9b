"""What photo matches can fill in: missing STD values the matched items agree on, and the colour from the pixels.

For every matched item (`match.find_matches`: near-duplicate photos, usually the same product in another colour):
- `image_matches` = [{"id", "score"}] is written on the item, best first: the hook for title augmentation (a view
  may borrow title words from an image-matched item: a positive pair the text alone would not give);
- each missing STD field in `fields` is filled when the matched items that have it given (not inferred) agree:
  the commonest value holds at least `agree` of their score-weighted votes. The category field (article_type,
  category: `category_field_of`) goes first, and only matched items of the item's own category (given or just
  inferred) vote on the other fields: a skirt that looks like a dress borrows no neckline from it;
- the colour field (a std field whose name contains "colo", e.g. color, base_colour), if missing, is set to the
  photo's garment colour (`colour.dominant_colour`), never taken from matches: colour variants differ in colour.
Like text reinforcement (`itemtower.enrich.reinforce`), nothing given is ever overwritten or removed; every added
value is listed under `std_inferred[field]`, and `inferred_audit` gets one record per value with `"from": "image"`
and its evidence (matched ids and agreement, or the colour's pixel share), so a reviewer can see and undo it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from itemtower.images.colour import dominant_colour
from itemtower.images.source import ImageError, decode, read_bytes, resolve

__all__ = ["reinforce_from_images", "colour_field_of", "category_field_of", "default_fields", "photo_colours", "NOT_FROM_PHOTO",
           "DEFAULT_AGREE", "format_summary"]

# Fields a photo says nothing about even when the matched items agree (variants share them, look-alikes not).
NOT_FROM_PHOTO = ("brand", "price", "season", "usage", "year")
DEFAULT_AGREE = 0.75
CATEGORY_FIELDS = ("article_type", "category", "category_sub", "product_type")  # first one the catalog has


def category_field_of(std_fields: Iterable[str]) -> str | None:
    """The catalog's kind-of-product STD field, which gates the others, or None."""
    names = list(std_fields)
    return next((f for f in CATEGORY_FIELDS if f in names), None)


def colour_field_of(std_fields: Iterable[str]) -> str | None:
    """The catalog's colour STD field ("color", "base_colour", "colour"), or None."""
    return next((f for f in std_fields if "colo" in f.lower()), None)


def default_fields(items: Sequence[dict[str, Any]]) -> list[str]:
    """Every STD field the items use, except the colour field and NOT_FROM_PHOTO."""
    seen = dict.fromkeys(f for it in items for f in (it.get("std") or {}))
    colour = colour_field_of(seen)
    return [f for f in seen if f != colour and f not in NOT_FROM_PHOTO]


def photo_colours(items: Sequence[dict[str, Any]], names: Iterable[str], base_dir: str | Path | None = None,
                  allow_urls: bool = False) -> dict[str, tuple[str, float]]:
    """id -> (colour name, pixel share) for the items with a readable photo (unreadable ones are skipped: the
    feature step already warned about them)."""
    vocab = list(dict.fromkeys(names))
    out: dict[str, tuple[str, float]] = {}
    for it in items:
        if it.get("image") is None:
            continue
        try:
            rgb = decode(read_bytes(resolve(it["image"], base_dir), allow_urls=allow_urls), size=None)
        except ImageError:
            continue
        found = dominant_colour(rgb, vocab)
        if found is not None:
            out[str(it["id"])] = found
    return out


def _given(item: dict[str, Any], field: str) -> str | None:
    """The item's own (not inferred) single value of `field`, or None."""
    vals = (item.get("std") or {}).get(field)
    if not vals or field in (item.get("std_inferred") or {}):
        return None
    return vals[0] if isinstance(vals[0], str) else None


def _vote(matched: list[tuple[dict[str, Any], float]], field: str, agree: float,
          min_votes: int) -> tuple[str, float, list[str]] | None:
    """(value, agreement, ids that voted for it) if the matched items that have `field` agree enough."""
    weight: defaultdict[str, float] = defaultdict(float)
    voters: defaultdict[str, list[str]] = defaultdict(list)
    for other, score in matched:
        v = _given(other, field)
        if v is not None:
            weight[v] += max(score, 1e-6)
            voters[v].append(str(other["id"]))
    if not weight:
        return None
    value = max(weight, key=lambda v: (weight[v], v))
    share = weight[value] / sum(weight.values())
    if share < agree or len(voters[value]) < min_votes:
        return None
    return value, round(share, 4), voters[value]


def reinforce_from_images(items: Sequence[dict[str, Any]], matches: dict[str, list[tuple[str, float]]],
                          fields: Sequence[str] | None = None, colours: dict[str, tuple[str, float]] | None = None,
                          colour_field: str | None = "auto", agree: float = DEFAULT_AGREE, min_votes: int = 1,
                          min_colour_share: float = 0.0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """New items with `image_matches` and the values the photo matches (and pixels) support (module docstring).

    Args:
        items: normalized items (not modified; changed items are returned as new dicts), all of them: matched
            ids point into this list.
        matches: id -> [(matched id, score)], from `match.find_matches`.
        fields: STD fields to fill from matches (default: `default_fields(items)`).
        colours: id -> (name, share) from `photo_colours`; None: no colour is proposed.
        colour_field: where the colour goes; "auto" = `colour_field_of` the items' STD fields.
        agree: least score-weighted share of the matched items' votes the value needs.
        min_votes: least number of matched items that must have given the value.
        min_colour_share: least share of garment pixels the colour needs.

    Returns (new_items, summary) with "items", "items_matched", "matches", "std_added" {field: n}, "seconds".
    """
    t0 = time.perf_counter()
    by_id = {str(it["id"]): it for it in items}
    if colour_field == "auto":
        colour_field = colour_field_of(dict.fromkeys(f for it in items for f in (it.get("std") or {})))
    fill_fields = [f for f in (fields if fields is not None else default_fields(items)) if f != colour_field]
    cat_field = category_field_of(dict.fromkeys(f for it in items for f in (it.get("std") or {})))
    if cat_field in fill_fields:  # first: it decides which matches vote on the rest
        fill_fields = [cat_field] + [f for f in fill_fields if f != cat_field]
    added: Counter[str] = Counter()
    n_matched = n_pairs = 0
    out: list[dict[str, Any]] = []
    for it in items:
        iid = str(it["id"])
        if iid not in matches and not (colours and iid in colours):
            out.append(it)
            continue
        found = [(by_id[m], s) for m, s in matches.get(iid, []) if m in by_id]
        new = dict(it)
        std = {k: list(v) for k, v in (it.get("std") or {}).items()}
        std_inf = {k: list(v) for k, v in (it.get("std_inferred") or {}).items()}
        audit = list(it.get("inferred_audit") or [])
        if iid in matches:
            new["image_matches"] = [{"id": str(o["id"]), "score": s} for o, s in found]
            n_matched += bool(found)
            n_pairs += len(found)
        for f in fill_fields:
            if std.get(f) or not found:
                continue
            voters = found
            if cat_field and f != cat_field and std.get(cat_field):
                voters = [(o, s) for o, s in found if (o.get("std") or {}).get(cat_field) == std[cat_field]]
            vote = _vote(voters, f, agree, min_votes)
            if vote is not None:
                std[f] = std_inf[f] = [vote[0]]
                audit.append({"field": f"std.{f}", "value": vote[0], "from": "image",
                              "matches": vote[2], "agree": vote[1]})
                added[f] += 1
        if colour_field and colours and iid in colours and not std.get(colour_field):
            name, share = colours[iid]
            if share >= min_colour_share:
                std[colour_field] = std_inf[colour_field] = [name]
                audit.append({"field": f"std.{colour_field}", "value": name, "from": "image",
                              "method": "garment pixels", "share": share})
                added[colour_field] += 1
        if audit != list(it.get("inferred_audit") or []):
            new["std"], new["std_inferred"], new["inferred_audit"] = std, std_inf, audit
        out.append(new)
    summary = {"items": len(items), "items_matched": n_matched, "matches": n_pairs,
               "std_added": dict(sorted(added.items())), "seconds": round(time.perf_counter() - t0, 3)}
    return out, summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (what the CLI prints)."""
    lines = [f"{summary['items_matched']} items matched by photo ({summary['matches']} matches); "
             f"{sum(summary['std_added'].values())} std values added", "", "| field | values added |", "|---|---:|"]
    lines += [f"| {f} | {n} |" for f, n in summary["std_added"].items()]
    return "\n".join(lines)
