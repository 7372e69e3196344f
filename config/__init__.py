"""ClassPulse's one configuration: every setting a school may change, typed and checked, in one TOML file.

`config/classpulse.toml` is the product's default file: every value with its unit and why it has its
default. A school's file (`--config PATH` on `python -m capture`, `dashboard` and `analytics`) holds only
what it changes, over the default file. Any key the product does not know is an error naming the file and the
key's full dotted name, and so is a value of the wrong type or outside its range: a typo must never leave
a default silently in force. Validation is pydantic's (config/schema.py); this module reads, layers, reports
and prints.
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import tomli_w
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.schema import (
    CaptureConfig,
    ClassPulseConfig,
    DashboardConfig,
    DetectConfig,
    EngagementConfig,
    FlagConfig,
    GridSettings,
    IdentitySettings,
    LayoutSettings,
    NameSettings,
    RegionSettings,
    ScoreConfig,
    SignalSettings,
    Weights,
)

__all__ = [
    "DEFAULT_FILE",
    "CaptureConfig",
    "ClassPulseConfig",
    "ConfigError",
    "DashboardConfig",
    "DetectConfig",
    "EngagementConfig",
    "FlagConfig",
    "GridSettings",
    "IdentitySettings",
    "LayoutSettings",
    "NameSettings",
    "RegionSettings",
    "ScoreConfig",
    "SignalSettings",
    "Weights",
    "add_options",
    "chosen",
    "choose",
    "load",
    "origin",
    "override",
    "to_toml",
]

DEFAULT_FILE = Path(__file__).resolve().with_name("classpulse.toml")
SHOWN_DEFAULT = f"{DEFAULT_FILE.parent.name}/{DEFAULT_FILE.name}"


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; the message is one line naming the file and key."""


def load(path: Path | None = None) -> ClassPulseConfig:
    """The configuration of `path` over the default file (the default file alone for None)."""
    merged = _read(DEFAULT_FILE)
    if path is not None and path.resolve() != DEFAULT_FILE:
        merged = _layered(merged, _read(path))
    shown = path if path is not None else DEFAULT_FILE
    try:
        return ClassPulseConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(f"config {shown}: {_explain(error)}") from None


def override(config: ClassPulseConfig, changes: Mapping[str, object]) -> ClassPulseConfig:
    """`config` with the command line's values by dotted key ("capture.fps"), checked as a file's would be."""
    raw = config.model_dump()
    for key, value in changes.items():
        *tables, name = key.split(".")
        table = raw
        for part in tables:
            table = table[part]
        table[name] = value
    try:
        return ClassPulseConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"command line: {_explain(error)}") from None


def to_toml(config: ClassPulseConfig, origin: str) -> str:
    """`config` as a TOML file that loads back to the same values; `origin` says where it came from."""
    return f"# The configuration in force: {origin}.\n" + tomli_w.dumps(config.model_dump())


# The configuration this process was started with (--config and the command line's options), for code that
# reads it where no caller hands it one (the dashboard's pages, the score stored when a capture ends).
_in_force: list[ClassPulseConfig] = []


def choose(path: Path | None, changes: Mapping[str, object] | None = None) -> ClassPulseConfig:
    """The configuration of `path` with the command line's `changes`, made this process's configuration."""
    chosen_config = override(load(path), changes) if changes else load(path)
    _in_force[:] = [chosen_config]
    return chosen_config


def chosen() -> ClassPulseConfig:
    """This process's configuration: what `choose` was given, or the default file's."""
    if not _in_force:
        _in_force.append(load())
    return _in_force[0]


class Options(Protocol):
    """A parser or one of its argument groups."""

    def add_argument(self, *names: str, **options: Any) -> argparse.Action: ...


def add_options(parser: Options, default: Any = None) -> None:
    """--config and --print-config, the same on every command. default: argparse.SUPPRESS on a subcommand
    whose parent has them too, so the parent's value is not overwritten."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=default,
        help=f"a TOML file of the settings to change; the rest come from {SHOWN_DEFAULT}",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        default=False if default is None else default,
        help="print the configuration in force (as TOML, command-line options applied) and exit",
    )


def origin(path: Path | None, changes: Mapping[str, object]) -> str:
    """Where a configuration came from, in words, for --print-config's first line."""
    parts = [str(DEFAULT_FILE)] + ([str(path)] if path is not None else [])
    if changes:
        parts.append("the command line's " + ", ".join(changes))
    return ", then ".join(parts)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"config {path}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path}: not TOML: {error}") from None


def _layered(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top`'s keys over `base`'s, table by table."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = _layered(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _explain(error: ValidationError) -> str:
    """The first problem pydantic found, as `dotted.key: what is wrong, got VALUE`."""
    errors = error.errors()
    first = errors[0]
    where = [part for part in first["loc"] if isinstance(part, str)]
    key = ".".join(str(part) if isinstance(part, str) else f"[{part}]" for part in first["loc"]).replace(".[", "[")
    if first["type"] == "extra_forbidden":
        return _unknown_keys(errors, where[:-1])
    return f"{key}: {_problem(first)}"


def _unknown_keys(errors: list[ErrorDetails], table: list[str]) -> str:
    names = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and list(e["loc"][:-1]) == table]
    allowed = sorted(_model_at(table).model_fields)
    dotted = ", ".join(".".join([*table, name]) for name in names)
    hints = [match for name in names for match in difflib.get_close_matches(name, allowed, n=1)]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    place = f"[{'.'.join(table)}]" if table else "the top level"
    return f"unknown key(s) {', '.join(names)}: {dotted}{hint}; allowed in {place}: {', '.join(allowed)}"


def _model_at(table: list[str]) -> type[BaseModel]:
    model: type[BaseModel] = ClassPulseConfig
    for name in table:
        inner = model.model_fields[name].annotation
        assert isinstance(inner, type) and issubclass(inner, BaseModel), name
        model = inner
    return model


_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected text in quotes",
    "tuple_type": "expected a list",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "finite_number": "must be a finite number",
    "missing": "missing",
}
_BOUNDS = {
    "greater_than": "must be more than {gt:g}",
    "greater_than_equal": "must not be less than {ge:g}",
    "less_than": "must be less than {lt:g}",
    "less_than_equal": "must be at most {le:g}",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must look like {pattern}",
}


def _problem(error: ErrorDetails) -> str:
    context = error.get("ctx", {})
    if error["type"] == "value_error":
        problem = str(context.get("error", error["msg"]))
    elif error["type"] in _BOUNDS:
        problem = _BOUNDS[error["type"]].format(**context)
    else:
        problem = _EXPECTED.get(error["type"], error["msg"])
    shown = error["input"]
    if error["type"] == "missing" or isinstance(shown, dict):
        return problem
    return f"{problem}, got {shown!r}"
