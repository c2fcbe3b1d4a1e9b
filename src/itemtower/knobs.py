"""Config dataclasses: one place for a knob's default, type and help text (no torch).

`knob(default, help)` declares a field whose help the CLI shows (cli/train_options.py builds `itemtower train`'s
options from the fields) and whose name a TOML file or a `--set` override may use. `from_mapping` builds a
dataclass, nested ones included (TrainConfig holds `tower` and `views`), from a plain dict: strict for what a
person wrote (a typo must not be silently ignored), lenient for what an older version wrote (a manifest of a
model trained before a knob was removed: warn and go on).
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import field, fields, is_dataclass
from typing import Any

__all__ = ["knob", "help_of", "reject_unknown_keys", "from_mapping", "nested_types"]


def knob(default: Any = dataclasses.MISSING, help: str = "", **meta: Any) -> Any:
    """A dataclass field with its help text (and optional `choices`, `flags` for the CLI) in its metadata."""
    return field(default=default, metadata={"help": help, **meta})


def help_of(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "")


def reject_unknown_keys(cls: type, d: dict[str, Any]) -> None:
    """A config dict with a key the dataclass lacks is an error (a typo must not be silently ignored)."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")


def nested_types(cls: type) -> dict[str, type]:
    """{field name: dataclass type} for the fields of `cls` that are dataclasses themselves."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls) if is_dataclass(hints.get(f.name))}


def from_mapping(cls: type, d: dict[str, Any], strict: bool = True, where: str = "") -> Any:
    """`cls(**d)`, nested dataclass fields built from their sub-dicts.

    Args:
        strict: an unknown key is a ValueError; otherwise a warning naming `where`, and the key is dropped.
    """
    d = dict(d)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        if strict:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}" + (f" in {where}" if where else ""))
        warnings.warn(f"{where or cls.__name__}: ignoring {cls.__name__} keys this version does not have: "
                      f"{unknown}", stacklevel=2)
        for k in unknown:
            d.pop(k)
    for name, sub in nested_types(cls).items():
        if isinstance(d.get(name), dict):
            d[name] = from_mapping(sub, d[name], strict, where)
    return cls(**d)
