"""The tables, as SQLAlchemy declarative models. No column ever holds an image.

Timestamps are stored timezone-aware in UTC (`UtcDateTime`); the observations' probability columns
are named after `vocabulary.emotions.EMOTIONS` so the schema follows the model's class list.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from vocabulary.emotions import EMOTIONS
from vocabulary.records import FaceSignals

PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"p_{emotion}" for emotion in EMOTIONS)
TILE_COLUMNS: tuple[str, ...] = ("tile_x", "tile_y", "tile_w", "tile_h")
# The attention signals of capture/signals.py, one column each, named and ordered as FaceSignals' fields so that
# a new signal is one field there (and a migration), not a second list to keep in step.
SIGNAL_COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(FaceSignals))

# Named constraints let Alembic's SQLite batch mode find and alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored and returned in UTC.

    SQLite keeps no zone, so values are normalised to UTC on the way in (which also keeps its text
    timestamps sortable) and given the UTC zone back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        # The impl (DateTime) has already turned the driver's value into a datetime.
        stored: datetime | None = value
        if stored is None:
            return None
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}


# The id of a table that grows by a row per frame (or per student per frame): 64-bit on PostgreSQL, where a
# school's ~90 M observations a day would run a 32-bit id out in weeks (ids are not given back by a purge).
# SQLite's INTEGER is 64-bit already, and only a column typed exactly INTEGER is its rowid alias.
BigId = BigInteger().with_variant(Integer, "sqlite")


def _session_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))


class SessionRecord(Base):
    """One recorded class: a named run of the capture over one source."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # The dashboard user (a teacher) whose class this is; None: only admins see the session.
    teacher: Mapped[str | None] = mapped_column(String(100))
    # The class engagement score averaged over the session (analytics.report.mean_engagement), stored when a
    # report of the ended session is computed; None until then and again once the session changes.
    mean_engagement: Mapped[float | None]
    # The class (db.classes) whose lesson this is; None: a session recorded without --class. A forgotten class
    # leaves its sessions in place, classless.
    class_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id", ondelete="SET NULL"), index=True)


class ClassRecord(Base):
    """A class a teacher teaches over a term (`capture --class NAME`): its sessions share one roster of students."""

    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("teacher", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The dashboard user (a teacher) whose class this is, as sessions.teacher; None: an admins' class.
    teacher: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]


class ClassStudentRecord(Base):
    """One student of a class's roster: the same person across the class's sessions (students.class_student_id)."""

    __tablename__ = "class_students"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ClassStudentAliasRecord(Base):
    """A name as OCR reads it (db.classes.normalised) that means one roster student: their own name, a reading a
    teacher's rename corrected, a name a merge dropped. One roster student per reading within a class."""

    __tablename__ = "class_student_aliases"

    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(200), primary_key=True)
    class_student_id: Mapped[int] = mapped_column(ForeignKey("class_students.id", ondelete="CASCADE"), index=True)


class SessionWriterRecord(Base):
    """The lease of the capture writing a session now (db.lease): a second capture, a purge and a merge refuse
    the session while it holds. No row: nobody writes the session."""

    __tablename__ = "session_writers"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    writer: Mapped[str] = mapped_column(String(300))  # "host:pid:token"
    until: Mapped[datetime]


class StudentRecord(Base):
    """One face identity within a session, keyed by gallery tile or tracker id."""

    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("session_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = _session_fk()
    key: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))
    tile_x: Mapped[int | None]
    tile_y: Mapped[int | None]
    tile_w: Mapped[int | None]
    tile_h: Mapped[int | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    # The roster student (of the session's class) this student is; None: unnamed yet, or no class.
    class_student_id: Mapped[int | None] = mapped_column(
        ForeignKey("class_students.id", ondelete="SET NULL"), index=True
    )


class FrameRecord(Base):
    """One analysed frame (named to keep it apart from `vocabulary.records.Frame`, which holds the image)."""

    __tablename__ = "frames"
    __table_args__ = (
        UniqueConstraint("session_id", "frame_index"),
        Index(None, "session_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = _session_fk()
    frame_index: Mapped[int]
    ts: Mapped[datetime]
    faces: Mapped[int]
    processing_ms: Mapped[float] = mapped_column(Float)


# One float column per emotion class, built from EMOTIONS rather than typed out. NULL when no emotion was
# inferred: a faceless tile, or a session captured in attention-only mode.
class _Probabilities:
    pass


for _name in PROBABILITY_COLUMNS:
    setattr(_Probabilities, _name, mapped_column(Float, nullable=True))


class ObservationRecord(_Probabilities, Base):
    """One student in one frame: the face box (the tile when no face shows), the class probabilities and
    the winning class index, and the attention signals. Rows from before the signals existed hold NULLs there."""

    __tablename__ = "observations"
    __table_args__ = (Index(None, "session_id", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = _session_fk()
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    frame_index: Mapped[int]
    ts: Mapped[datetime]
    x: Mapped[int]
    y: Mapped[int]
    w: Mapped[int]
    h: Mapped[int]
    emotion: Mapped[int | None] = mapped_column(SmallInteger)
    presence: Mapped[str | None] = mapped_column(String(12))  # vocabulary.records.Presence
    yaw: Mapped[float | None] = mapped_column(Float)  # degrees, > 0 turned towards the image's right
    pitch: Mapped[float | None] = mapped_column(Float)  # degrees, > 0 up
    eye_ratio: Mapped[float | None] = mapped_column(Float)  # eye aspect ratio of the eye nearer the camera
    eyes_closed: Mapped[bool | None] = mapped_column(Boolean)
    # Frames since eye_ratio, eyes_closed and the pose's mesh correction were measured (0: this frame; the
    # landmark models visit a few faces per frame); NULL without landmarks, and for rows from before 0005.
    landmarks_age: Mapped[int | None] = mapped_column(Integer)


class UserRecord(Base):
    """A dashboard login: a teacher (sees the sessions they own) or an admin (sees everything)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, never the password itself
    created_at: Mapped[datetime]
    # When the user accepted the purpose/consent notice; None until they have.
    notice_accepted_at: Mapped[datetime | None]


class FlagAcknowledgementRecord(Base):
    """A teacher saw a flag (analytics.flags.Flag) on the live page; a flag is one student, rule and start."""

    __tablename__ = "flag_acknowledgements"
    __table_args__ = (UniqueConstraint("session_id", "student", "rule", "flag_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = _session_fk()
    student: Mapped[str] = mapped_column(String(64))  # students.key
    rule: Mapped[str] = mapped_column(String(20))
    flag_start: Mapped[datetime]
    acknowledged_by: Mapped[str] = mapped_column(String(100))  # the dashboard user
    acknowledged_at: Mapped[datetime]


class FlagSilenceRecord(Base):
    """A teacher's "not now" for flags on the live page: a snooze (until a time) or a mute (for the rest of the
    session), for one student or all, one rule or all, until lifted."""

    __tablename__ = "flag_silences"
    __table_args__ = (Index(None, "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = _session_fk()
    student: Mapped[str | None] = mapped_column(String(64))  # students.key; NULL: every student
    rule: Mapped[str | None] = mapped_column(String(20))  # analytics.flags rule; NULL: every rule
    # Flags raised before this time of the session's frames are silenced; NULL: all of them (a mute).
    until: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))  # the dashboard user
    created_at: Mapped[datetime]
    lifted_by: Mapped[str | None] = mapped_column(String(100))  # who undid it; NULL while it holds
    lifted_at: Mapped[datetime | None]


class StudentMergeRecord(Base):
    """A merge of two students (db.students.merge_students), kept so that it can be undone exactly: the
    dropped student as they were (same id, key, name, tile, first and last seen) and the kept student's name
    and times before the merge. Removed when undone; which observations moved is in student_merge_rows."""

    __tablename__ = "student_merges"
    __table_args__ = (Index(None, "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = _session_fk()
    # By key, not by id: a kept student merged away later and brought back by an undo keeps their key.
    kept_key: Mapped[str] = mapped_column(String(64))
    kept_name: Mapped[str | None] = mapped_column(String(200))  # the kept student's display name before
    kept_first_seen: Mapped[datetime]
    kept_last_seen: Mapped[datetime]
    dropped_id: Mapped[int]  # students.id of the dropped student, given back to them by an undo
    dropped_key: Mapped[str] = mapped_column(String(64))
    dropped_name: Mapped[str | None] = mapped_column(String(200))
    dropped_tile_x: Mapped[int | None]
    dropped_tile_y: Mapped[int | None]
    dropped_tile_w: Mapped[int | None]
    dropped_tile_h: Mapped[int | None]
    dropped_first_seen: Mapped[datetime]
    dropped_last_seen: Mapped[datetime]
    moved: Mapped[int]  # observations moved
    merged_by: Mapped[str | None] = mapped_column(String(100))  # the dashboard user; NULL from the command line
    # The roster (db.classes) before the merge, for its undo: both students' roster students, and the alias the
    # merge pointed at the kept one's (the dropped name, normalised) with the roster student it meant before
    # (NULL: the merge added it). NULL throughout for a session without a class.
    kept_class_student_id: Mapped[int | None] = mapped_column(ForeignKey("class_students.id", ondelete="SET NULL"))
    dropped_class_student_id: Mapped[int | None] = mapped_column(ForeignKey("class_students.id", ondelete="SET NULL"))
    roster_alias: Mapped[str | None] = mapped_column(String(200))
    roster_alias_was: Mapped[int | None] = mapped_column(ForeignKey("class_students.id", ondelete="SET NULL"))
    merged_at: Mapped[datetime]


class StudentMergeRowRecord(Base):
    """One observation a merge moved from the dropped student to the kept one. No foreign key to observations:
    a purge deletes a session's observations in bulk, and a key checked per deleted row would slow it; the
    merge's own row goes with its session."""

    __tablename__ = "student_merge_rows"

    merge_id: Mapped[int] = mapped_column(ForeignKey("student_merges.id", ondelete="CASCADE"), primary_key=True)
    observation_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class SessionRollupRecord(Base):
    """One student's frames of one ROLLUP_SECONDS bin of a session, summed as the frames are written (db.rollups),
    so that a school view or a live page reads a row per student per bin instead of one per frame.

    Counts of the student's observation rows in the bin; attentive and eyes_open as analytics.engagement counts
    them (a face within the yaw/pitch limits; a face with its eyes not closed), with the limits in force when
    the row was written; negative: the summed probability of the negative emotions over the rows with an
    emotion. The emotion_* counts are those of the rows with an emotion, whose score has an expression part.
    No foreign key to students: a merge (db.students) removes the dropped student, and their bins must not go
    with them unseen; the session's purge removes the rows (db.purge)."""

    __tablename__ = "session_rollups"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    bin_start: Mapped[datetime] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    observations: Mapped[int]
    faces: Mapped[int]
    camera_off: Mapped[int]
    empty: Mapped[int]
    attentive: Mapped[int]
    eyes_open: Mapped[int]
    emotions: Mapped[int]
    emotion_faces: Mapped[int]
    emotion_attentive: Mapped[int]
    emotion_eyes_open: Mapped[int]
    negative: Mapped[float] = mapped_column(Float)
    # The newest frame counted in the row and the student's presence in it (vocabulary.records.Presence).
    last_frame: Mapped[int]
    last_presence: Mapped[str] = mapped_column(String(12))


# The Core tables, for the bulk inserts and queries (declarative types them as plain FromClause).
sessions = cast(Table, SessionRecord.__table__)
students = cast(Table, StudentRecord.__table__)
frames = cast(Table, FrameRecord.__table__)
observations = cast(Table, ObservationRecord.__table__)
users = cast(Table, UserRecord.__table__)
flag_acknowledgements = cast(Table, FlagAcknowledgementRecord.__table__)
session_writers = cast(Table, SessionWriterRecord.__table__)
flag_silences = cast(Table, FlagSilenceRecord.__table__)
student_merges = cast(Table, StudentMergeRecord.__table__)
student_merge_rows = cast(Table, StudentMergeRowRecord.__table__)
session_rollups = cast(Table, SessionRollupRecord.__table__)
classes = cast(Table, ClassRecord.__table__)
class_students = cast(Table, ClassStudentRecord.__table__)
class_student_aliases = cast(Table, ClassStudentAliasRecord.__table__)


def string_length(column: Column[Any]) -> int:
    """A String column's declared length, for checks that must hold on SQLite too (it stores longer text)."""
    column_type = column.type
    if not isinstance(column_type, String) or column_type.length is None:
        raise TypeError(f"{column} is not a String column with a length")
    return column_type.length


class CaptureTokenRecord(Base):
    """A teacher's capture token (db.tokens): captures send frames to the school's server with it instead of
    holding the database's password. Only the token's SHA-256 is kept; a removed user's tokens go with them."""

    __tablename__ = "capture_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]  # None while the token is live


capture_tokens = cast(Table, CaptureTokenRecord.__table__)
