"""Brings a database to the newest schema; capture and dashboard call `upgrade` at start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

import config as settings
from db.engine import DEFAULT_URL, connect, write_transaction
from db.errors import reported_as
from db.partitions import ensure_ahead

ALEMBIC_INI = Path(__file__).resolve().with_name("alembic.ini")
# Any fixed number: every ClassPulse process that migrates a PostgreSQL database takes this lock first.
POSTGRES_MIGRATION_LOCK = 0x436C_5075_6C73  # "ClPuls"


def upgrade(target: str | Engine = DEFAULT_URL) -> Engine:
    """Migrate the database at `target` (a URL or an engine) to head and return its engine.

    Idempotent, and safe when several processes start at once: the migration runs in one write
    transaction behind a lock, so a second caller waits and then finds the schema already current.
    """
    engine = connect(target) if isinstance(target, str) else target
    config = Config(str(ALEMBIC_INI))
    with reported_as("migrate", engine.url), write_transaction(engine) as connection:
        _lock_out_other_migrations(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        # Days ahead of today, every start: a server that was down for a week resumes with partitions to write to.
        ensure_ahead(connection, datetime.now(UTC).date(), settings.chosen().database.partition_days_ahead)
    return engine


def _lock_out_other_migrations(connection: Connection) -> None:
    # SQLite's write_transaction already holds the database's write lock; PostgreSQL's DDL takes
    # table locks only as it goes, so racing migrations would each try to create the tables.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK})


def head_revision() -> str:
    """The newest revision id in `db/migrations/versions`."""
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    assert head is not None, "db/migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with reported_as("read", engine.url), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
