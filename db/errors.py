"""The database's one exception type, and how driver errors become one readable line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

MASK = "***"
# URL query keys whose values are secrets (libpq's password, sslpassword; any *secret, *token, *key).
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
# In a URL too broken to parse: the password between "user:" and "@", and any secret query value.
_RAW_USERINFO_PASSWORD = re.compile(r"(://[^:/@?#]*:)[^@/?#]*@")
_RAW_SECRET_PARAMETER = re.compile(r"([?&][^=&#]*(?:pass|pwd|secret|token|key)[^=&#]*=)[^&#]*", re.IGNORECASE)


class DatabaseError(Exception):
    """A problem the user can fix (bad URL, unreachable server, unknown session); the CLI prints it and exits 2."""


def describe_url(url: URL) -> str:
    """The URL as the user wrote it, with any password masked: the one before the host and any given as a
    query parameter (?password=...)."""
    secrets = {key: MASK for key in url.query if _SECRET_KEY.search(key)}
    # Rendered query values are percent-encoded; the mask is shown as it is.
    return url.update_query_dict(secrets).render_as_string(hide_password=True).replace(quote(MASK, safe=""), MASK)


def mask_raw_url(url: str) -> str:
    """describe_url for a URL SQLAlchemy cannot parse."""
    return _RAW_SECRET_PARAMETER.sub(rf"\1{MASK}", _RAW_USERINFO_PASSWORD.sub(rf"\1{MASK}@", url))


def _secrets(url: URL) -> list[str]:
    values = [url.password] if url.password else []
    for key, value in url.query.items():
        if _SECRET_KEY.search(key):
            values.extend([value] if isinstance(value, str) else value)
    return [str(value) for value in values if value]


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
        reason = driver_reason(exc)
        # Some drivers repeat the connection string, password and all, in their message.
        for secret in _secrets(url):
            reason = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, reason)
        raise DatabaseError(f"cannot {action} {describe_url(url)}: {reason}") from exc
