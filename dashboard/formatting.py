"""How times, durations and shares read on screen: the viewer's wall-clock time, short durations, whole percents.

The viewer's time zone is the one their browser reports (assets/time_zone.js keeps it in the ZONE_COOKIE
cookie, which every request of the page carries); without it, or outside a request, this machine's zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pandas as pd
from flask import has_request_context, request

ZONE_COOKIE = "classpulse_time_zone"  # an IANA name such as "America/New_York"; assets/time_zone.js sets it


def local_time(moment: datetime | pd.Timestamp, with_date: bool = False) -> str:
    """`moment` (timezone-aware) in the viewer's time zone, e.g. '09:15:02' or '2025-03-04 09:15'."""
    shown = pd.Timestamp(moment).tz_convert(local_zone())
    return shown.strftime("%Y-%m-%d %H:%M") if with_date else shown.strftime("%H:%M:%S")


def to_local(times: pd.Index | pd.Series) -> pd.DatetimeIndex:
    """UTC times as the viewer's wall-clock times without a zone: Plotly draws a time as written, ignoring zones."""
    return pd.DatetimeIndex(times).tz_convert(local_zone()).tz_localize(None)


def local_zone() -> tzinfo:
    """The viewer's time zone (module docstring)."""
    named = _viewer_zone(unquote(request.cookies.get(ZONE_COOKIE, ""))) if has_request_context() else None
    if named is not None:
        return named
    machine = datetime.now().astimezone().tzinfo
    assert machine is not None  # astimezone() without a zone always attaches this machine's
    return machine


def zone_label() -> str:
    """The name of local_zone() as the viewer reads it: 'Europe/Paris', or this machine's abbreviation ('UTC')."""
    zone = local_zone()
    return str(zone) if isinstance(zone, ZoneInfo) else datetime.now(zone).strftime("%Z")


@lru_cache(maxsize=64)
def _viewer_zone(name: str) -> ZoneInfo | None:
    """The zone called `name`; None for a name that is not one (the cookie comes from the browser)."""
    try:
        return ZoneInfo(name) if name else None
    except (ValueError, KeyError, OSError):  # not a zone key (ValueError), no such zone (ZoneInfoNotFoundError)
        return None


def duration(span: timedelta) -> str:
    """'45 s', '12 min', '1 h 05 min'."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def percent(share: float) -> str:
    return f"{share:.0%}"
