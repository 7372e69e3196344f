"""Capture tokens: a teacher's capture sends frames to the school's server with one (db.tokens, dashboard.ingest).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "capture_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_capture_tokens_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_capture_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_capture_tokens_token_hash"),
    )
    op.create_index("ix_capture_tokens_user_id", "capture_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_capture_tokens_user_id", table_name="capture_tokens")
    op.drop_table("capture_tokens")
