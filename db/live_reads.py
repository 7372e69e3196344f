"""Reads the live page needs beyond db.queries': the rows of the last few seconds, lean, and how sure the emotion
model was, counted in the database."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, case, func, select

from db.queries import _bulk_time, _read_table, student_rows
from db.schema import PROBABILITY_COLUMNS, observations


def recent_emotions(
    engine: Engine, session_id: int, since: datetime, until: datetime | None, people: pd.DataFrame
) -> pd.DataFrame:
    """The session's classified faces after `since` and up to `until` (None: no bound), ordered by time then
    student: ts, student (key), emotion (class index), then the probability columns. `people`: the session's
    db.queries.student_rows, read by the caller (read again here when a row's student is not among them).

    What the live page reads at every refresh, a few seconds of rows: one statement on the (session, ts) index,
    the time read per row as the frame's (a frame's rows are committed with it, so every row up to the latest
    frame is there), without observation_rows' frame table, names and boxes, which cost more than the rows.
    """
    statement = (
        select(
            _bulk_time(observations.c.ts).label("ts"),
            observations.c.student_id,
            observations.c.emotion,
            *(observations.c[column] for column in PROBABILITY_COLUMNS),
        )
        .where(observations.c.session_id == session_id, observations.c.ts > since, observations.c.emotion.is_not(None))
        .order_by(observations.c.ts, observations.c.student_id)
    )
    if until is not None:
        statement = statement.where(observations.c.ts <= until)
    table = _read_table(engine, statement, ("ts",))
    if not table["student_id"].isin(people["student_id"]).all():
        people = student_rows(engine, session_id)  # a student added since the caller's read
    keys = table["student_id"].map(people.set_index("student_id")["student"])
    typed = {"emotion": "int64", **dict.fromkeys(PROBABILITY_COLUMNS, "float64")}
    return (
        table.drop(columns="student_id")
        .assign(student=keys.astype(object))
        .astype(typed)[["ts", "student", "emotion", *PROBABILITY_COLUMNS]]
    )


def unsure_tally(
    engine: Engine, session_id: int, below: float, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """The session's faces whose emotion was given a probability below `below` (the probability of the emotion
    each was counted as, its `emotion` column), counted per frame time in the database as
    db.queries.emotion_tally counts them all. Columns: ts, observations. `since`: only rows strictly after
    it; `until`: only rows at or before it."""
    counted = case(
        *((observations.c.emotion == index, observations.c[column]) for index, column in enumerate(PROBABILITY_COLUMNS))
    )
    statement = (
        select(_bulk_time(observations.c.ts).label("ts"), func.count().label("observations"))
        .where(observations.c.session_id == session_id, observations.c.emotion.is_not(None), counted < below)
        .group_by(observations.c.ts)
        .order_by(observations.c.ts)
    )
    if since is not None:
        statement = statement.where(observations.c.ts > since)
    if until is not None:
        statement = statement.where(observations.c.ts <= until)
    return _read_table(engine, statement, ("ts",)).astype({"observations": "int64"})
