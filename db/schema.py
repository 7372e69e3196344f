"""The tables, as SQLAlchemy declarative models. No column ever holds an image.

Timestamps are stored timezone-aware in UTC (`UtcDateTime`); the observations' probability columns
are named after `model.emotions.EMOTIONS` so the schema follows the model's class list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from model.emotions import EMOTIONS

PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"p_{emotion}" for emotion in EMOTIONS)
TILE_COLUMNS: tuple[str, ...] = ("tile_x", "tile_y", "tile_w", "tile_h")

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
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}


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


class FrameRecord(Base):
    """One analysed frame (named to keep it apart from `capture.types.Frame`, which holds the image)."""

    __tablename__ = "frames"
    __table_args__ = (
        UniqueConstraint("session_id", "frame_index"),
        Index(None, "session_id", "ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = _session_fk()
    frame_index: Mapped[int]
    ts: Mapped[datetime]
    faces: Mapped[int]
    processing_ms: Mapped[float] = mapped_column(Float)


# One float column per emotion class, built from EMOTIONS rather than typed out.
_Probabilities = type(
    "_Probabilities", (), {name: mapped_column(Float, nullable=False) for name in PROBABILITY_COLUMNS}
)


class ObservationRecord(_Probabilities, Base):
    """One face in one frame: its box, the class probabilities and the winning class index."""

    __tablename__ = "observations"
    __table_args__ = (Index(None, "session_id", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = _session_fk()
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    frame_index: Mapped[int]
    ts: Mapped[datetime]
    x: Mapped[int]
    y: Mapped[int]
    w: Mapped[int]
    h: Mapped[int]
    emotion: Mapped[int] = mapped_column(SmallInteger)


# The Core tables, for the bulk inserts and queries (declarative types them as plain FromClause).
sessions = cast(Table, SessionRecord.__table__)
students = cast(Table, StudentRecord.__table__)
frames = cast(Table, FrameRecord.__table__)
observations = cast(Table, ObservationRecord.__table__)
