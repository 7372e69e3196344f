"""Alembic environment: migrates the connection `db.migrate.upgrade` passes in, or the database named
by `-x db=URL` (default `db.engine.DEFAULT_URL`) when run from the alembic command line."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection

from db.engine import DEFAULT_URL, connect, write_transaction
from db.errors import DatabaseError
from db.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection | None = None, url: str | None = None, literal_binds: bool = False) -> None:
    # Batch mode lets SQLite, which can't ALTER most things, change tables by copying them.
    context.configure(
        connection=connection,
        url=url,
        literal_binds=literal_binds,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _command_line_url() -> str:
    return context.get_x_argument(as_dictionary=True).get("db") or DEFAULT_URL


def main() -> None:
    passed_in = config.attributes.get("connection")
    if passed_in is not None:
        _run_on(passed_in)
        return
    # Only the alembic command owns the process's logging; a host app calling upgrade() keeps its own.
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        _configure(url=_command_line_url(), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        engine = connect(_command_line_url())
    except DatabaseError as error:
        # The alembic command prints a CommandError as one "FAILED: ..." line and exits 1, without a traceback.
        raise CommandError(str(error)) from None
    with write_transaction(engine) as connection:
        _run_on(connection)
    engine.dispose()


main()
