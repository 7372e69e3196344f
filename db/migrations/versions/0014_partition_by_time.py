"""Daily time partitions of observations (by ts) and session_rollups (by bin_start) on PostgreSQL (db.partitions):
retention drops whole days instead of deleting rows. SQLite is left as it is.

Each table is rebuilt: the old one is renamed aside, a partitioned one with the same columns and defaults takes
its name with its keys and index, the 64-bit id sequence of 0011 passes to it, every day that has rows gets its
partition (and today and the configured days ahead) and a DEFAULT partition takes any other time, the rows are
copied over and the old table dropped. A partitioned table's primary key must hold its partition key:
observations' becomes (id, ts), the id staying unique by its sequence; session_rollups' (session_id, bin_start,
student_id) holds it already, so the roll-ups' upsert is unchanged. It copies every row under an exclusive
lock: run it outside school hours. Written as plain statements so that `alembic upgrade --sql` prints it too;
such a script, made without the database, gives the existing rows' days no partition of their own: they wait in
the DEFAULT partitions.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from alembic import context, op

import config
from db.partitions import SCHEMA, day_partition

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A NamedTuple, not a dataclass: alembic loads a revision without registering its module, which dataclasses need.
class Layout(NamedTuple):
    """A table as revision 0013 leaves it, and the column it is partitioned by."""

    key: str
    primary_key: tuple[str, ...]
    references: tuple[tuple[str, str], ...]  # (column, referred table), each ON DELETE CASCADE to its id
    indexed: tuple[str, ...] | None  # the columns of its one index besides the primary key
    sequence: str | None  # the id column's


TABLES = {
    "observations": Layout(
        "ts",
        ("id",),
        (("session_id", "sessions"), ("student_id", "students")),
        ("session_id", "ts"),
        "observations_id_seq",
    ),
    "session_rollups": Layout(
        "bin_start", ("session_id", "bin_start", "student_id"), (("session_id", "sessions"),), None, None
    ),
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    today = datetime.now(UTC).date()
    ahead = [today + timedelta(days=n) for n in range(config.chosen().database.partition_days_ahead + 1)]
    for table, layout in TABLES.items():
        aside = f"{table}_unpartitioned"
        key = layout.primary_key + (() if layout.key in layout.primary_key else (layout.key,))
        _rebuild(table, aside, f"PARTITION BY RANGE ({layout.key})", key, layout)
        for day in sorted(set(_days_with_rows(aside, layout.key)) | set(ahead)):
            name, bounds = day_partition(table, day)
            op.execute(f"CREATE TABLE {name} PARTITION OF {table} {bounds}")
        op.execute(f"CREATE TABLE {SCHEMA}.{table}_default PARTITION OF {table} DEFAULT")
        _move_rows(aside, table)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, layout in TABLES.items():
        aside = f"{table}_partitioned"
        _rebuild(table, aside, "", layout.primary_key, layout)
        _move_rows(aside, table)  # its partitions go with it
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")


def _rebuild(table: str, aside: str, partitioning: str, primary_key: tuple[str, ...], layout: Layout) -> None:
    """Put `table` aside as `aside` and create an empty `table` like it (`partitioning`: the PARTITION BY clause,
    or none) with `primary_key`, its foreign keys, index and sequence."""
    # Index and constraint names are the schema's: the old ones step aside with their table.
    op.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_{table} TO pk_{aside}")
    index = None if layout.indexed is None else f"ix_{table}_{'_'.join(layout.indexed)}"
    if index is not None:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_{aside.rsplit('_', 1)[1]}")
    op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS) {partitioning}")
    op.create_primary_key(f"pk_{table}", table, list(primary_key))
    for column, referred in layout.references:
        op.create_foreign_key(f"fk_{table}_{column}_{referred}", table, referred, [column], ["id"], ondelete="CASCADE")
    if index is not None and layout.indexed is not None:
        op.create_index(index, table, list(layout.indexed))
    if layout.sequence is not None:
        # The table dropped later would take the sequence it owns with it.
        op.execute(f"ALTER SEQUENCE {layout.sequence} OWNED BY {table}.id")


def _days_with_rows(table: str, key: str) -> list[date]:
    """The UTC days `table` has rows of; none when writing a script offline (the rows then wait in the DEFAULT
    partition, which `python -m db partitions` does not split)."""
    if context.is_offline_mode():
        return []
    statement = sa.text(f"SELECT DISTINCT ({key} AT TIME ZONE 'UTC')::date FROM {table}")
    return list(op.get_bind().scalars(statement))


def _move_rows(aside: str, table: str) -> None:
    # Both tables have the same columns in the same order (LIKE).
    op.execute(f"INSERT INTO {table} SELECT * FROM {aside}")
    op.execute(f"DROP TABLE {aside}")
    op.execute(f"ANALYZE {table}")
