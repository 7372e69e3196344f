"""A teacher's snoozes and mutes of flags on the live page, kept so that they hold across reloads and tabs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flag_silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("student", sa.String(64), nullable=True),
        sa.Column("rule", sa.String(20), nullable=True),
        sa.Column("until", TIMESTAMP, nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("lifted_by", sa.String(100), nullable=True),
        sa.Column("lifted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_flag_silences_session_id_sessions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flag_silences"),
    )
    op.create_index("ix_flag_silences_session_id", "flag_silences", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_flag_silences_session_id", table_name="flag_silences")
    op.drop_table("flag_silences")
