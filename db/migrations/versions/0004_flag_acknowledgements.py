"""Flags a teacher acknowledged on the live page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flag_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("student", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(20), nullable=False),
        sa.Column("flag_start", TIMESTAMP, nullable=False),
        sa.Column("acknowledged_by", sa.String(100), nullable=False),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_flag_acknowledgements_session_id_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flag_acknowledgements"),
        sa.UniqueConstraint(
            "session_id",
            "student",
            "rule",
            "flag_start",
            name="uq_flag_acknowledgements_session_id_student_rule_flag_start",
        ),
    )


def downgrade() -> None:
    op.drop_table("flag_acknowledgements")
