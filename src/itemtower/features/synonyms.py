"""Lexicon-driven title augmentation for the views: synonym / language swaps (와이드 <-> wide, 반팔 <-> short sleeve)
and colour-word removal, on token ids.

Only lexicon forms that are a single whole token of the fitted tokenizer take part: a swap then changes one id for
another and the view stays a valid token sequence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from itemtower.features.tokenizer import TextTokenizer

__all__ = ["SwapTable", "build_swap_table"]


@dataclass
class SwapTable:
    """synonyms: token id -> other token ids with the same STD meaning; colour_ids: tokens that name a colour."""

    synonyms: dict[int, list[int]] = field(default_factory=dict)
    colour_ids: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.synonyms or self.colour_ids)


def build_swap_table(tokenizer: TextTokenizer, lexicon=None) -> SwapTable:
    """Group the lexicon's single-token forms by (STD field, value); every member is a synonym of the others."""
    from itemtower.features.lexicon import load_lexicon

    lex = lexicon or load_lexicon()
    vocab = tokenizer.tok.get_vocab()
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    colours: set[int] = set()
    for key, senses in lex.index.items():
        if len(key) != 1 or key[0] not in vocab:
            continue
        tid = vocab[key[0]]
        for s in senses:
            if s.std_field is None:
                continue
            groups[(s.std_field, s.value)].add(tid)
            if s.std_field == "color":
                colours.add(tid)
    synonyms: dict[int, set[int]] = defaultdict(set)
    for ids in groups.values():
        for t in ids:
            synonyms[t] |= ids - {t}
    return SwapTable({t: sorted(o) for t, o in synonyms.items() if o}, frozenset(colours))
