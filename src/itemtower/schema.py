"""Schemas: which STD (categorical) fields and RE (free-text) fields a catalog has.

A schema is plain data, saved as JSON next to a model. `KFASHION` is the "clothes" schema of the seed note,
values verbatim (typos such as "nomal" and "jumpsuite" included: real catalogs in this schema use them).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = ["Schema", "KFASHION", "infer_schema"]


@dataclass(frozen=True)
class Schema:
    """The fields of a catalog.

    Attributes:
        name: a label for humans ("kfashion", "myntra", "inferred").
        std_fields: STD field name -> allowed values, or None for an open vocabulary (fitted on the catalog).
        re_fields: RE field names; each holds a list of free-text phrases.
    """

    name: str
    std_fields: dict[str, tuple[str, ...] | None]
    re_fields: tuple[str, ...] = ()

    def allowed(self, field_name: str) -> tuple[str, ...] | None:
        return self.std_fields.get(field_name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "std_fields": {k: (list(v) if v is not None else None) for k, v in self.std_fields.items()},
            "re_fields": list(self.re_fields),
        }

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


def infer_schema(items: Iterable[dict[str, Any]], name: str = "inferred") -> Schema:
    """A schema from the fields the items use: every `std` key is an open-vocabulary STD field, every `re` key
    an RE field, in order of first appearance. Vocabularies are fitted later, on the catalog, by the featurizer."""
    std: dict[str, None] = {}
    re_counts: Counter[str] = Counter()
    for it in items:
        for k in (it.get("std") or {}):
            std.setdefault(str(k), None)
        for k in (it.get("re") or {}):
            re_counts[str(k)] += 1
    re_fields = tuple(dict.fromkeys(k for k in re_counts))
    return Schema(name=name, std_fields=std, re_fields=re_fields)
