"""Argument types shared by the command lines (capture, db, analytics, dashboard users): a bad value is one
argparse error line and exit 2, never a traceback further in."""

from __future__ import annotations

import argparse
import math

# A century: any longer retention is a typo, and far longer ones overflow a datetime.
MAX_DAYS = 36_500


def days(value: str) -> float:
    """A number of days, 0 to MAX_DAYS (fractions allowed); nan, inf and the like are refused."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from None
    if not (math.isfinite(number) and 0 <= number <= MAX_DAYS):
        raise argparse.ArgumentTypeError(f"must be a number of days from 0 to {MAX_DAYS}, not {value}")
    return number


def text(value: str) -> str:
    """A name (a session, a student): the command line gives undecodable bytes as lone surrogates, which no
    database and no CSV file can hold, so they are refused here."""
    if not is_text(value):
        raise argparse.ArgumentTypeError(f"{shown(value)} is not valid UTF-8 text")
    return value


def is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(value: str) -> str:
    """`value` quoted for an error line, undecodable bytes as \\xNN escapes."""
    return "'" + value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") + "'"
