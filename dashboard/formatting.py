"""How times, durations and shares read on screen: local wall-clock time, short durations, whole percents."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd


def local_time(moment: datetime | pd.Timestamp, with_date: bool = False) -> str:
    """`moment` (timezone-aware) in this machine's time zone, e.g. '09:15:02' or '2025-03-04 09:15'."""
    shown = pd.Timestamp(moment).tz_convert(_local_zone())
    return shown.strftime("%Y-%m-%d %H:%M") if with_date else shown.strftime("%H:%M:%S")


def to_local(times: pd.Index | pd.Series) -> pd.DatetimeIndex:
    """UTC times as this machine's wall-clock times without a zone: Plotly draws a time as written, ignoring zones."""
    return pd.DatetimeIndex(times).tz_convert(_local_zone()).tz_localize(None)


def duration(span: timedelta) -> str:
    """'45 s', '12 min', '1 h 05 min'."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def percent(share: float) -> str:
    return f"{share:.0%}"


def _local_zone() -> object:
    return datetime.now().astimezone().tzinfo
