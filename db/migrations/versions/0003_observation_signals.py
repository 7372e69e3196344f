"""Attention signals on observations, and emotion columns that may be NULL (faceless tiles, attention-only).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from db/schema.py: a migration is a frozen record of what it changed.
EMOTION_COLUMNS = ("emotion", "p_angry", "p_disgust", "p_fear", "p_happy", "p_sad", "p_surprise", "p_neutral")
SIGNAL_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "presence": sa.String(12),
    "yaw": sa.Float(),
    "pitch": sa.Float(),
    "eye_ratio": sa.Float(),
    "eyes_closed": sa.Boolean(),
}


def _emotion_type(column: str) -> sa.types.TypeEngine[Any]:
    return sa.SmallInteger() if column == "emotion" else sa.Float()


def upgrade() -> None:
    # Batch mode: SQLite can only drop NOT NULL by rebuilding the table; PostgreSQL alters in place.
    with op.batch_alter_table("observations") as batch:
        for name, type_ in SIGNAL_TYPES.items():
            batch.add_column(sa.Column(name, type_, nullable=True))
        for column in EMOTION_COLUMNS:
            batch.alter_column(column, existing_type=_emotion_type(column), nullable=True)


def downgrade() -> None:
    # Rows without an emotion cannot satisfy NOT NULL again; they go.
    op.execute(sa.text("DELETE FROM observations WHERE emotion IS NULL"))
    with op.batch_alter_table("observations") as batch:
        for column in EMOTION_COLUMNS:
            batch.alter_column(column, existing_type=_emotion_type(column), nullable=False)
        for name in reversed(SIGNAL_TYPES):
            batch.drop_column(name)
