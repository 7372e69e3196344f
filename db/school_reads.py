"""The school view's reads (analytics.school): the sessions running now, and per-session totals for trends.

Each is shaped so that its cost follows what the page shows, not the size of the school's history: the
running sessions' newest frames come from one backwards step of the (session_id, ts) index each, and the
totals are counted in the database, one row per session, for the sessions asked for only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, case, func, or_, select

from db.errors import reported_as
from db.schema import frames, observations, sessions, students
from vocabulary.records import Presence


@dataclass(frozen=True)
class RunningSession:
    """A session with no end recorded and at least one frame."""

    id: int
    name: str
    teacher: str | None
    started_at: datetime
    latest_frame: datetime


def running_sessions(engine: Engine, since: datetime) -> list[RunningSession]:
    """Every session without an end time whose newest frame is later than `since`, newest frame first (a capture
    that was killed leaves its session without an end)."""
    latest = select(func.max(frames.c.ts)).where(frames.c.session_id == sessions.c.id).scalar_subquery().label("latest")
    statement = select(sessions.c.id, sessions.c.name, sessions.c.teacher, sessions.c.started_at, latest).where(
        sessions.c.ended_at.is_(None)
    )
    with reported_as("read sessions from", engine.url), engine.connect() as connection:
        rows = connection.execute(statement).all()
    found = [
        RunningSession(row.id, row.name, row.teacher, row.started_at, _utc(row.latest))
        for row in rows
        if row.latest is not None and _utc(row.latest) > since
    ]
    return sorted(found, key=lambda session: (session.latest_frame, session.id), reverse=True)


def sessions_between(engine: Engine, since: datetime, until: datetime) -> pd.DataFrame:
    """The sessions started in [since, until): id, name, teacher, started_at, ended_at, mean_engagement."""
    statement = (
        select(
            sessions.c.id,
            sessions.c.name,
            sessions.c.teacher,
            sessions.c.started_at,
            sessions.c.ended_at,
            sessions.c.mean_engagement,
        )
        .where(sessions.c.started_at >= since, sessions.c.started_at < until)
        .order_by(sessions.c.started_at, sessions.c.id)
    )
    with reported_as("read sessions from", engine.url), engine.connect() as connection:
        table = pd.DataFrame(connection.execute(statement).all(), columns=list(statement.selected_columns.keys()))
    for column in ("started_at", "ended_at"):
        table[column] = pd.to_datetime(table[column], utc=True)
    return table.astype({"id": "int64", "mean_engagement": "float64"})


def session_totals(engine: Engine, session_ids: Collection[int]) -> pd.DataFrame:
    """Per session of `session_ids`, counted in the database: session_id, frames, students, rows (observations:
    one per student in the gallery per frame), face_rows and camera_off_rows (rows whose tile showed a face,
    or the camera-off placeholder). Sessions with no frame have zeros."""
    wanted = list(session_ids)
    columns = ["session_id", "frames", "students", "rows", "face_rows", "camera_off_rows"]
    if not wanted:
        return pd.DataFrame(columns=columns, dtype="int64")
    face = observations.c.presence == Presence.FACE.value
    counted = (
        select(
            observations.c.session_id,
            func.count().label("rows"),
            # Rows stored before the signals existed have no presence: they are faces (db.queries).
            func.sum(case((or_(face, observations.c.presence.is_(None)), 1), else_=0)).label("face_rows"),
            func.sum(case((observations.c.presence == Presence.CAMERA_OFF.value, 1), else_=0)).label("camera_off_rows"),
        )
        .where(observations.c.session_id.in_(wanted))
        .group_by(observations.c.session_id)
    )
    frame_counts = (
        select(frames.c.session_id, func.count().label("frames"))
        .where(frames.c.session_id.in_(wanted))
        .group_by(frames.c.session_id)
    )
    student_counts = (
        select(students.c.session_id, func.count().label("students"))
        .where(students.c.session_id.in_(wanted))
        .group_by(students.c.session_id)
    )
    with reported_as("read", engine.url), engine.connect() as connection:
        parts: list[pd.DataFrame | pd.Series] = [
            pd.DataFrame(connection.execute(statement).all(), columns=list(statement.selected_columns.keys()))
            .astype({"session_id": "int64"})
            .set_index("session_id")
            for statement in (frame_counts, student_counts, counted)
        ]
    table = pd.DataFrame(index=pd.Index(wanted, name="session_id")).join(parts)
    return table.fillna(0).astype("int64").reset_index()[columns]


def _utc(value: datetime) -> datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime() if value.tzinfo is None else value
