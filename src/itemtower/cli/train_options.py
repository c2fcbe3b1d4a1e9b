"""`itemtower train`'s options, derived from the TrainConfig and TowerConfig fields (knobs.py): a knob's default,
type and help are written once, on the dataclass. `--config FILE.toml` reads TrainConfig keys ([tower] and [views]
tables for the nested ones); an option given on the command line overrides the file, an option left at its
default does not.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from itemtower.knobs import help_of, nested_types

__all__ = ["train_signature", "config_from_options"]

_EXTRA = ("config",)  # options of the command that are not TrainConfig knobs


def _plain_type(tp: Any) -> Any:
    """`int | None` -> Optional[int] (typer reads typing.Optional), other types unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return Optional[args[0]]
    return tp


def _knob_fields() -> list[tuple[str, Field, Any, str | None]]:
    """(option name, field, type, nested table or None): TrainConfig's own knobs, then the tower's."""
    from itemtower.training import TrainConfig

    out = []
    nested = nested_types(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name not in nested:
            out.append((f.name, f, hints[f.name], None))
    tower_cls = nested["tower"]
    tower_hints = typing.get_type_hints(tower_cls)
    for f in fields(tower_cls):
        out.append((f.name, f, tower_hints[f.name], "tower"))
    return out


def _default(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]


def train_signature() -> inspect.Signature:
    """The typer signature of `train`: ctx, --config, then one option per knob."""
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
              inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                                default=typer.Option(None, help="TOML file of TrainConfig keys (tower and views "
                                                     "tables for the nested ones); options given here "
                                                     "override it"))]
    for name, f, tp, table in _knob_fields():
        where = f" (TOML: {table}.{name})" if table else ""
        choices = f.metadata.get("choices")
        text = help_of(f) + (f" ({' | '.join(choices)})" if choices else "") + where
        opt = typer.Option(_default(f), *f.metadata.get("flags", ()), help=text)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=_plain_type(tp),
                                        default=opt))
    return inspect.Signature(params)


def config_from_options(ctx: typer.Context, values: dict[str, Any], fail: Callable[[str], None]):
    """TrainConfig from the TOML file (if any) and the options given on the command line (click's parameter
    source tells a given option from a default). Bad values are one `error:` line via `fail`."""
    from click.core import ParameterSource

    from itemtower.training import TrainConfig

    base: dict[str, Any] = {}
    if values.get("config") is not None:
        import tomllib

        try:
            base = tomllib.loads(Path(values["config"]).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            fail(f"--config {values['config']}: {e}")
    tower = dict(base.pop("tower", {}) or {})
    for name, f, _, table in _knob_fields():
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            continue  # left to the file, else to the dataclass (the option's default is the field's)
        choices = f.metadata.get("choices")
        if choices and values[name] not in choices:
            fail(f"--{name.replace('_', '-')} must be {', '.join(choices[:-1])} or {choices[-1]}, "
                 f"not {values[name]!r}")
        (tower if table else base)[name] = values[name]
    try:
        return TrainConfig.from_dict({**base, "tower": tower}, where=str(values.get("config") or "the options"))
    except (TypeError, ValueError) as e:
        fail(str(e))
