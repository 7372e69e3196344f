"""Writes one session's observations as CSV: one row per detected face, ordered by frame then student.
Emotion cells are empty where none was inferred (attention-only capture). Faceless tiles (camera off,
empty) are observations too, but not faces: the per-student report counts them, the export leaves them out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from analytics.csv_file import spreadsheet_safe, write_csv
from db.queries import find_session, signal_rows
from db.schema import PROBABILITY_COLUMNS, SIGNAL_COLUMNS
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Presence

CSV_COLUMNS: tuple[str, ...] = (
    "frame",
    "ts",
    "student",
    "name",
    "x",
    "y",
    "w",
    "h",
    "emotion",
    *PROBABILITY_COLUMNS,
    *SIGNAL_COLUMNS,
)
PROBABILITY_DECIMALS = 4
ANGLE_DECIMALS = 1


class ExportError(Exception):
    """The CSV could not be written (the message names the path and why)."""


def export_csv(engine: Engine, session_name: str, out: Path) -> int:
    """Write the session's observations to `out` and return the number of rows written.

    Raises db.errors.DatabaseError for an unknown session or unreadable database, ExportError when
    `out` can't be written; in both cases nothing is written.
    """
    table = export_table(engine, find_session(engine, session_name).id)
    try:
        with out.open("w", newline="", encoding="utf-8") as stream:
            write_csv(table, stream)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return len(table)


def export_table(engine: Engine, session_id: int) -> pd.DataFrame:
    """The session's face rows as the export writes them (also the dashboard's raw-rows download), names
    made spreadsheet-safe (analytics.csv_file)."""
    rows = signal_rows(engine, session_id)
    return spreadsheet_safe(as_csv_table(rows[rows["presence"] == Presence.FACE]))


def as_csv_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The export's columns, in order, formatted as they appear in the file."""
    table = pd.DataFrame(
        {
            "frame": rows["frame"],
            # Frames of a recording can be less than a second apart: their times keep the milliseconds.
            "ts": rows["ts"].map(lambda ts: iso_utc(ts, milliseconds=True)),
            "student": rows["student"],
            "name": rows["name"].fillna(""),
            "x": rows["x"],
            "y": rows["y"],
            "w": rows["w"],
            "h": rows["h"],
            "emotion": rows["emotion"].map(lambda index: "" if pd.isna(index) else EMOTIONS[int(index)]),
        }
    )
    for column in (*PROBABILITY_COLUMNS, "eye_ratio"):
        table[column] = _decimals(rows[column], PROBABILITY_DECIMALS)
    for column in ("yaw", "pitch"):
        table[column] = _decimals(rows[column], ANGLE_DECIMALS)
    table["presence"] = rows["presence"]
    table["eyes_closed"] = rows["eyes_closed"].map(lambda closed: "" if pd.isna(closed) else str(int(closed)))
    table["landmarks_age"] = rows["landmarks_age"].map(lambda age: "" if pd.isna(age) else str(int(age)))
    return table[list(CSV_COLUMNS)]


def iso_utc(ts: pd.Timestamp | None, milliseconds: bool = False) -> str:
    """A time as every CSV writes it: ISO 8601 in UTC with a Z, to the second ('2025-03-04T09:00:00Z', rounded
    down) or to the millisecond ('2025-03-04T09:00:00.250Z'); '' for no time."""
    if ts is None or pd.isna(ts):
        return ""
    utc = pd.Timestamp(ts).tz_convert("UTC")
    fraction = f".{utc.microsecond // 1000:03d}" if milliseconds else ""
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}{fraction}Z"


def _decimals(values: pd.Series, decimals: int) -> pd.Series:
    """Fixed decimals; an empty cell for a missing value."""
    return values.map(lambda v: "" if pd.isna(v) else f"{v:.{decimals}f}")
