"""Student merges that can be undone: what a merge changed, and which observations it moved (db.students).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "student_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kept_key", sa.String(64), nullable=False),
        sa.Column("kept_name", sa.String(200), nullable=True),
        sa.Column("kept_first_seen", TIMESTAMP, nullable=False),
        sa.Column("kept_last_seen", TIMESTAMP, nullable=False),
        sa.Column("dropped_id", sa.Integer(), nullable=False),
        sa.Column("dropped_key", sa.String(64), nullable=False),
        sa.Column("dropped_name", sa.String(200), nullable=True),
        sa.Column("dropped_tile_x", sa.Integer(), nullable=True),
        sa.Column("dropped_tile_y", sa.Integer(), nullable=True),
        sa.Column("dropped_tile_w", sa.Integer(), nullable=True),
        sa.Column("dropped_tile_h", sa.Integer(), nullable=True),
        sa.Column("dropped_first_seen", TIMESTAMP, nullable=False),
        sa.Column("dropped_last_seen", TIMESTAMP, nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("merged_by", sa.String(100), nullable=True),
        sa.Column("merged_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_student_merges_session_id_sessions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_student_merges"),
    )
    op.create_index("ix_student_merges_session_id", "student_merges", ["session_id"])
    op.create_table(
        "student_merge_rows",
        sa.Column("merge_id", sa.Integer(), nullable=False),
        sa.Column("observation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merge_id"],
            ["student_merges.id"],
            name="fk_student_merge_rows_merge_id_student_merges",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("merge_id", "observation_id", name="pk_student_merge_rows"),
    )


def downgrade() -> None:
    op.drop_table("student_merge_rows")
    op.drop_index("ix_student_merges_session_id", table_name="student_merges")
    op.drop_table("student_merges")
