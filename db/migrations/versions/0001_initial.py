"""Initial schema: sessions, students, frames, observations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

A migration is a frozen record of what it created, so the emotion columns are written out here
rather than derived from `vocabulary.emotions.EMOTIONS` as `db/schema.py` does; a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _session_id() -> sa.Column[int]:
    return sa.Column("session_id", sa.Integer(), nullable=False)


def _fk_session(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["sessions.id"], name=f"fk_{table}_session_id_sessions", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "sessions",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.UniqueConstraint("name", name="uq_sessions_name"),
    )
    op.create_table(
        "students",
        _id(),
        _session_id(),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("tile_x", sa.Integer(), nullable=True),
        sa.Column("tile_y", sa.Integer(), nullable=True),
        sa.Column("tile_w", sa.Integer(), nullable=True),
        sa.Column("tile_h", sa.Integer(), nullable=True),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_students"),
        _fk_session("students"),
        sa.UniqueConstraint("session_id", "key", name="uq_students_session_id_key"),
    )
    op.create_table(
        "frames",
        _id(),
        _session_id(),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("processing_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_frames"),
        _fk_session("frames"),
        sa.UniqueConstraint("session_id", "frame_index", name="uq_frames_session_id_frame_index"),
    )
    op.create_index("ix_frames_session_id_ts", "frames", ["session_id", "ts"])
    op.create_table(
        "observations",
        _id(),
        _session_id(),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("w", sa.Integer(), nullable=False),
        sa.Column("h", sa.Integer(), nullable=False),
        sa.Column("emotion", sa.SmallInteger(), nullable=False),
        sa.Column("p_angry", sa.Float(), nullable=False),
        sa.Column("p_disgust", sa.Float(), nullable=False),
        sa.Column("p_fear", sa.Float(), nullable=False),
        sa.Column("p_happy", sa.Float(), nullable=False),
        sa.Column("p_sad", sa.Float(), nullable=False),
        sa.Column("p_surprise", sa.Float(), nullable=False),
        sa.Column("p_neutral", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
        _fk_session("observations"),
        sa.ForeignKeyConstraint(
            ["student_id"], ["students.id"], name="fk_observations_student_id_students", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_observations_session_id_ts", "observations", ["session_id", "ts"])


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_table("frames")
    op.drop_table("students")
    op.drop_table("sessions")
