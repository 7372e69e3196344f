"""The engagement configuration: typed dataclasses loaded from analytics/engagement.toml, strictly.

A typo in a key would otherwise silently leave a default in force, so unknown keys, missing keys and
wrong types are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vocabulary.emotions import EMOTIONS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_CONFIG = Path(__file__).resolve().with_name("engagement.toml")
# Upper bounds by the key's unit: longer than a day is no class, a head turns at most 90 degrees either way,
# and a relative weight that large is a typo (it would also overflow the time arithmetic further on).
MAX_SECONDS = 86_400
MAX_DEGREES = 90
MAX_WEIGHT = 1_000
T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    """The engagement configuration file is unreadable or invalid; the message names the file and key."""


@dataclass(frozen=True)
class Weights:
    present: float
    attentive: float
    eyes_open: float
    expression: float


@dataclass(frozen=True)
class ScoreConfig:
    bin_seconds: int
    emotion_window_seconds: float
    max_yaw_degrees: float
    max_pitch_degrees: float
    negative_emotions: tuple[str, ...]
    weights: Weights


@dataclass(frozen=True)
class FlagConfig:
    absent_seconds: float
    looking_away_window_seconds: float
    looking_away_share: float
    eyes_closed_seconds: float
    negative_level: float
    negative_seconds: float
    drop_window_seconds: float
    drop_fraction: float
    baseline_seconds: float
    turned_gap_seconds: float
    negative_margin: float
    negative_max_engagement: float


@dataclass(frozen=True)
class EngagementConfig:
    score: ScoreConfig
    flags: FlagConfig


def load_config(path: Path = DEFAULT_CONFIG) -> EngagementConfig:
    """The configuration in `path`; ConfigError for anything but exactly the keys above, with sensible values."""
    try:
        config = _build(EngagementConfig, tomllib.loads(path.read_text(encoding="utf-8")), "")
        _check(config)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as error:
        raise ConfigError(f"engagement config {path}: {error}") from None
    return config


def _check(config: EngagementConfig) -> None:
    """The rules beyond types: known emotions, some weight, windows longer than zero, shares at most 1."""
    score, flags = config.score, config.flags
    if unknown := sorted(set(score.negative_emotions) - set(EMOTIONS)):
        raise ConfigError(f"score.negative_emotions: unknown {unknown}; known: {', '.join(EMOTIONS)}")
    if sum(dataclasses.astuple(score.weights)) <= 0:
        raise ConfigError("score.weights: must not all be zero")
    windows = {
        "score.bin_seconds": score.bin_seconds,
        "score.emotion_window_seconds": score.emotion_window_seconds,
        "flags.looking_away_window_seconds": flags.looking_away_window_seconds,
        "flags.drop_window_seconds": flags.drop_window_seconds,
    }
    for key, value in windows.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be more than 0, got {value}")
    shares = {
        "flags.looking_away_share": flags.looking_away_share,
        "flags.negative_level": flags.negative_level,
        "flags.drop_fraction": flags.drop_fraction,
        "flags.negative_margin": flags.negative_margin,
        "flags.negative_max_engagement": flags.negative_max_engagement,
    }
    for key, value in shares.items():
        if value > 1:
            raise ConfigError(f"{key}: must be at most 1, got {value}")
    for key, value in _numbers(config, ""):
        largest = _largest(key)
        if value > largest:
            raise ConfigError(f"{key}: must be at most {largest}, got {value}")


def _numbers(table: Any, where: str) -> list[tuple[str, float]]:
    """Every number of a configuration dataclass, by its dotted key."""
    found: list[tuple[str, float]] = []
    for field in dataclasses.fields(table):
        value, key = getattr(table, field.name), f"{where}{field.name}"
        if dataclasses.is_dataclass(value):
            found += _numbers(value, f"{key}.")
        elif isinstance(value, int | float):
            found.append((key, value))
    return found


def _largest(key: str) -> float:
    if key.endswith("_seconds"):
        return MAX_SECONDS
    if key.endswith("_degrees"):
        return MAX_DEGREES
    return MAX_WEIGHT


def _build(cls: type[T], raw: Any, where: str) -> T:
    """cls from a TOML table, recursively; every field required, no other key allowed. `where`: the table's
    dotted name, for messages."""
    table = where or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{table}: expected a table")
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    if unknown := sorted(set(raw) - fields):
        raise ConfigError(f"{table}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    if missing := sorted(fields - set(raw)):
        raise ConfigError(f"{table}: missing key(s) {', '.join(missing)}")
    return cls(**{name: _value(hints[name], raw[name], f"{where}.{name}" if where else name) for name in fields})


def _value(hint: Any, value: Any, key: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    # TOML booleans are ints to Python; no setting here is a boolean.
    if isinstance(value, bool) or not isinstance(value, int | float) or (hint is int and not isinstance(value, int)):
        raise ConfigError(f"{key}: expected {'an integer' if hint is int else 'a number'}, got {value!r}")
    # nan passes every comparison below, and would reach the flags' messages ("absent for more than nan s").
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    if value < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return float(value) if hint is float else value
