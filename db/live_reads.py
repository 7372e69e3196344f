"""Reads the live page needs beyond db.queries': how sure the emotion model was, counted in the database."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, case, func, select

from db.queries import _bulk_time, _read_table
from db.schema import PROBABILITY_COLUMNS, observations


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
