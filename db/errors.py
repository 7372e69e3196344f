"""The database's one exception type, and how driver errors become one readable line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError


class DatabaseError(Exception):
    """A problem the user can fix (bad URL, unreachable server, unknown session); the CLI prints it and exits 2."""


def describe_url(url: URL) -> str:
    """The URL as the user wrote it, with any password masked."""
    return url.render_as_string(hide_password=True)


def driver_reason(exc: BaseException) -> str:
    """The driver's own message on one line (drivers such as psycopg add hint lines)."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(line.strip() for line in str(original).splitlines() if line.strip())


@contextmanager
def reported_as(action: str, url: URL) -> Iterator[None]:
    """Turn a driver error raised inside the block into a DatabaseError naming the action and the URL."""
    try:
        yield
    except DBAPIError as exc:
        raise DatabaseError(f"cannot {action} {describe_url(url)}: {driver_reason(exc)}") from exc
