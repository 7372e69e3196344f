"""Writes one session's observations as CSV: one row per detected face, ordered by frame then student."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from db.queries import find_session, observation_rows
from db.schema import PROBABILITY_COLUMNS
from model.emotions import EMOTIONS

CSV_COLUMNS: tuple[str, ...] = ("frame", "ts", "student", "name", "x", "y", "w", "h", "emotion", *PROBABILITY_COLUMNS)
PROBABILITY_DECIMALS = 4


class ExportError(Exception):
    """The CSV could not be written (the message names the path and why)."""


def export_csv(engine: Engine, session_name: str, out: Path) -> int:
    """Write the session's observations to `out` and return the number of rows written.

    Raises db.errors.DatabaseError for an unknown session or unreadable database, ExportError when
    `out` can't be written; in both cases nothing is written.
    """
    session = find_session(engine, session_name)
    table = as_csv_table(observation_rows(engine, session.id))
    try:
        with out.open("w", newline="", encoding="utf-8") as stream:
            table.to_csv(stream, index=False)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return len(table)


def as_csv_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The export's columns, in order, formatted as they appear in the file."""
    table = pd.DataFrame(
        {
            "frame": rows["frame"],
            "ts": rows["ts"].map(lambda ts: ts.isoformat()),
            "student": rows["student"],
            "name": rows["name"].fillna(""),
            "x": rows["x"],
            "y": rows["y"],
            "w": rows["w"],
            "h": rows["h"],
            "emotion": rows["emotion"].map(lambda index: EMOTIONS[index]),
        }
    )
    for column in PROBABILITY_COLUMNS:
        table[column] = rows[column].map(lambda p: f"{p:.{PROBABILITY_DECIMALS}f}")
    return table[list(CSV_COLUMNS)]
