"""The lease of the capture writing a session (one live writer per session), and sessions whose owner's account
no longer exists handed to the admins.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_writers",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("writer", sa.String(300), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_session_writers_session_id_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name="pk_session_writers"),
    )
    # Before this revision removing a user left their name on their sessions, and a new account of that name
    # opened them. An owner without an account cannot be told from such a removed one, so those sessions go to
    # the admins (teacher NULL), as `users remove` now does itself.
    op.execute(
        "UPDATE sessions SET teacher = NULL WHERE teacher IS NOT NULL AND teacher NOT IN (SELECT name FROM users)"
    )


def downgrade() -> None:
    op.drop_table("session_writers")
