"""The engagement configuration analytics reads: the `[score]` and `[flags]` tables of the product's one
configuration file (config/classpulse.toml, read strictly by the `config` package).

Unknown keys, wrong types and values out of range are errors that name the file and the key, so a typo never
leaves a default silently in force.
"""

from __future__ import annotations

from pathlib import Path

import config
from config import ConfigError, EngagementConfig, FlagConfig, ScoreConfig, Weights

__all__ = ["DEFAULT_CONFIG", "ConfigError", "EngagementConfig", "FlagConfig", "ScoreConfig", "Weights", "load_config"]

DEFAULT_CONFIG = config.DEFAULT_FILE


def load_config(path: Path | None = None) -> EngagementConfig:
    """The score and flag settings of the configuration file `path` (over the default file); without one,
    of the file this process was started with (`--config`), or the default file."""
    return (config.chosen() if path is None else config.load(path)).engagement
