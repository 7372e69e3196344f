"""The age of each observation's eye reading and pose correction, in frames (the landmark models visit a
few faces per frame and the other rows carry their last reading).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode, as 0003: SQLite alters a table by rebuilding it; PostgreSQL alters in place.
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("landmarks_age", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("landmarks_age")
