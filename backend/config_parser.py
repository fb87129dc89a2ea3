"""Command-line options built from typed config dataclasses (nerfstudio-style).

Each backend command has one config dataclass; its fields, with their types, defaults and
help written once, are the command's options:

    @dataclass(frozen=True)
    class ExportHeadConfig:
        out: Path = required("head.npz to write")
        head: str = option("default", "'default', 'ict' or a head.npz path")
        overwrite: bool = option(False, "replace an existing --out")

`add_config_arguments` adds them to an argparse parser (`--kebab-case` options unless a
field names its flag, positional fields in order, `bool` as a flag, `Literal[...]` as choices,
`X | None` as an optional X, `tuple[X, ...]` as a flag given once per value, and the options
of a `nested(...)` config in place, so a library's own config is shown without restating its
defaults); fields declared without these helpers are not options (they keep their defaults,
or are set by the caller).
`config_from_namespace` turns the parsed namespace back into the config, so library code only
ever sees typed configs. A config's `__post_init__` validates what can be checked before the
long work starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from .formats.errors import BadInput

_POSITIONAL = "positional"
_HELP = "help"
_CHOICES = "choices"
_REQUIRED = "required"
_FLAG = "flag"
_NESTED = "nested"

Config = TypeVar("Config")


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
           flag: str | None = None) -> Any:
    """A field shown as `--name` (or `flag`) with `default`."""
    return dataclasses.field(default=default, metadata={_HELP: help, _CHOICES: choices, _FLAG: flag})


def required(help: str, *, flag: str | None = None) -> Any:
    """A field shown as a required `--name` (or `flag`)."""
    return dataclasses.field(metadata={_HELP: help, _REQUIRED: True, _FLAG: flag})


def nested(config_type: type) -> Any:
    """A field holding another config whose options are shown in place (its defaults are
    the nested config's own)."""
    return dataclasses.field(default_factory=config_type, metadata={_NESTED: True})


def positional(help: str) -> Any:
    """A field shown as a positional argument (required, in field order)."""
    return dataclasses.field(metadata={_HELP: help, _POSITIONAL: True})


def _repeated(annotation: Any) -> Any | None:
    """X of a `tuple[X, ...]` annotation (an option given once per value), else None."""
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        return arguments[0]
    return None


def _value_type(annotation: Any) -> tuple[Any, tuple[str, ...] | None]:
    """(the type argparse converts to, its choices) of a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported option type {annotation}")
        return _value_type(inner[0])
    if origin is Literal:
        values = tuple(str(v) for v in typing.get_args(annotation))
        return str, values
    if annotation is float:
        return finite_float, None
    if annotation in (str, int, Path):
        return annotation, None
    raise TypeError(f"unsupported option type {annotation}")


def finite_float(text: str) -> float:
    """A float option's value. NaN and the infinities are refused: no option means them, and
    they would end up in JSON files (result.json) that have no such numbers."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def option_fields(config_type: type) -> list[dataclasses.Field]:
    """The fields of `config_type` shown on the command line: those declared with option,
    required, positional or nested."""
    return [f for f in dataclasses.fields(config_type)
            if f.init and (_HELP in f.metadata or f.metadata.get(_NESTED))]


def command_flags(config: Any, always: tuple[str, ...] = ()) -> list[str]:
    """The command-line flags that give `config`'s options (not its positional, required or
    nested fields): those that differ from their defaults, and those named in `always`;
    booleans as bare flags."""
    flags = []
    for field in option_fields(type(config)):
        if any(field.metadata.get(key) for key in (_POSITIONAL, _REQUIRED, _NESTED)):
            continue
        value = getattr(config, field.name)
        if value is None or (field.name not in always and value == field.default):
            continue
        flag = field.metadata.get(_FLAG) or "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else []
        elif isinstance(value, tuple):
            flags += [f"{flag} {item}" for item in value]
        else:
            flags.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return flags


def add_config_arguments(parser: argparse.ArgumentParser, config_type: type) -> None:
    """Add the options of `config_type` to `parser`."""
    hints = typing.get_type_hints(config_type)
    for field in option_fields(config_type):
        annotation = hints[field.name]
        if field.metadata.get(_NESTED):
            add_config_arguments(parser, annotation)
            continue
        help_text = field.metadata.get(_HELP, "")
        flag = field.metadata.get(_FLAG) or "--" + field.name.replace("_", "-")
        if annotation is bool:
            if field.default is not False:
                raise TypeError(f"{config_type.__name__}.{field.name}: a flag must default to False")
            parser.add_argument(flag, dest=field.name, action="store_true", help=help_text)
            continue
        item = _repeated(annotation)
        value_type, choices = _value_type(annotation if item is None else item)
        choices = field.metadata.get(_CHOICES) or choices
        if item is not None:
            if field.metadata.get(_POSITIONAL) or field.metadata.get(_REQUIRED):
                raise TypeError(f"{config_type.__name__}.{field.name}: a repeated option is optional")
            parser.add_argument(flag, dest=field.name, type=value_type, choices=choices, action="append",
                                default=None, help=f"{help_text} (repeat the flag for each)")
            continue
        if field.metadata.get(_POSITIONAL):
            parser.add_argument(field.name, type=value_type, choices=choices, help=help_text)
            continue
        kwargs: dict[str, Any] = {"dest": field.name, "type": value_type, "choices": choices}
        if field.metadata.get(_REQUIRED):
            kwargs["required"] = True
        else:
            kwargs["default"] = field.default
            default = field.default
            if default is not None and default is not dataclasses.MISSING:
                help_text = f"{help_text} (default: {default})" if help_text else f"default: {default}"
        parser.add_argument(flag, help=help_text, **kwargs)


def config_from_namespace(config_type: type[Config], namespace: argparse.Namespace,
                          **overrides: Any) -> Config:
    """The config of the parsed options; `overrides` set fields not on the command line (a
    resolved device, say)."""
    hints = typing.get_type_hints(config_type)
    values = {f.name: config_from_namespace(hints[f.name], namespace) if f.metadata.get(_NESTED)
              else getattr(namespace, f.name) for f in option_fields(config_type)}
    for f in option_fields(config_type):  # a repeated option given no time is its default
        if _repeated(hints[f.name]) is not None:
            values[f.name] = tuple(values[f.name]) if values[f.name] is not None else f.default
    values.update(overrides)
    return config_type(**values)


def report_option() -> Any:
    """The `--json PATH` option of a command that prints a report."""
    return option(None, "also write the report (JSON) here")


def config_from_mapping(config_type: type[Config], mapping: dict[str, Any], where: str,
                        **overrides: Any) -> tuple[Config | None, list[str]]:
    """The config whose option fields `mapping` gives by field name (a TOML table: the
    command's options with `_` for `-`, a nested config as a sub-table), and every problem
    found, each naming `where` and the field; (None, problems) when there is any. `overrides`
    set fields the mapping may not (a derived output path, say)."""
    hints = typing.get_type_hints(config_type)
    known = {f.name: f for f in option_fields(config_type)}
    problems = [f"{where}: unknown field '{key}' (fields: {', '.join(sorted(set(known) - set(overrides)))})"
                for key in mapping if key not in known or key in overrides]
    values: dict[str, Any] = {}
    for name, field in known.items():
        if name in overrides or name not in mapping:
            if name not in overrides and (field.metadata.get(_POSITIONAL) or field.metadata.get(_REQUIRED)):
                problems.append(f"{where}: field '{name}' is required ({field.metadata.get(_HELP)})")
            continue
        value, annotation = mapping[name], hints[name]
        if field.metadata.get(_NESTED):
            if not isinstance(value, dict):
                problems.append(f"{where}: field '{name}' must be a table of {annotation.__name__} fields")
                continue
            nested_config, nested_problems = config_from_mapping(annotation, value, f"{where}.{name}")
            problems += nested_problems
            values[name] = nested_config
            continue
        converted = _typed_value(value, annotation, field.metadata.get(_CHOICES))
        if isinstance(converted, _Refused):
            problems.append(f"{where}: field '{name}' = {value!r}: {converted.reason}")
        else:
            values[name] = converted
    if problems:
        return None, problems
    try:
        return config_type(**values, **overrides), []
    except BadInput as exc:  # the config's own checks (__post_init__)
        return None, [f"{where}: {exc.message}"]


@dataclasses.dataclass(frozen=True)
class _Refused:
    reason: str


def _typed_value(value: Any, annotation: Any, choices: tuple[str, ...] | None) -> Any:
    """`value` (as TOML parsed it) as a field of type `annotation`, or _Refused saying why."""
    if annotation is bool:
        return value if isinstance(value, bool) else _Refused("must be true or false")
    item = _repeated(annotation)
    if item is not None:
        if not isinstance(value, list):
            return _Refused("must be a list")
        items = [_typed_value(v, item, choices) for v in value]
        refused = [i for i in items if isinstance(i, _Refused)]
        return refused[0] if refused else tuple(items)
    value_type, literal_choices = _value_type(annotation)
    choices = choices or literal_choices
    if value_type is finite_float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return _Refused("must be a finite number")
        return float(value)
    if value_type is int:
        integer = isinstance(value, int) and not isinstance(value, bool)
        return value if integer else _Refused("must be an integer")
    if not isinstance(value, str):
        return _Refused("must be a string")
    if choices and value not in choices:
        return _Refused(f"must be one of {', '.join(choices)}")
    return Path(value) if value_type is Path else value
