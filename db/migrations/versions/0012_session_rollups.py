"""Per-session 10 s roll-ups, one row per session, bin and student, kept as frames are written (db.rollups).

Sessions recorded before this revision have none: the school view shows running classes, whose bins fill from
the next frame on; db.rollups.rebuild fills a session's from its rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "observations",
    "faces",
    "camera_off",
    "empty",
    "attentive",
    "eyes_open",
    "emotions",
    "emotion_faces",
    "emotion_attentive",
    "emotion_eyes_open",
)


def upgrade() -> None:
    op.create_table(
        "session_rollups",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("bin_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("student_id", sa.Integer(), autoincrement=False, nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("negative", sa.Float(), nullable=False),
        sa.Column("last_frame", sa.Integer(), nullable=False),
        sa.Column("last_presence", sa.String(12), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_session_rollups_session_id_sessions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("session_id", "bin_start", "student_id", name="pk_session_rollups"),
    )


def downgrade() -> None:
    op.drop_table("session_rollups")
