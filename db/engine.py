"""Opens databases: URL checks, SQLite settings, and one readable error when a database can't be reached."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from db.errors import DatabaseError, describe_url, mask_raw_url, reported_as

REPO_ROOT = Path(__file__).resolve().parents[1]
# The local data folder: the embedded database, and the dashboard's secret key.
DATA_DIR = REPO_ROOT / "data"
DEFAULT_URL = f"sqlite:///{DATA_DIR / 'classpulse.db'}"

SQLITE_BUSY_TIMEOUT_MS = 10_000
SERVER_CONNECT_TIMEOUT_S = 5
# Execution option read by the SQLite "begin" hook: take the write lock at BEGIN (see write_transaction).
_BEGIN_IMMEDIATE = "classpulse_begin_immediate"


def connect(url: str = DEFAULT_URL, *, create: bool = True, ping: bool = True, pool_size: int | None = None) -> Engine:
    """An engine for `url`, with one connection already made so a bad database fails here.

    `create=False` refuses a SQLite file that does not exist yet (readers should not create empty
    databases). `ping=False`: a database server's pooled connection is used without a round trip to check it
    first, for a caller that answers a failed statement by being asked again (the school server's ingest: a
    capture resends); the first use of each connection after the server restarted then fails, and the pool
    is renewed. `pool_size`: connections kept open (SQLAlchemy's default: 5), as many again opened for a moment
    when they are all in use. Raises DatabaseError naming the URL, password masked, and the reason.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(parsed, create)
    engine = _create_engine(parsed, ping, pool_size)
    with reported_as("open", parsed), engine.connect():
        pass
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for read-then-write work.

    SQLite takes its write lock at BEGIN here, so a concurrent writer makes this one wait (busy_timeout)
    instead of failing with SQLITE_BUSY when it first writes after reading. Other databases: a plain BEGIN.
    """
    with engine.connect() as connection:
        connection.execution_options(**{_BEGIN_IMMEDIATE: True})
        with connection.begin():
            yield connection


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise DatabaseError(
            f"{mask_raw_url(url)!r} is not a database URL "
            "(expected sqlite:///path/to/file.db or postgresql://user:password@host/dbname)"
        ) from None
    # Bare postgresql:// would pick psycopg2; the project ships psycopg 3.
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _prepare_sqlite_file(url: URL, create: bool) -> None:
    if url.database is None or url.database in ("", ":memory:"):
        return
    path = Path(url.database)
    if path.exists():
        return
    if not create:
        raise DatabaseError(f"cannot open {describe_url(url)}: no database file at {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"cannot create {describe_url(url)}: cannot make folder {path.parent} ({exc.strerror})"
        ) from exc


def _create_engine(url: URL, ping: bool, pool_size: int | None) -> Engine:
    options: dict[str, Any] = {}
    if pool_size is not None:
        options |= {"pool_size": pool_size, "max_overflow": pool_size}
    if url.get_backend_name() != "sqlite":
        options["pool_pre_ping"] = ping
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        options["connect_args"] = {"connect_timeout": SERVER_CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(url, **options)
    except NoSuchModuleError:
        raise DatabaseError(
            f"cannot open {describe_url(url)}: unknown database kind {url.drivername!r} (expected sqlite or postgresql)"
        ) from None
    except ImportError as exc:
        raise DatabaseError(f"cannot open {describe_url(url)}: its driver is not installed ({exc})") from None
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL lets the dashboard read while capture writes; the driver's own transaction handling is
    replaced by explicit BEGINs so transactions (and migrations' DDL) behave as on a server."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The timeout first: switching a new file to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # Safe with WAL (no corruption); only the last commits can be lost on power failure.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _switch_to_wal(cursor: Any) -> None:
    # Changing the journal mode of a new file while another process migrates it fails at once with
    # "database is locked" (the busy timeout does not cover it), so wait for the lock here.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
