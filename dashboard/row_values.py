"""A pandas table's values as the types the pages draw them with. pandas-stubs type a row's value (itertuples,
.at, .loc) as any scalar at all, so each is narrowed where the page reads its row; a value of another type
(a column whose type changed upstream) fails here, by name, instead of being drawn wrong."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd


def text(value: object) -> str | None:
    """A text value; None for a missing one (None, or NaN where pandas filled a gap)."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    raise TypeError(f"expected text or nothing, got {value!r}")


def key(value: object) -> str:
    """A student's key: text, never missing."""
    found = text(value)
    if found is None:
        raise TypeError("a student key is missing")
    return found


def number(value: object) -> float:
    """A number (NaN for a missing one stays NaN)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")


def count(value: object) -> int:
    """A whole number: a count or a database id."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"expected a whole number, got {value!r}")


def optional_moment(value: object) -> pd.Timestamp | None:
    """A time; None for a missing one (NaT)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return pd.Timestamp(value)
    raise TypeError(f"expected a time, got {value!r}")


def moment(value: object) -> pd.Timestamp:
    """A time that is never missing."""
    found = optional_moment(value)
    if found is None:
        raise TypeError("a time is missing")
    return found


def spells(value: object) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """A list of (start, end) times (analytics.attendance's `away`)."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list of (start, end) times, got {value!r}")
    return [(moment(start), moment(end)) for start, end in value]
