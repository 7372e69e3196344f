"""64-bit ids for the tables that grow by a row per frame: observations, frames, and the observation ids a merge
keeps (student_merge_rows). PostgreSQL only: SQLite's INTEGER is 64-bit already.

At 100 classrooms of 50 students at one frame a second a school writes ~90 M observations a day, and a 32-bit
id runs out after ~24 school days; a purge does not give ids back. The columns' SERIAL sequences are typed
`integer` as well, and stop at the same bound, so they are widened too. Students and sessions keep 32-bit ids
(tens of thousands of rows a day).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, whether a SERIAL sequence feeds it)
WIDENED = (("observations", "id", True), ("frames", "id", True), ("student_merge_rows", "observation_id", False))


def upgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer(), "bigint")


def downgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger(), "integer")


def _retype(new: sa.types.TypeEngine[int], old: sa.types.TypeEngine[int], sequence_type: str) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, column, serial in WIDENED:
        # One rewrite of the table each, under its exclusive lock: run it outside school hours.
        op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=False)
        if serial:
            op.execute(f"ALTER SEQUENCE {table}_{column}_seq AS {sequence_type}")
