"""Title augmentation from photo matches (issue 12, the seed's fast mode): a view may borrow a word or two from the
title of an item whose photo looks like this one's, a positive pair that the text alone would not give.

The matches are the items' `image_matches` (images/reinforce.py, `itemtower images --match`) when the catalog has
them, else the photo features' own nearest neighbours above images.match.NEAR_DUPLICATE. A borrowed word is a
whole word of the matched title (its first token and the `##` pieces after it) that the item's own title lacks.
Measured in BENCHMARKS.md 12f.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

from itemtower.features.featurize import EncodedItem

__all__ = ["borrow_table", "borrow_words", "matches_of"]


def matches_of(items: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """id -> matched ids from the items' `image_matches` ([{"id", "score"}]); items without any are left out."""
    out: dict[str, list[str]] = {}
    for it in items:
        got = [str(m["id"]) for m in it.get("image_matches") or () if isinstance(m, Mapping) and "id" in m]
        if got:
            out[str(it["id"])] = got
    return out


def _words(title: Sequence[int], id_to_token) -> list[tuple[int, ...]]:
    words: list[list[int]] = []
    for t in title:
        if words and id_to_token(t).startswith("##"):
            words[-1].append(t)
        else:
            words.append([t])
    return [tuple(w) for w in words]


def borrow_table(encoded: Sequence[EncodedItem], ids: Sequence[str], matches: Mapping[str, Sequence[str]],
                 id_to_token) -> list[list[tuple[int, ...]]]:
    """Per row of `encoded`, the words of its matches' titles that its own title lacks (deduplicated)."""
    row = {i: r for r, i in enumerate(ids)}
    table: list[list[tuple[int, ...]]] = []
    for r, iid in enumerate(ids):
        own = set(_words(encoded[r].title, id_to_token))
        seen: dict[tuple[int, ...], None] = {}
        for m in matches.get(iid, ()):
            j = row.get(m)
            if j is not None:
                for w in _words(encoded[j].title, id_to_token):
                    if w not in own:
                        seen.setdefault(w, None)
        table.append(list(seen))
    return table


def borrow_words(title: list[int], words: Sequence[tuple[int, ...]], rng: random.Random, n_max: int = 2) -> list[int]:
    """`title` with 1..n_max of `words` appended (in a random order)."""
    n = min(len(words), rng.randint(1, n_max))
    out = list(title)
    for w in rng.sample(list(words), n):
        out.extend(w)
    return out
