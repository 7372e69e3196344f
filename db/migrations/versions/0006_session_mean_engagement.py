"""Each session's average class engagement, kept so the sessions list need not score every session.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode, as 0003: SQLite alters a table by rebuilding it; PostgreSQL alters in place.
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("mean_engagement", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("mean_engagement")
