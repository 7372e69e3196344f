"""The read side for analytics and the dashboard: sessions, observations and frames as DataFrames.

Parameterised SQLAlchemy Core only. Timestamps come back as timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    Select,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)

from db.engine import write_transaction
from db.errors import DatabaseError, describe_url, reported_as
from db.schema import (
    PROBABILITY_COLUMNS,
    SIGNAL_COLUMNS,
    classes,
    flag_acknowledgements,
    flag_silences,
    frames,
    observations,
    sessions,
    students,
)
from vocabulary.records import Presence

BOX_COLUMNS = ("x", "y", "w", "h")
# How many session names an "unknown session" message lists.
KNOWN_SESSIONS_SHOWN = 10


class UnknownSessionError(DatabaseError):
    """No session has the asked-for name."""


class UnknownSilenceError(DatabaseError):
    """No snooze or mute of the session has the asked-for id."""


@dataclass(frozen=True)
class SessionInfo:
    id: int
    name: str
    source: str
    started_at: datetime
    ended_at: datetime | None
    teacher: str | None = None  # the owning dashboard user; None: admins only
    mean_engagement: float | None = None  # see db.schema.SessionRecord
    class_id: int | None = None  # the class (db.schema.ClassRecord) whose lesson this is; None: no --class


def list_sessions(engine: Engine) -> list[SessionInfo]:
    """Every session, newest first."""
    statement = select(sessions).order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
    with reported_as("read sessions from", engine.url), engine.connect() as connection:
        return [SessionInfo(**row._mapping) for row in connection.execute(statement)]


def find_session(engine: Engine, name: str) -> SessionInfo:
    """The session called `name`; UnknownSessionError lists the known ones otherwise."""
    statement = select(sessions).where(sessions.c.name == name)
    with reported_as("read sessions from", engine.url), engine.connect() as connection:
        row = connection.execute(statement).one_or_none()
    if row is not None:
        return SessionInfo(**row._mapping)
    raise UnknownSessionError(f"no session named {name!r} in {describe_url(engine.url)}; {_known_sessions(engine)}")


def observation_rows(
    engine: Engine, session_id: int, since: datetime | None = None, people: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per classified face per frame, ordered by frame then student (first appearance). Rows
    without an emotion (faceless tiles, attention-only capture) are left out: see signal_rows for those.

    Columns: frame, ts, student_id, student (key), name (display name or None), x, y, w, h,
    emotion (class index), then the probability columns. `since`: only rows strictly after it. `people`:
    student_rows of the session read by the caller just before (the live page needs them anyway), spared a
    second read.
    """
    columns = (*BOX_COLUMNS, "emotion", *PROBABILITY_COLUMNS)
    table, _ = _read_observations(
        engine, session_id, columns, since, observations.c.emotion.is_not(None), people=people
    )
    return table.astype({"emotion": "int64"})


def signal_rows(engine: Engine, session_id: int, since: datetime | None = None) -> pd.DataFrame:
    """Every observation row of the session, faceless tiles and rows without an emotion included, ordered by
    frame then student: the columns of observation_rows (emotion and probabilities NaN where none was
    inferred) then the signal columns (presence "face" for rows recorded before signals existed).
    `since`: only rows strictly after it."""
    columns = (*BOX_COLUMNS, "emotion", *PROBABILITY_COLUMNS, *SIGNAL_COLUMNS)
    return _with_signal_types(_read_observations(engine, session_id, columns, since)[0])


def engagement_rows(
    engine: Engine,
    session_id: int,
    negative_emotions: tuple[str, ...],
    since: datetime | None = None,
    student_ids: Collection[int] | None = None,
    rows_until: datetime | None = None,
    people: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What analytics.engagement scores: the rows, one per observation ordered by frame then student (frame,
    ts, student_id, student, name, emotion (class index, NaN where none was inferred), negative (the summed
    probability of `negative_emotions`, NaN likewise), presence, yaw, pitch, eyes_closed), and the frames
    they belong to (frame_rows), read together so that neither holds a frame the other lacks. student_ids:
    only these students' rows; rows_until: only rows up to then (for students known to have none later: the
    database then scans no later rows); every frame all the same. people: the session's student_rows when the
    caller has just read them (read here otherwise).

    Every row of a session is read for its report, and each value read costs: the probabilities are summed
    here, in the database, rather than read one by one.
    """
    negative = sum((observations.c[f"p_{emotion}"] for emotion in negative_emotions), start=literal(0.0))
    columns = ("emotion", negative.label("negative"), *(c for c in SIGNAL_COLUMNS if c != "eye_ratio"))
    only: list[ColumnElement[bool]] = [] if student_ids is None else [observations.c.student_id.in_(list(student_ids))]
    if rows_until is not None:
        only.append(observations.c.ts <= rows_until)
    table, frames_read = _read_observations(engine, session_id, columns, since, *only, people=people)
    return _with_signal_types(table.astype({"negative": "float64"})), frames_read


def student_emotions(engine: Engine, session_id: int, student_id: int) -> pd.DataFrame:
    """One student's classified faces, ordered by frame: frame, ts, emotion (class index), confidence (the
    probability the model gave that class: how sure it was)."""
    table, _ = _read_observations(
        engine,
        session_id,
        ("emotion", *PROBABILITY_COLUMNS),
        None,
        observations.c.student_id == student_id,
        observations.c.emotion.is_not(None),
    )
    confidence = table[list(PROBABILITY_COLUMNS)].astype("float64").max(axis=1)
    return table[["frame", "ts"]].assign(emotion=table["emotion"].astype("int64"), confidence=confidence)


def _with_signal_types(table: pd.DataFrame) -> pd.DataFrame:
    floats = [column for column in ("emotion", "yaw", "pitch", "eye_ratio") if column in table]
    table = table.astype(dict.fromkeys(floats, "float64") | {"eyes_closed": "boolean"})
    return table.assign(presence=table["presence"].fillna(Presence.FACE.value).astype(object))


def _read_observations(
    engine: Engine,
    session_id: int,
    columns: tuple[str | ColumnElement[Any], ...],
    since: datetime | None,
    *conditions: ColumnElement[bool],
    people: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The session's observation rows, ordered by frame then student: frame, ts, student_id, student (key),
    name, then `columns` (observation column names or labelled expressions), probabilities and boxes typed;
    and the frames they belong to (frame_rows). `since`: only rows and frames strictly after it. `people`:
    the session's student_rows when the caller has them; read here otherwise, or when they lack a row's student.

    The frames are read first and then only their rows: a frame and its rows are committed together, so a
    frame written by a running capture between the two reads is in neither. The frame's time (the same as
    the row's), the student's key and name are looked up here rather than read per row or joined in SQL,
    and rows are sorted here: each costs more in SQLite than in pandas on a session of hundreds of
    thousands of rows.
    """
    frames_read = frame_rows(engine, session_id, since)
    last_frame = int(frames_read["frame"].max()) if len(frames_read) else -1
    statement = select(
        observations.c.frame_index.label("frame"),
        observations.c.student_id,
        *(observations.c[column] if isinstance(column, str) else column for column in columns),
    ).where(observations.c.session_id == session_id, observations.c.frame_index <= last_frame, *conditions)
    if since is not None:
        statement = statement.where(observations.c.ts > since)
    table = _read_table(engine, statement, ())
    table.insert(1, "ts", table["frame"].map(frames_read.set_index("frame")["ts"]))
    if people is None or not table["student_id"].isin(people["student_id"]).all():
        people = student_rows(engine, session_id)  # a student added since the caller's read: read again
    people = people.set_index("student_id")
    table.insert(3, "student", table["student_id"].map(people["student"]))
    names = table["student_id"].map(people["name"]).astype(object)
    # pandas-stubs leave None out of `other`; pandas puts None itself into an object column, as wanted here.
    table.insert(4, "name", names.where(names.notna(), None))  # type: ignore[call-overload]
    integers = dict.fromkeys(("frame", "student_id", *(c for c in BOX_COLUMNS if c in table)), "int64")
    table = table.astype(integers | dict.fromkeys((c for c in PROBABILITY_COLUMNS if c in table), "float64"))
    return table.sort_values(["frame", "student_id"], kind="stable", ignore_index=True), frames_read


def frame_rows(engine: Engine, session_id: int, since: datetime | None = None) -> pd.DataFrame:
    """One row per analysed frame, in order: frame, ts, faces, processing_ms. `since`: strictly after it."""
    statement = (
        select(frames.c.frame_index.label("frame"), frames.c.ts, frames.c.faces, frames.c.processing_ms)
        .where(frames.c.session_id == session_id)
        .order_by(frames.c.frame_index)
    )
    if since is not None:
        statement = statement.where(frames.c.ts > since)
    return _read_frame(engine, statement, {"frame": "int64", "faces": "int64", "processing_ms": "float64"})


def frame_count(engine: Engine, session_id: int) -> int:
    """How many frames of the session were analysed, faces or not."""
    statement = select(func.count()).select_from(frames).where(frames.c.session_id == session_id)
    with reported_as("read", engine.url), engine.connect() as connection:
        return connection.execute(statement).scalar_one()


def emotion_tally(
    engine: Engine, session_id: int, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """The session's observations counted per frame time and emotion, in the database: a few rows per frame
    instead of one per face, for charts over long spans. Columns: ts, emotion (class index), observations.
    `since`: only rows strictly after it; `until`: only rows at or before it."""
    statement = (
        select(_bulk_time(observations.c.ts).label("ts"), observations.c.emotion, func.count().label("observations"))
        .where(observations.c.session_id == session_id, observations.c.emotion.is_not(None))
        .group_by(observations.c.ts, observations.c.emotion)
        .order_by(observations.c.ts, observations.c.emotion)
    )
    if since is not None:
        statement = statement.where(observations.c.ts > since)
    if until is not None:
        statement = statement.where(observations.c.ts <= until)
    return _read_frame(engine, statement, {"emotion": "int64", "observations": "int64"})


def _read_frame(engine: Engine, statement: Select[Any], dtypes: dict[str, str]) -> pd.DataFrame:
    # Typed even when empty, so callers can filter and resample without special cases.
    return _read_table(engine, statement, ("ts",)).astype(dtypes)


def _known_sessions(engine: Engine) -> str:
    names = [session.name for session in list_sessions(engine)]
    if not names:
        return "it has no sessions yet"
    shown = ", ".join(repr(name) for name in names[:KNOWN_SESSIONS_SHOWN])
    more = f" and {len(names) - KNOWN_SESSIONS_SHOWN} more" if len(names) > KNOWN_SESSIONS_SHOWN else ""
    return f"known sessions (newest first): {shown}{more}"


def latest_frame_time(engine: Engine, session_id: int) -> datetime | None:
    """When the session's newest frame was analysed (faces or not); None before its first frame.

    One index lookup, so a live view can ask every tick.
    """
    statement = select(func.max(frames.c.ts)).where(frames.c.session_id == session_id)
    with reported_as("read", engine.url), engine.connect() as connection:
        latest: datetime | None = connection.scalar(statement)
        return latest


def session_version(engine: Engine, session_id: int) -> tuple[Any, ...]:
    """A value that changes whenever the session's report could: a frame added, a student renamed, merged
    or added. Two index lookups and the students' keys and names, so it is cheap to ask before using a kept
    report; those are read as plain tuples (every poll of every browser asks, and a table costs more)."""
    statement = select(func.count(), func.max(frames.c.ts)).where(frames.c.session_id == session_id)
    people = (
        select(students.c.id, students.c.key, students.c.display_name)
        .where(students.c.session_id == session_id)
        .order_by(students.c.id)
    )
    with reported_as("read", engine.url), engine.connect() as connection:
        frame_count, latest = connection.execute(statement).one()
        return frame_count, latest, tuple(tuple(row) for row in connection.execute(people))


def student_rows(engine: Engine, session_id: int) -> pd.DataFrame:
    """One row per student of the session, in order of first appearance:
    student_id, student (key), name (display name or None), first_seen, last_seen."""
    statement = (
        select(
            students.c.id.label("student_id"),
            students.c.key.label("student"),
            students.c.display_name.label("name"),
            students.c.first_seen,
            students.c.last_seen,
        )
        .where(students.c.session_id == session_id)
        .order_by(students.c.id)
    )
    table = _read_table(engine, statement, ("first_seen", "last_seen"))
    return table.astype({"student_id": "int64"})


def session_summaries(engine: Engine) -> pd.DataFrame:
    """Every session with its counts, newest first: id, name, source, started_at, ended_at, teacher,
    mean_engagement, first_frame_at, last_frame_at (both None before the first frame), frames, students,
    observations, class_name (None without --class)."""
    frame_counts = (
        select(
            frames.c.session_id,
            func.count().label("frames"),
            func.min(frames.c.ts).label("first_frame_at"),
            func.max(frames.c.ts).label("last_frame_at"),
        )
        .group_by(frames.c.session_id)
        .subquery()
    )
    student_counts = (
        select(students.c.session_id, func.count().label("students")).group_by(students.c.session_id).subquery()
    )
    observation_counts = (
        select(observations.c.session_id, func.count().label("observations"))
        .group_by(observations.c.session_id)
        .subquery()
    )
    statement = (
        select(
            sessions,
            frame_counts.c.first_frame_at,
            frame_counts.c.last_frame_at,
            func.coalesce(frame_counts.c.frames, 0).label("frames"),
            func.coalesce(student_counts.c.students, 0).label("students"),
            func.coalesce(observation_counts.c.observations, 0).label("observations"),
            classes.c.name.label("class_name"),
        )
        .outerjoin(classes, classes.c.id == sessions.c.class_id)
        .outerjoin(frame_counts, frame_counts.c.session_id == sessions.c.id)
        .outerjoin(student_counts, student_counts.c.session_id == sessions.c.id)
        .outerjoin(observation_counts, observation_counts.c.session_id == sessions.c.id)
        .order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
    )
    table = _read_table(engine, statement, ("started_at", "ended_at", "first_frame_at", "last_frame_at"))
    return table.astype({"id": "int64", "frames": "int64", "students": "int64", "observations": "int64"})


def store_mean_engagement(engine: Engine, session_id: int, value: float | None) -> None:
    """Keep the ended session's average engagement for the sessions list; a session being captured again
    meanwhile (no end time) keeps None, as its next frames will change it."""
    statement = (
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.ended_at.is_not(None))
        .values(mean_engagement=value)
    )
    with reported_as("write to", engine.url), write_transaction(engine) as connection:
        connection.execute(statement)


def acknowledge_flag(engine: Engine, session_id: int, student: str, rule: str, start: datetime, by: str) -> None:
    """Record that user `by` acknowledged the flag (student key, rule, start); a second time changes nothing."""
    already = exists().where(
        flag_acknowledgements.c.session_id == session_id,
        flag_acknowledgements.c.student == student,
        flag_acknowledgements.c.rule == rule,
        flag_acknowledgements.c.flag_start == start,
    )
    with reported_as("write to", engine.url), write_transaction(engine) as connection:
        if not connection.scalar(select(already)):
            connection.execute(
                insert(flag_acknowledgements).values(
                    session_id=session_id,
                    student=student,
                    rule=rule,
                    flag_start=start,
                    acknowledged_by=by,
                    acknowledged_at=datetime.now(UTC),
                )
            )


def acknowledged_flags(engine: Engine, session_id: int) -> set[tuple[str, str, datetime]]:
    """The session's acknowledged flags, as (student key, rule, start) with the start in UTC."""
    statement = select(
        flag_acknowledgements.c.student, flag_acknowledgements.c.rule, flag_acknowledgements.c.flag_start
    ).where(flag_acknowledgements.c.session_id == session_id)
    with reported_as("read", engine.url), engine.connect() as connection:
        return {(row.student, row.rule, row.flag_start) for row in connection.execute(statement)}


def _bulk_time(column: ColumnElement[datetime]) -> ColumnElement[datetime]:
    """A timestamp column read with the driver's own conversion, for queries that return many rows.

    db.schema's UtcDateTime converts each value in Python, which costs more than the query itself on a long
    session; _read_table makes the whole column UTC in one vectorised step instead (SQLite's values, stored
    in UTC, come back naive).
    """
    return type_coerce(column, DateTime(timezone=True))


def _read_table(engine: Engine, statement: Select[Any], time_columns: tuple[str, ...]) -> pd.DataFrame:
    with reported_as("read", engine.url), engine.connect() as connection:
        result = connection.execute(statement)
        # The driver's plain tuples: building SQLAlchemy Row objects cost more than the query on a long
        # session. Times are converted below, column by column; the other types are the driver's own.
        table = pd.DataFrame.from_records(result.cursor.fetchall(), columns=list(result.keys()))
        result.close()
    for column in time_columns:
        # Named, not inferred: guessing the format cost more than the read itself on a live page's small reads.
        table[column] = pd.to_datetime(table[column], utc=True, format="ISO8601")
    return table


@dataclass(frozen=True)
class FlagSilence:
    """A snooze or mute of flags (db.schema.FlagSilenceRecord) that has not been lifted."""

    id: int
    student: str | None  # students.key; None: every student
    rule: str | None  # None: every rule
    until: datetime | None  # None: a mute, for the rest of the session
    created_by: str
    created_at: datetime

    def covers(self, student: str, rule: str, at: datetime) -> bool:
        """Whether it silences `rule` for `student` at `at` (a time of the session's frames)."""
        return self.student in (None, student) and self.rule in (None, rule) and (self.until is None or at < self.until)


def silence_flags(
    engine: Engine,
    session_id: int,
    by: str,
    student: str | None = None,
    rule: str | None = None,
    seconds: float | None = None,
) -> FlagSilence:
    """Record that user `by` silenced `rule` (None: every rule) for `student` (None: every student): for
    `seconds` of the session's time from its latest frame (a snooze; from now before its first frame), or
    for the rest of the session when None (a mute)."""
    with reported_as("write to", engine.url), write_transaction(engine) as connection:
        now = datetime.now(UTC)
        until: datetime | None = None
        if seconds is not None:
            latest: datetime | None = connection.scalar(
                select(func.max(frames.c.ts)).where(frames.c.session_id == session_id)
            )
            until = (now if latest is None else latest) + timedelta(seconds=seconds)
        silence_id = connection.execute(
            insert(flag_silences)
            .values(session_id=session_id, student=student, rule=rule, until=until, created_by=by, created_at=now)
            .returning(flag_silences.c.id)
        ).scalar_one()
    return FlagSilence(id=silence_id, student=student, rule=rule, until=until, created_by=by, created_at=now)


def lift_silence(engine: Engine, session_id: int, silence_id: int, by: str) -> None:
    """Undo a snooze or mute of the session (user `by`); lifting it again changes nothing.
    UnknownSilenceError when the session has no such silence."""
    with reported_as("write to", engine.url), write_transaction(engine) as connection:
        found = connection.execute(
            select(flag_silences.c.lifted_at).where(
                flag_silences.c.id == silence_id, flag_silences.c.session_id == session_id
            )
        ).one_or_none()
        if found is None:
            raise UnknownSilenceError(f"session {session_id} has no snooze or mute {silence_id}")
        if found.lifted_at is None:
            connection.execute(
                update(flag_silences)
                .where(flag_silences.c.id == silence_id)
                .values(lifted_by=by, lifted_at=datetime.now(UTC))
            )


def flag_silences_of(engine: Engine, session_id: int) -> list[FlagSilence]:
    """The session's snoozes and mutes not lifted, oldest first (expired snoozes included: FlagSilence.covers
    tells)."""
    statement = (
        select(
            flag_silences.c.id,
            flag_silences.c.student,
            flag_silences.c.rule,
            flag_silences.c.until,
            flag_silences.c.created_by,
            flag_silences.c.created_at,
        )
        .where(flag_silences.c.session_id == session_id, flag_silences.c.lifted_at.is_(None))
        .order_by(flag_silences.c.id)
    )
    with reported_as("read", engine.url), engine.connect() as connection:
        return [FlagSilence(**row._mapping) for row in connection.execute(statement)]
