"""The fashion lexicon: Korean/English surface forms -> KFASHION STD values, as data (resources/lexicon_v1.json).

A form is matched on the token sequence the pre-tokenizer makes of a text, so every form is itself pre-tokenized
when the lexicon is loaded ("라운드넥", "round-neck" and "Round Neck" become whatever tokens kiwi / the Latin regex
make of them, the same as in a title). Lookup is a dict hit on token n-grams, longest first.

One form may carry several meanings ("후드티": category t-shirt and neckline hood; "데님": fibre Cotton), each a
`Sense(std_field, value, re_field)`; a form of `re_only` has one sense with no STD field (a fit or pattern phrase
kept as an RE phrase); a `stop` form is matched and consumed but means nothing ("three-quarter sleeves" must not
leave a bare "sleeves" behind, "black label" is not a colour).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from itemtower.catalog.schema import KFASHION, Schema

__all__ = ["Sense", "Lexicon", "load_lexicon", "match", "DEFAULT_LEXICON", "RE_PRIORITY"]

DEFAULT_LEXICON = "lexicon_v1.json"
# When one surface has senses in several RE fields, it is recorded once, under the first of these it has.
RE_PRIORITY = ("category", "color", "fiber_composition", "category_specification", "specification.metadata")


@dataclass(frozen=True)
class Sense:
    """One meaning of a surface form: an STD value (or None for an RE-only phrase) and the RE field its surface
    is recorded under."""

    std_field: str | None
    value: str | None
    re_field: str


@dataclass
class Lexicon:
    """Token n-gram -> senses, plus the per-field options of the data file.

    Attributes:
        version: the data file's "version".
        index: tuple of tokens -> senses (empty tuple for a stop phrase).
        max_n: the longest key, in tokens.
        gates: STD field -> category_specification or category values an item must have for the field to be
            filled (absent: every item).
        head_noun_fields: fields where the last hit in a title wins (the head noun: "데님 셔츠 자켓" is a jacket).
        context_stop: words that mark a sentence of a long text as being about another garment.
        targets: STD field -> values the lexicon can produce (for validation).
    """

    version: str
    index: dict[tuple[str, ...], tuple[Sense, ...]]
    max_n: int
    gates: dict[str, frozenset[str]]
    head_noun_fields: frozenset[str]
    context_stop: frozenset[str]
    targets: dict[str, set[str]]
    source: str = ""

    def invalid_targets(self, schema: Schema = KFASHION) -> list[tuple[str, str]]:
        """(field, value) pairs the lexicon can produce that `schema` does not allow (should be empty)."""
        bad = []
        for f, values in self.targets.items():
            allowed = schema.allowed(f) if f in schema.std_fields else ()
            for v in sorted(values):
                if allowed is not None and v not in allowed:
                    bad.append((f, v))
        return bad


def load_lexicon(path: str | Path | None = None, pretokenizer=None) -> Lexicon:
    """Load a lexicon file (default: the packaged lexicon_v1.json) and index its forms by token sequence.

    Raises ValueError if the file has no "version" or is malformed.
    """
    if path is None:
        text = resources.files("itemtower.resources").joinpath(DEFAULT_LEXICON).read_text(encoding="utf-8")
        source = f"itemtower/resources/{DEFAULT_LEXICON}"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    data: dict[str, Any] = json.loads(text)
    if not isinstance(data, dict) or not data.get("version"):
        raise ValueError(f"{source}: a lexicon is a JSON object with a 'version' and 'fields'")
    if pretokenizer is None:
        from itemtower.features.pretokenize import PreTokenizer

        pretokenizer = PreTokenizer()

    entries: list[tuple[str, Sense | None]] = []  # (form, sense or None for a stop phrase)
    gates: dict[str, frozenset[str]] = {}
    head: set[str] = set()
    targets: dict[str, set[str]] = {}
    for fname, spec in (data.get("fields") or {}).items():
        re_field = spec.get("re_field", "specification.metadata")
        if spec.get("gate"):
            gates[fname] = frozenset(spec["gate"])
        if spec.get("head_noun"):
            head.add(fname)
        for value, forms in spec["values"].items():
            targets.setdefault(fname, set()).add(value)
            for form in forms:
                entries.append((form, Sense(fname, value, re_field)))
    for re_field, forms in (data.get("re_only") or {}).items():
        for form in forms:
            entries.append((form, Sense(None, None, re_field)))
    for form in data.get("stop") or ():
        entries.append((form, None))

    forms = list(dict.fromkeys(f for f, _ in entries))
    keys_of = dict(zip(forms, (_keys_batch(forms, pretokenizer))))
    index: dict[tuple[str, ...], list[Sense]] = {}
    for form, sense in entries:
        for key in keys_of[form]:
            senses = index.setdefault(key, [])
            if sense is not None and sense not in senses:
                senses.append(sense)
    frozen = {k: tuple(v) for k, v in index.items()}
    return Lexicon(
        version=str(data["version"]),
        index=frozen,
        max_n=max((len(k) for k in frozen), default=1),
        gates=gates,
        head_noun_fields=frozenset(head),
        context_stop=frozenset(w.lower() for w in data.get("context_stop") or ()),
        targets=targets,
        source=source,
    )


def _keys_batch(forms: Sequence[str], pretokenizer) -> list[set[tuple[str, ...]]]:
    toks = pretokenizer.batch(forms)
    out = []
    for form, t in zip(forms, toks):
        keys = {tuple(t)} if t else set()
        raw = tuple(form.lower().split())
        if raw:
            keys.add(raw)
        out.append(keys)
    return out


def match(tokens: Sequence[str], lexicon: Lexicon) -> Iterable[tuple[int, int, str, tuple[Sense, ...]]]:
    """Greedy longest match, left to right: (position, length, surface, senses) for every hit; matched tokens
    are consumed (a stop phrase consumes them and yields nothing)."""
    index, max_n = lexicon.index, lexicon.max_n
    i, n = 0, len(tokens)
    while i < n:
        for k in range(min(max_n, n - i), 0, -1):
            key = tuple(tokens[i:i + k])
            senses = index.get(key)
            if senses is not None:
                if senses:
                    yield i, k, " ".join(key), senses
                i += k
                break
        else:
            i += 1
