"""Schemas: which STD (categorical) fields and RE (free-text) fields a catalog has.

A schema is plain data, saved as JSON next to a model. `KFASHION` is the "clothes" schema of the seed note,
values verbatim (typos such as "nomal" and "jumpsuite" included: real catalogs in this schema use them).

`infer_schema` also decides which fields carry no similarity (ids, SKUs, near-unique values, free numbers) and
leaves them out; every decision is a `FieldDecision` kept on the schema, so it reaches schema.json and the model's
manifest and the CLI can show it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["Schema", "FieldDecision", "KFASHION", "infer_schema", "format_decisions", "parse_number"]


@dataclass(frozen=True)
class FieldDecision:
    """What `infer_schema` did with one field, and why (shown to the user, written to the model's manifest).

    Attributes:
        field: dotted name, "std.sku" or "re.description".
        action: "kept" or "dropped".
        reason: why, for a human ("near-unique: 4,890 distinct of 4,903").
        n_items: items with a value in this field. n_distinct: distinct values over the catalog.
    """

    field: str
    action: str
    reason: str = ""
    n_items: int = 0
    n_distinct: int = 0

    def __str__(self) -> str:
        return f"{self.field}: {self.action}" + (f" ({self.reason})" if self.reason else "")

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "action": self.action, "reason": self.reason, "n_items": self.n_items,
                "n_distinct": self.n_distinct}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FieldDecision":
        return cls(field=str(d["field"]), action=str(d["action"]), reason=str(d.get("reason", "")),
                   n_items=int(d.get("n_items", 0)), n_distinct=int(d.get("n_distinct", 0)))


@dataclass(frozen=True)
class Schema:
    """The fields of a catalog.

    Attributes:
        name: a label for humans ("kfashion", "myntra", "inferred").
        std_fields: STD field name -> allowed values, or None for an open vocabulary (fitted on the catalog).
        re_fields: RE field names; each holds a list of free-text phrases.
        decisions: what `infer_schema` kept and dropped (empty for a hand-written schema); not part of equality.
    """

    name: str
    std_fields: dict[str, tuple[str, ...] | None]
    re_fields: tuple[str, ...] = ()
    decisions: tuple[FieldDecision, ...] = field(default=(), compare=False)

    def allowed(self, field_name: str) -> tuple[str, ...] | None:
        return self.std_fields.get(field_name)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "std_fields": {k: (list(v) if v is not None else None) for k, v in self.std_fields.items()},
            "re_fields": list(self.re_fields),
        }
        if self.decisions:  # only inferred schemas: a hand-written schema's JSON stays as it was
            d["field_decisions"] = [x.to_dict() for x in self.decisions]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Schema":
        if not isinstance(d, dict) or "std_fields" not in d:
            raise ValueError("a schema is a JSON object with 'name', 'std_fields' and 're_fields'")
        std = d["std_fields"]
        if isinstance(std, list):  # a bare list of names: open vocabularies
            std = {name: None for name in std}
        return cls(
            name=str(d.get("name", "custom")),
            std_fields={str(k): (tuple(v) if v is not None else None) for k, v in std.items()},
            re_fields=tuple(d.get("re_fields", ())),
            # optional: schemas written before field decisions existed load unchanged
            decisions=tuple(FieldDecision.from_dict(x) for x in d.get("field_decisions") or ()),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Schema":
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"schema file not found: {p}")
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None


_LEVELS = ("none at all", "none", "contain", "contain little", "contain a lot")

KFASHION = Schema(
    name="kfashion",
    std_fields={
        "category": (
            "01outer_01coat", "01outer_02jacket", "01outer_03jumper", "01outer_04cardigan",
            "02top_01blouse", "02top_02t-shirt", "02top_03sweater", "02top_04shirt", "02top_05vest",
            "03-1onepiece(dress)", "03-2onepiece(jumpsuite)", "04bottom_01pants", "04bottom_02skirt",
        ),
        "season": ("spring&fall", "summer", "winter"),
        "fiber_composition": (
            "Cotton", "Hemp", "cellulose fiber Others", "Silk", "Wool", "protein fiber Others", "Viscos rayon",
            "regenerated fiber Others", "Polyester", "Nylon", "Polyurethane", "synthetic fiber Others",
        ),
        "elasticity": _LEVELS,
        "transparency": _LEVELS,
        "isfleece": ("fleece_contain", "fleece_none"),
        "color": (
            "Black", "White", "Gray", "Red", "Orange", "Pink", "Yellow", "Brown", "Green", "Blue", "Purple",
            "Beige", "Mixed",
        ),
        "gender": ("male", "female", "both"),
        "category_specification": ("outer", "top", "onepiece", "bottom"),
        "top.length_type": ("crop", "nomal", "long", "midi", "short"),
        "top.sleeve_length_type": ("sleeveless", "short sleeves", "long sleeves"),
        "top.neck_color_design": (
            "shirts collar", "bow collar", "sailor collar", "shawl collar", "polo collar", "Peter Pan collar",
            "tailored collar", "Chinese collar", "band collar", "hood", "round neck", "U-neck", "V-neck",
            "halter neck", "off shoulder", "one shoulder", "square neck", "turtle neck", "boat neck", "cowl neck",
            "sweetheart neck", "no neckline", "Others",
        ),
        "top.sleeve_design": (
            "basic sleeve", "ribbed sleeve", "shirt sleeve", "puff sleeve", "cape sleeve", "petal sleeve", "Others",
        ),
        "pant.silhouette": ("skinny", "normal", "wide", "loose", "bell-bottom", "Others"),
        "skirt.design": ("A-line and bell line", "mermaid line", "Others"),
    },
    re_fields=("category", "fiber_composition", "color", "category_specification", "specification.metadata"),
)


# infer_schema's thresholds. A field is judged only when enough items have it: 20 items with 19 distinct values
# may just be a small catalog.
MIN_ITEMS_TO_JUDGE = 50
NEAR_UNIQUE = 0.9  # distinct values / values above this: an id, a SKU, a timestamp; nothing to share
FREE_NUMERIC = 0.5  # a numeric std field with more distinct numbers than this share is a measurement, not a ladder
NUMERIC_SHARE = 0.95  # share of a field's values that must parse as numbers to call it numeric
CODE_SHARE = 0.9  # share of an re field's values that must look like codes (one token with a digit)

_NUMBER_RE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_CURRENCY = "$€£¥₩₹"


def parse_number(text: Any) -> float | None:
    """A number written as text ("1,299", "₹ 895", "12.5", "-3") as a float, else None. Thousands commas and one
    leading currency sign are accepted: that is how shops export prices."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if text == text else None  # NaN is not a number here
    s = str(text).strip()
    if s[:1] in _CURRENCY:
        s = s[1:].strip()
    s = s.replace(",", "") if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?", s) else s
    return float(s) if _NUMBER_RE.match(s) else None


def _is_code(value: str) -> bool:
    """One token holding a digit: "SKU-4890-XL", "a1b2c3", "100234". Words ("round neck") are not codes."""
    return bool(value) and not any(c.isspace() for c in value) and any(c.isdigit() for c in value)


def _mostly(counts: Counter, pred, share: float) -> bool:
    """Whether at least `share` of the values (counted with repeats) satisfy pred; each distinct value is tested
    once and the test stops as soon as the misses settle it (a description column fails in its first values)."""
    total = sum(counts.values())
    allowed_misses, misses = (1 - share) * total, 0
    for value, n in counts.items():
        if not pred(value):
            misses += n
            if misses > allowed_misses:
                return False
    return True


def _decide(name: str, values: list[str], n_items: int, ids_copied: int, text: bool) -> FieldDecision:
    """Keep or drop one field from its values (all of them, over the catalog). `text`: an RE field, where unique
    values are normal (descriptions) and only codes and bare numbers are dropped."""
    counts = Counter(values)
    n_vals, distinct = len(values), len(counts)

    def decision(action: str, reason: str) -> FieldDecision:
        return FieldDecision(name, action, reason, n_items, distinct)

    if n_items < MIN_ITEMS_TO_JUDGE:
        return decision("kept", f"{distinct:,} distinct in {n_items:,} items: too few items to judge")
    ratio = distinct / max(1, n_vals)
    if ids_copied >= NEAR_UNIQUE * n_items:
        return decision("dropped", f"copies the item id in {ids_copied:,} of {n_items:,} items")
    numeric = _mostly(counts, lambda v: parse_number(v) is not None, NUMERIC_SHARE)
    if text:
        if numeric:
            return decision("dropped", f"numbers as text: {distinct:,} distinct of {n_vals:,}")
        if ratio > NEAR_UNIQUE and _mostly(counts, _is_code, CODE_SHARE):
            return decision("dropped", f"id-like codes: {distinct:,} distinct of {n_vals:,}")
        return decision("kept", f"text, {distinct:,} distinct of {n_vals:,}")
    whole = numeric and all(float(x).is_integer() for x in map(parse_number, counts) if x is not None)
    if ratio > NEAR_UNIQUE and not (numeric and not whole):  # near-unique whole numbers are ids, not measures
        return decision("dropped", f"near-unique: {distinct:,} distinct of {n_vals:,}")
    if numeric and ratio > FREE_NUMERIC:
        return decision("dropped", f"free numeric values: {distinct:,} distinct numbers of {n_vals:,}; bucket "
                                   "them (convert table: buckets = [...]) to use them")
    if numeric:
        return decision("kept", f"{distinct:,} repeated number{'s' * (distinct != 1)}: categories (codes, price "
                                "points, sizes)")
    return decision("kept", f"{distinct:,} value{'s' * (distinct != 1)}")


def infer_schema(items: Iterable[dict[str, Any]], name: str = "inferred") -> Schema:
    """A schema from the fields the items use: every `std` key is an open-vocabulary STD field, every `re` key
    an RE field, in order of first appearance, except the fields that carry no similarity, which are dropped:
    values that copy the item id, near-unique STD values (more than 90% distinct: ids, SKUs), free numeric STD
    values (numbers with more than 50% distinct: a measurement; a repeated price ladder is kept as categories),
    and RE fields of bare numbers or id-like codes. Fields on fewer than 50 items are kept (too few to judge).
    Each field's decision is on `schema.decisions`. Vocabularies are fitted later, by the featurizer."""
    values: dict[tuple[str, str], list[str]] = defaultdict(list)  # insertion-ordered: first appearance
    n_items: Counter[tuple[str, str]] = Counter()
    ids_copied: Counter[tuple[str, str]] = Counter()
    for it in items:
        item_id = str(it.get("id", ""))
        for section in ("std", "re"):
            for k, vals in (it.get(section) or {}).items():
                key = (section, str(k))
                vs = vals if type(vals) is list else [vals]  # normalized items: lists of strings already
                if not all(type(v) is str for v in vs):
                    vs = [str(v) for v in vs if v is not None]
                values[key].extend(vs)
                if vs:
                    n_items[key] += 1
                    ids_copied[key] += item_id in vs
    decisions = tuple(_decide(f"{sec}.{k}", vs, n_items[(sec, k)], ids_copied[(sec, k)], sec == "re")
                      for (sec, k), vs in values.items())
    kept = {d.field for d in decisions if d.action == "kept"}
    std = {k: None for (sec, k) in values if sec == "std" and f"std.{k}" in kept}
    re_fields = tuple(k for (sec, k) in values if sec == "re" and f"re.{k}" in kept)
    return Schema(name=name, std_fields=std, re_fields=re_fields, decisions=decisions)


def format_decisions(schema: Schema) -> list[str]:
    """One line per field decision, dropped fields first ("std.sku: dropped (near-unique: ...)"); [] for a schema
    that was not inferred."""
    order = sorted(schema.decisions, key=lambda d: d.action != "dropped")
    return [str(d) for d in order]
