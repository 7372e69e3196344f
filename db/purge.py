"""Removes whole sessions: every observation, roll-up, student, frame, flag decision and merge record of them,
then the session row itself.
A session being captured (its lease held, db.lease) is never purged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, func, select

import config
from db.engine import write_transaction
from db.errors import reported_as
from db.lease import SessionBusyError, leases
from db.partitions import drop_older
from db.queries import UnknownSessionError
from db.schema import (
    flag_acknowledgements,
    flag_silences,
    frames,
    observations,
    session_rollups,
    session_writers,
    sessions,
    student_merge_rows,
    student_merges,
    students,
)


def purge_older_than(engine: Engine, days: float, now: datetime | None = None) -> list[str]:
    """Purge every session that ended (or, never closed, started) more than `days` days before `now` (on
    PostgreSQL: before the start of that UTC day, after dropping the older days whole: `retain`), except those
    being captured. Returns the purged sessions' names."""
    return retain(engine, days, now).purged


@dataclass(frozen=True)
class Retained:
    """What retention did: the lines of db.partitions.drop_older, and the purged sessions' names."""

    dropped: list[str]
    purged: list[str]


def retain(engine: Engine, days: float, now: datetime | None = None) -> Retained:
    """Keep `days` days: on PostgreSQL first drop the whole days of rows before then (db.partitions.drop_older,
    up to the start of that day), then purge the sessions that ended before that cutoff, whose rows are gone
    with their days (so no row is deleted one by one); on SQLite purge the sessions that ended before then."""
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    with reported_as("drop old partitions in", engine.url), write_transaction(engine) as connection:
        cutoff, dropped = drop_older(connection, before, config.chosen().database.retention_lock_seconds)
    last_active = func.coalesce(sessions.c.ended_at, sessions.c.started_at)
    return Retained(dropped, _purge(engine, _rows().where(last_active < cutoff)))


def purge_session(engine: Engine, name: str) -> None:
    """Purge the session called `name`; UnknownSessionError when there is none, SessionBusyError while it is
    being captured."""
    if not _purge(engine, _rows().where(sessions.c.name == name), refuse_held=True):
        raise UnknownSessionError(f"no session named {name!r}")


def _rows() -> Select[Any]:
    # FOR UPDATE (PostgreSQL): a capture taking up one of these sessions waits for the purge, or the purge for
    # it; the leases are read after this lock (db.lease).
    return select(sessions.c.id, sessions.c.name).with_for_update()


def _purge(engine: Engine, chosen: Select[Any], refuse_held: bool = False) -> list[str]:
    """Purge the sessions `chosen` selects, except those being captured (with `refuse_held`, SessionBusyError
    for one of those instead)."""
    with reported_as("purge sessions in", engine.url), write_transaction(engine) as connection:
        overwrite_deleted_data(connection)
        candidates = connection.execute(chosen).all()
        now = datetime.now(UTC)
        held = leases(connection, [row.id for row in candidates])
        busy = [row for row in candidates if row.id in held and held[row.id].holds(now)]
        if refuse_held and busy:
            raise SessionBusyError(held[busy[0].id].busy_message(busy[0].name))
        found = [row for row in candidates if row not in busy]
        ids = [row.id for row in found]
        # Children first, each table explicitly: no reliance on ON DELETE CASCADE being enforced. A merge's moved
        # rows carry no session, only their merge's id.
        merges = select(student_merges.c.id).where(student_merges.c.session_id.in_(ids))
        connection.execute(delete(student_merge_rows).where(student_merge_rows.c.merge_id.in_(merges)))
        for table in (
            flag_acknowledgements,
            flag_silences,
            student_merges,
            session_rollups,
            observations,
            students,
            frames,
            session_writers,
            sessions,
        ):
            key = table.c.id if table is sessions else table.c.session_id
            connection.execute(delete(table).where(key.in_(ids)))
    if found and engine.dialect.name == "sqlite":
        checkpoint(engine)
    return [row.name for row in found]


def overwrite_deleted_data(connection: Connection) -> None:
    # SQLite otherwise leaves deleted rows' bytes in free pages of the file until a VACUUM.
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA secure_delete=ON")


def checkpoint(engine: Engine) -> None:
    # The database file keeps the old pages until a checkpoint copies the overwritten ones in, and the
    # write-ahead log may hold older copies of them: checkpoint, and empty the log.
    with reported_as("purge sessions in", engine.url), engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
