"""Daily time partitions of the tables that grow by a row per student per frame, on PostgreSQL (migration 0014).

`observations` is partitioned by its `ts` and `session_rollups` by its `bin_start`, one partition per UTC day,
named `partitions.<table>_YYYYMMDD` (in a schema of their own, so that the schema checks and every query see the
parent table only), plus `partitions.<table>_default`, which takes any row of a day without a partition (a clock
far off, a day not created yet): no row is ever refused. Creating a day whose rows wait in the default partition
moves them into it. Retention drops whole days (`drop_before`), a catalogue change whatever a day holds, where
deleting a school's 90 M rows a day one by one is slow and leaves the table to vacuum.

`frames` is not partitioned: its (session_id, frame_index) uniqueness is what makes a resent frame a no-op
(dashboard/ingest.py), and a partitioned table can only enforce uniqueness with the partition key in it, so a
resend with another time would pass. It holds a row per classroom per second, 2 % of the rows, and goes with its
session (db.purge). SQLite (one teacher) has no partitions: ensure_ahead, keep_ahead and the drops do nothing there.

A small module rather than pg_partman: pg_partman is an extension to install into every school's server as a
superuser, with a background worker or cron job of its own to configure, and it cannot be exercised by the test
server that scripts/postgres.sh starts; this is a few statements of plain PostgreSQL 11+ that the product runs
itself, tested on the same server it runs on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, Engine, func, select, text

from db.engine import write_transaction
from db.errors import reported_as
from db.schema import session_writers, sessions

SCHEMA = "partitions"
# The partitioned tables and the column each is partitioned by.
PARTITIONED: dict[str, str] = {"observations": "ts", "session_rollups": "bin_start"}
_DAY = timedelta(days=1)
# Any fixed number (not db.migrate's, so that an upgrade may call ensure_ahead): every process that creates or
# drops partitions takes this lock first.
PARTITIONS_LOCK = 0x436C_5050_6172  # "ClPPar"
_BOUND = re.compile(r"FOR VALUES FROM \('(?P<start>[^']+)'\) TO \('(?P<end>[^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition: the rows from `start` (inclusive) to `end` (exclusive); both None for the default one."""

    name: str  # schema-qualified
    start: datetime | None
    end: datetime | None


def is_partitioned(connection: Connection) -> bool:
    """Whether the database's big tables are partitioned (PostgreSQL at revision 0014 or later)."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.scalar(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('observations')"))
    return bool(kind == "p")


def partitions(connection: Connection, table: str) -> list[Partition]:
    """`table`'s partitions, the default one last, the others by start."""
    rows = connection.execute(
        text(
            "SELECT n.nspname || '.' || c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": table},
    ).all()
    found = []
    for row in rows:
        bound = _BOUND.search(row.bound)
        if bound is None:  # "DEFAULT"
            found.append(Partition(row.name, None, None))
        else:
            start, end = (datetime.fromisoformat(bound[part]).astimezone(UTC) for part in ("start", "end"))
            found.append(Partition(row.name, start, end))
    return sorted(found, key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))


def day_start(at: datetime) -> datetime:
    """The start of `at`'s UTC day: partitions' bounds, and how far back retention can drop."""
    return datetime.combine(at.astimezone(UTC).date(), time(), UTC)


def day_partition(table: str, day: date) -> tuple[str, str]:
    """The name of `table`'s partition of the UTC day `day`, and its bounds as ATTACH and PARTITION OF take them."""
    start = datetime.combine(day, time(), UTC)
    return (
        f"{SCHEMA}.{table}_{day:%Y%m%d}",
        f"FOR VALUES FROM ('{start:%Y-%m-%d}+00') TO ('{start + _DAY:%Y-%m-%d}+00')",
    )


def create_day(connection: Connection, table: str, day: date) -> str:
    """Create `table`'s partition of the UTC day `day`, moving the rows of that day that wait in its default
    partition into it; returns its name. The day must have no partition yet."""
    name, bounds = day_partition(table, day)
    start = datetime.combine(day, time(), UTC)
    names = ", ".join(columns(connection, table))
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    # Created apart and attached once filled: a day's rows in the default partition would make a plain
    # PARTITION OF fail, and would be lost to the table while moved if the day were attached first.
    connection.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
    if _has_default(connection, table):
        key = PARTITIONED[table]
        connection.execute(
            text(
                f"WITH moved AS (DELETE FROM {SCHEMA}.{table}_default WHERE {key} >= :start AND {key} < :end "
                f"RETURNING {names}) INSERT INTO {name} ({names}) SELECT {names} FROM moved"
            ),
            {"start": start, "end": start + _DAY},
        )
    connection.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} {bounds}"))
    return name


def ensure_ahead(connection: Connection, today: date, days_ahead: int) -> list[str]:
    """Create the day partitions from `today` to `days_ahead` days after it that do not exist yet, in every
    partitioned table; returns the created partitions' names (none on SQLite)."""
    if not is_partitioned(connection):
        return []
    _lock_out_others(connection)
    created = []
    for table in PARTITIONED:
        have = {p.start.date() for p in partitions(connection, table) if p.start is not None}
        for offset in range(days_ahead + 1):
            day = today + timedelta(days=offset)
            if day not in have:
                created.append(create_day(connection, table, day))
    return created


def keep_ahead(engine: Engine, days_ahead: int, now: datetime | None = None) -> list[str]:
    """ensure_ahead in a transaction of its own, from today (UTC)."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    with reported_as("create partitions in", engine.url), write_transaction(engine) as connection:
        return ensure_ahead(connection, today, days_ahead)


def drop_before(connection: Connection, cutoff: datetime) -> list[str]:
    """Drop every day partition that ends by `cutoff` (a day's start); one line per partition. Nothing on SQLite.

    Rows in a default partition are left: their times are a clock's mistake or a day not created yet, so
    their time says little about their session's age; they go with their session (db.purge.retain)."""
    if not is_partitioned(connection):
        return []
    done = []
    for table in PARTITIONED:
        for partition in partitions(connection, table):
            if partition.start is not None and partition.end is not None and partition.end <= cutoff:
                connection.execute(text(f"DROP TABLE {partition.name}"))
                done.append(f"dropped partition {partition.name} (the rows of {partition.start:%Y-%m-%d})")
    return done


def drop_older(connection: Connection, before: datetime, lock_seconds: float) -> tuple[datetime, list[str]]:
    """Retention's first step: drop_before the start of `before`'s UTC day, but not the days since the earliest
    session being captured now started (its rows stay whole). Returns that day's start, which the sessions to
    purge must have ended before (so that their rows went with the partitions), and the lines of drop_before.
    On SQLite: `before` itself, and nothing done.

    Dropping a partition locks its table for a moment; waiting longer than `lock_seconds` for that lock (behind
    a long read) fails with a DatabaseError rather than making every frame's insert queue behind it."""
    if not is_partitioned(connection):
        return before, []
    _lock_out_others(connection)
    cutoff = day_start(before)
    held = select(session_writers.c.session_id).where(session_writers.c.until > datetime.now(UTC))
    writing = connection.scalar(select(func.min(sessions.c.started_at)).where(sessions.c.id.in_(held)))
    dropped_until = cutoff if writing is None else min(cutoff, day_start(writing))
    connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_seconds * 1000)}"))
    return cutoff, drop_before(connection, dropped_until)


def _lock_out_others(connection: Connection) -> None:
    # Two processes creating the same day (a cron line and a retention run) would both find it missing.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITIONS_LOCK})


def _has_default(connection: Connection, table: str) -> bool:
    return (
        connection.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": f"{SCHEMA}.{table}_default"}) is True
    )


def columns(connection: Connection, table: str) -> list[str]:
    """`table`'s columns, in order, quoted."""
    names = connection.scalars(
        text(
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = to_regclass(:table) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"
        ),
        {"table": table},
    ).all()
    return list(names)
