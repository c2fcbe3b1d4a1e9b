"""Problem: one thing wrong with one record (line, id, field, value, message, severity), and CatalogError.

Shared by the catalog reader, the table converter, the photo checks and the service's error bodies; no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ERROR", "WARNING", "Problem", "CatalogError", "ProblemCounts"]

ERROR = "error"
WARNING = "warning"

_MAX_VALUE_CHARS = 60  # how much of a bad value a message shows
_MAX_ALLOWED_SHOWN = 8  # how many allowed values a message lists before "..."
_MAX_PROBLEMS_IN_ERROR = 20
def _short(value: Any, limit: int = _MAX_VALUE_CHARS) -> str:
    """repr() of a value, cut to `limit` characters: a bad line can be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _allowed_text(allowed: Iterable[str]) -> str:
    values = list(allowed)
    shown = ", ".join(values[:_MAX_ALLOWED_SHOWN])
    if len(values) > _MAX_ALLOWED_SHOWN:
        shown += f", ... ({len(values)} values)"
    return shown


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record.

    Attributes:
        line: 1-based line number in the source file, or None (an item not read from a file).
        id: the record's id when it could be read, else None.
        field: dotted field name ("id", "title", "std.color", "re.color", "record" for the whole line).
        value: the offending value (shown shortened).
        message: what is wrong, for a human.
        severity: "error" (the record is dropped) or "warning" (the record is kept).
    """

    line: int | None
    id: str | None
    field: str
    value: Any
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.id is not None:
            where.append(f"(id {self.id!r})")
        prefix = " ".join(where)
        # No severity in the text (the contract's format); callers that mix both write f"{p.severity}: {p}".
        text = f"field {self.field!r} = {_short(self.value)}: {self.message}"
        return f"{prefix}: {text}" if prefix else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the value is kept if JSON can hold it, else its shortened repr)."""
        value = self.value
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = _short(value)
        return {
            "line": self.line,
            "id": self.id,
            "field": self.field,
            "value": value,
            "message": self.message,
            "severity": self.severity,
        }


class CatalogError(ValueError):
    """A catalog (or item) that cannot be used; `.problems` holds every problem found, not only the first."""

    def __init__(self, problems: list[Problem], source: str | Path | None = None):
        self.problems = list(problems)
        self.source = str(source) if source is not None else None
        errors = [p for p in self.problems if p.is_error]
        shown = errors or self.problems
        head = f"{len(errors)} error(s)" + (f" in {self.source}" if self.source else "")
        lines = [f"{p.severity}: {p}" for p in shown[:_MAX_PROBLEMS_IN_ERROR]]
        if len(shown) > _MAX_PROBLEMS_IN_ERROR:
            lines.append(f"... and {len(shown) - _MAX_PROBLEMS_IN_ERROR} more")
        super().__init__(head + ":\n  " + "\n  ".join(lines))


class ProblemCounts:
    """`n_errors` / `n_warnings` of a result that holds `problems` (a catalog read, an adapter's conversion)."""

    problems: list[Problem]

    @property
    def n_errors(self) -> int:
        return sum(1 for p in self.problems if p.is_error)

    @property
    def n_warnings(self) -> int:
        return sum(1 for p in self.problems if not p.is_error)
