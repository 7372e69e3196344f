"""The school view's reads (analytics.school): the sessions running now, their classes' lines from the
roll-ups, and per-session totals for trends.

Each is shaped so that its cost follows what the page shows, not the size of the school's history, and none
reads an observation row: the running sessions' newest frames come from one backwards step of the frames'
(session_id, ts) index each, their lines are scored in the database from the roll-ups (db.rollups; a row per
bin and class comes back), and the totals are summed in the database from the roll-ups (a row per student per
10 s bin, a tenth of the raw rows at one frame a second), one row per session, for the sessions asked for only.
Sessions recorded before the roll-ups (migration 0012) count no rows there until db.rollups.rebuild fills theirs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Float, and_, cast, func, literal, or_, select, tuple_

from config import Weights
from db.errors import reported_as
from db.rollups import bin_start
from db.schema import classes, frames, session_rollups, sessions, students
from vocabulary.records import Presence


@dataclass(frozen=True)
class RunningSession:
    """A session with no end recorded and at least one frame."""

    id: int
    name: str
    teacher: str | None
    started_at: datetime
    latest_frame: datetime
    class_name: str | None = None  # its class (db.classes); None: recorded without one


def running_sessions(engine: Engine, since: datetime) -> list[RunningSession]:
    """Every session without an end time whose newest frame is later than `since`, newest frame first (a capture
    that was killed leaves its session without an end)."""
    latest = select(func.max(frames.c.ts)).where(frames.c.session_id == sessions.c.id).scalar_subquery().label("latest")
    statement = (
        select(
            sessions.c.id,
            sessions.c.name,
            sessions.c.teacher,
            sessions.c.started_at,
            latest,
            classes.c.name.label("of"),
        )
        .select_from(sessions.outerjoin(classes, classes.c.id == sessions.c.class_id))
        .where(sessions.c.ended_at.is_(None))
    )
    with reported_as("read sessions from", engine.url), engine.connect() as connection:
        rows = connection.execute(statement).all()
    found = [
        RunningSession(row.id, row.name, row.teacher, row.started_at, _utc(row.latest), row.of)
        for row in rows
        if row.latest is not None and _utc(row.latest) > since
    ]
    return sorted(found, key=lambda session: (session.latest_frame, session.id), reverse=True)


def sessions_between(engine: Engine, since: datetime, until: datetime) -> pd.DataFrame:
    """The sessions started in [since, until): id, name, teacher, class (its class's name; None without one),
    started_at, ended_at, mean_engagement."""
    statement = (
        select(
            sessions.c.id,
            sessions.c.name,
            sessions.c.teacher,
            classes.c.name.label("class"),
            sessions.c.started_at,
            sessions.c.ended_at,
            sessions.c.mean_engagement,
        )
        .select_from(sessions.outerjoin(classes, classes.c.id == sessions.c.class_id))
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
    or the camera-off placeholder), the rows' counts summed from the roll-ups. Sessions with no frame have
    zeros."""
    wanted = list(session_ids)
    columns = ["session_id", "frames", "students", "rows", "face_rows", "camera_off_rows"]
    if not wanted:
        return pd.DataFrame(columns=columns, dtype="int64")
    rollup = session_rollups.c
    counted = (
        select(
            rollup.session_id,
            func.sum(rollup.observations).label("rows"),
            func.sum(rollup.faces).label("face_rows"),
            func.sum(rollup.camera_off).label("camera_off_rows"),
        )
        .where(rollup.session_id.in_(wanted))
        .group_by(rollup.session_id)
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


def class_lines(engine: Engine, since: Mapping[int, datetime], weights: Weights) -> pd.DataFrame:
    """The class engagement per roll-up bin of each session of `since` from its own time there on, scored in the
    database from the roll-ups as analytics.engagement scores a bin (with db.rollups' differences): session_id,
    bin, students (in the gallery), present, attentive (means of the students' shares), score (mean of the
    students' scores)."""
    columns = ["session_id", "bin", "students", "present", "attentive", "score"]
    if not since:
        return pd.DataFrame(columns=columns)
    rollup = session_rollups.c
    rows = cast(rollup.observations, Float)
    statement = (
        select(
            rollup.session_id,
            rollup.bin_start.label("bin"),
            func.count().label("students"),
            func.avg(rollup.faces / rows).label("present"),
            func.avg(rollup.attentive / rows).label("attentive"),
            func.avg(_score_sum(weights) / rows).label("score"),
        )
        .where(or_(*(and_(rollup.session_id == session, rollup.bin_start >= at) for session, at in since.items())))
        .group_by(rollup.session_id, rollup.bin_start)
        .order_by(rollup.session_id, rollup.bin_start)
    )
    with reported_as("read", engine.url), engine.connect() as connection:
        table = pd.DataFrame(connection.execute(statement).all(), columns=columns)
    table["bin"] = pd.to_datetime(table["bin"], utc=True)
    return table.astype({"session_id": "int64", "students": "int64"} | dict.fromkeys(columns[3:], "float64"))


def _score_sum(weights: Weights) -> ColumnElement[float]:
    """A roll-up row's summed frame scores (analytics.engagement._score): a row with an emotion is scored over
    every weight, one without over all but the expression's, so the two kinds are summed apart."""
    rollup = session_rollups.c
    base = weights.present + weights.attentive + weights.eyes_open
    whole = base + weights.expression
    attention = [(weights.present, "faces"), (weights.attentive, "attentive"), (weights.eyes_open, "eyes_open")]
    without_emotion = sum(
        (literal(w) * (rollup[name] - rollup[f"emotion_{name}"]) for w, name in attention), start=literal(0.0)
    )
    with_emotion = sum((literal(w) * rollup[f"emotion_{name}"] for w, name in attention), start=literal(0.0))
    with_emotion = with_emotion + literal(weights.expression) * (rollup.emotions - rollup.negative)
    # A zero total scores 0, as in analytics.engagement (the weights are never all zero).
    parts = [literal(1 / total) * part for total, part in ((base, without_emotion), (whole, with_emotion)) if total]
    return sum(parts[1:], start=parts[0])


def latest_counts(engine: Engine, latest_frames: dict[int, datetime]) -> dict[int, tuple[int, int]]:
    """Per session of `latest_frames` (its newest frame's time): the students in the gallery in that frame and
    those of them whose face showed, from the roll-ups of its bin (the rows it was the last frame of)."""
    if not latest_frames:
        return {}
    rollup = session_rollups.c
    bins = [(session, bin_start(at)) for session, at in latest_frames.items()]
    statement = select(rollup.session_id, rollup.last_frame, rollup.last_presence).where(
        tuple_(rollup.session_id, rollup.bin_start).in_(bins)
    )
    with reported_as("read", engine.url), engine.connect() as connection:
        table = pd.DataFrame(connection.execute(statement).all(), columns=["session_id", "frame", "presence"])
    newest = table.groupby("session_id")["frame"].transform("max")
    last = table[table["frame"] == newest]
    faces = (last["presence"] == Presence.FACE.value).groupby(last["session_id"]).agg(["size", "sum"])
    return {
        int(session): (int(size), int(face))
        for session, size, face in zip(faces.index, faces["size"], faces["sum"], strict=True)
    }
