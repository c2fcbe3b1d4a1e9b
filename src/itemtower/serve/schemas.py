"""Request and response bodies. Every request model carries an example, shown (and runnable) in Swagger at /docs.

Pydantic checks the shapes (a std value is a string or a list of strings, ...); `catalog.check_item` then checks
the item against the model's schema (empty title, unknown fields and values), so that the service and the catalog
reader judge items by the same rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from itemtower.catalog.jsonsafe import safe_value

__all__ = [
    "ItemIn",
    "ItemPut",
    "ItemFull",
    "NONBLANK",
    "ItemOut",
    "ProblemOut",
    "EmbedRequest",
    "EmbedResponse",
    "SimilarItem",
    "SimilarResponse",
    "SearchRequest",
    "RecommendRequest",
    "UpsertResponse",
    "HealthResponse",
    "ErrorResponse",
]

_ITEM_EXAMPLE: dict[str, Any] = {
    "id": "1528",
    "title": "Puma Men Ferrari Black Fleece Jacket",
    "std": {"category": "01outer_02jacket", "color": "Black", "fiber_composition": ["Polyester", "Cotton"],
            "gender": "male"},
    "re": {"color": ["black"], "specification.metadata": ["Ferrari", "long sleeves"]},
    "group": "g12",
}
_PARTIAL_EXAMPLE: dict[str, Any] = {"title": "black fleece jacket", "std": {"category": "01outer_02jacket"}}


# "Holds a character that str.strip() keeps": the exact rule of catalog.check_item ("empty string value", "empty
# id", "empty title"), spelled without \s (whose meaning differs between Python, Rust and ECMA regexes). Only the
# OpenAPI schema carries it (so that schemathesis and clients know); check_item stays the one validator.
NONBLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_Text = Annotated[str, Field(json_schema_extra={"pattern": NONBLANK})]
_Values = dict[str, _Text | list[_Text]]


def _json_number(value: Any) -> Any:
    """What JSON Schema calls a number: not a bool, not a string (pydantic's lax mode takes `true` as 1 and "2" as
    2, which the schema's "integer" forbids; strict mode would refuse 5.0, which it allows)."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"expected a JSON number, got {type(value).__name__}")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_number)]
JsonIntOrNone = Annotated[int | None, BeforeValidator(_json_number)]  # (JsonInt | None would lose Field(ge=...))
JsonFloat = Annotated[float, BeforeValidator(_json_number)]


_STD = "categorical fields: field -> a value or a list of values"
_RE = "free-text phrases per field: a phrase or a list of phrases"
_GROUP = "id of a product family (colour/size variants)"
_IMAGE = ("the product photo, read by a model trained with photos: a path inside the server's ITEMTOWER_IMAGE_ROOT "
          "or a data URL 'data:image/<type>;base64,...' (ITEMTOWER_MAX_IMAGE_BYTES); an http(s) URL is kept, never "
          "fetched (serve/photos.py)")


class ItemIn(BaseModel):
    """An item as a client sends it. Keys other than these are kept and returned, never fed to the model; they must
    be JSON (no NaN or Infinity, no lone surrogates, at most 32 levels deep: itemtower.catalog.jsonsafe)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_ITEM_EXAMPLE]})

    id: _Text | None = Field(None, description="unique id; optional for /embed and /search")
    title: str | None = Field(None, description="free-text product title (Korean, English or mixed)")
    std: _Values = Field(default_factory=dict, description=_STD)
    re: _Values = Field(default_factory=dict, description=_RE)
    group: str | None = Field(None, description=_GROUP)
    image: str | None = Field(None, description=_IMAGE)


class ItemFull(ItemIn):
    """A full item in a batch write (PUT /items): its own id and a title, neither empty."""

    id: _Text = Field(description="unique id; not empty")
    title: _Text = Field(description="free-text product title (Korean, English or mixed); not empty")


class ItemPut(BaseModel):
    """A full item for PUT /items/{id}: a title is required; the id is the path's. A body `id`, if sent anyway,
    must equal it: it is an extra key here, so that the schema does not invite a second, different id."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {k: v for k, v in _ITEM_EXAMPLE.items() if k != "id"}]})

    title: _Text = Field(description="free-text product title (Korean, English or mixed); not empty")
    std: _Values = Field(default_factory=dict, description=_STD)
    re: _Values = Field(default_factory=dict, description=_RE)
    group: str | None = Field(None, description=_GROUP)
    image: str | None = Field(None, description=_IMAGE)


class ItemOut(BaseModel):
    """A stored item, normalized: every std/re value is a list of strings; extra keys as they were sent."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {**_ITEM_EXAMPLE, "std": {k: v if isinstance(v, list) else [v] for k, v in _ITEM_EXAMPLE["std"].items()}}
    ]})

    id: str
    title: str | None = None
    std: dict[str, list[str]] = Field(default_factory=dict)
    re: dict[str, list[str]] = Field(default_factory=dict)
    group: str | None = None


class ProblemOut(BaseModel):
    """One problem with one item of a request (a warning in a 2xx answer, an error in a 422)."""

    item: int | None = Field(None, description="position of the item in the request's list (0-based), if a list")
    field: str = Field(description="dotted field name: title, std.color, re.color, ...")
    value: Any = Field(None, description="the value as sent, or a short repr of it when JSON cannot hold it")
    message: str
    severity: str = "warning"

    @field_validator("value", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        # NaN, inf, a lone surrogate: echoing the bad value back must never be what fails (a 500 from a 422)
        return safe_value(value)


class EmbedRequest(BaseModel):
    items: list[ItemIn] = Field(description="items to embed; partial items (only a title, only std) are fine")

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_ITEM_EXAMPLE, _PARTIAL_EXAMPLE]}]})


class EmbedResponse(BaseModel):
    dim: int = Field(description="vector dimension D")
    embeddings: list[list[float]] = Field(description="one L2-normalised vector per item, in request order")
    warnings: list[ProblemOut] = Field(default_factory=list, description="unknown fields/values (mapped to UNK)")


class SimilarItem(ItemOut):
    """A stored item with its similarity to the query (inner product of unit vectors: cosine, in [-1, 1])."""

    score: float

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"score": 0.93, **_ITEM_EXAMPLE}]})


class SimilarResponse(BaseModel):
    items: list[SimilarItem] = Field(description="best first")
    warnings: list[ProblemOut] = Field(default_factory=list)


class SearchRequest(BaseModel):
    """Search by a partial item: e.g. only a category and a few title words."""

    item: ItemIn
    k: JsonInt = Field(10, ge=1, description="how many results (at most the service's max_k)")
    filters: dict[str, str] = Field(
        default_factory=dict, description="std field -> value; results must hold every value given"
    )
    offset: JsonInt = Field(0, ge=0, le=1000, description="skip this many results (pagination: offset=k is page 2)")
    per_group: JsonIntOrNone = Field(None, ge=1, description="at most this many results per group (diversity)")
    group_by: str | None = Field(None, description="with per_group: group by this std field's values instead of "
                                 "by the items' `group`")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"item": _PARTIAL_EXAMPLE, "k": 10, "filters": {"gender": "male"}}
    ]})


class RecommendRequest(BaseModel):
    """Items like the positives and unlike the negatives (ids of indexed items)."""

    positive: list[str] = Field(min_length=1, max_length=100, description="ids of items the user liked")
    negative: list[str] = Field(default_factory=list, max_length=100, description="ids of items to move away from")
    negative_weight: JsonFloat = Field(0.5, ge=0, le=2, description="how far to move away from the negatives")
    k: JsonInt = Field(10, ge=1, description="how many results (at most the service's max_k)")
    filters: dict[str, str] = Field(
        default_factory=dict, description="std field -> value; results must hold every value given"
    )
    offset: JsonInt = Field(0, ge=0, le=1000, description="skip this many results (pagination)")
    per_group: JsonIntOrNone = Field(None, ge=1, description="at most this many results per group (diversity)")
    group_by: str | None = Field(None, description="with per_group: group by this std field's values")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"positive": ["1528"], "negative": [], "k": 10, "filters": {}, "per_group": 1}
    ]})


class UpsertResponse(BaseModel):
    id: str
    created: bool = Field(description="true: a new item (201); false: an existing item was replaced (200)")
    item: ItemOut
    warnings: list[ProblemOut] = Field(default_factory=list)


class HealthResponse(BaseModel):
    status: str = Field(description="ok | degraded (model loaded, but see warnings) | no_model")
    model_loaded: bool
    n_items: int = Field(description="items in the index")
    message: str | None = Field(None, description="what is wrong and how to fix it, when status is not ok")
    warnings: list[str] = Field(default_factory=list)
    neighbours: dict[str, Any] | None = Field(None, description="the kept similar-by-id lists (serve/neighbours.py):"
                                              " items with a list, depth, filled by the filler, hit rate")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ok", "model_loaded": True, "n_items": 3000, "message": None, "warnings": [],
         "neighbours": {"items": 3000, "depth": 30, "filled": 3000, "hit_rate": 0.97}}
    ]})


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `detail` says what is wrong and what to do; `errors` lists the items' problems."""

    detail: str
    errors: list[ProblemOut] = Field(default_factory=list)
