"""Capture tokens: what a teacher's capture shows the school's server (dashboard.ingest) instead of holding the
database's password. An admin issues one per teacher and can revoke it; only its SHA-256 is stored.

A token is 32 random bytes, so a fast hash is enough: unlike a password it cannot be guessed from a list, and
the server checks one on every frame it receives.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, insert, select, update

from db.errors import reported_as
from db.schema import capture_tokens, users

# Tells a ClassPulse token apart from other secrets in a file or a leak scanner's findings.
TOKEN_PREFIX = "cpt_"
TOKEN_BYTES = 32
REVOKED = "this capture token is unknown or revoked; ask an admin for a new one"
# Built once: SQLAlchemy then compiles it once, where a statement built per batch is compiled again each time.
_LIVE_TOKEN = select(capture_tokens.c.id).where(
    capture_tokens.c.id == bindparam("token"), capture_tokens.c.revoked_at.is_(None)
)


class TokenError(Exception):
    """A tokens command that cannot be done (unknown user or token id); the CLI exits 2."""


class RevokedTokenError(Exception):
    """The capture token a batch came with is revoked (or its teacher removed): nothing of the batch was written."""


@dataclass(frozen=True)
class CaptureToken:
    id: int
    teacher: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def issue_token(engine: Engine, teacher: str) -> tuple[CaptureToken, str]:
    """A new token for the dashboard user `teacher`: its record, and the token itself, which is stored nowhere."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    with reported_as("issue a capture token in", engine.url), engine.begin() as connection:
        user_id = connection.scalar(select(users.c.id).where(users.c.name == teacher))
        if user_id is None:
            raise TokenError(f"no user named {teacher!r} (add them with `python -m dashboard users add`)")
        token_id = connection.scalar(
            insert(capture_tokens)
            .values(user_id=user_id, token_hash=hash_token(token), created_at=datetime.now(UTC))
            .returning(capture_tokens.c.id)
        )
        return _token(connection.execute(_select().where(capture_tokens.c.id == token_id)).one()), token


def list_tokens(engine: Engine) -> list[CaptureToken]:
    with reported_as("read capture tokens from", engine.url), engine.connect() as connection:
        return [_token(row) for row in connection.execute(_select().order_by(capture_tokens.c.id))]


def revoke_token(engine: Engine, token_id: int) -> tuple[CaptureToken, bool]:
    """Revoke token `token_id` from now on; also returns whether it was live until now (False: already revoked)."""
    with reported_as("revoke a capture token in", engine.url), engine.begin() as connection:
        live = connection.execute(
            update(capture_tokens)
            .where(capture_tokens.c.id == token_id, capture_tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
        row = connection.execute(_select().where(capture_tokens.c.id == token_id)).one_or_none()
    if row is None:
        raise TokenError(f"no capture token with id {token_id} (see `python -m dashboard tokens list`)")
    return _token(row), bool(live)


def token_owner(engine: Engine, token: str) -> str | None:
    """The user a live token belongs to; None for a revoked or unknown one (a removed user's tokens go with them)."""
    statement = (
        select(users.c.name)
        .join(capture_tokens, capture_tokens.c.user_id == users.c.id)
        .where(capture_tokens.c.token_hash == hash_token(token), capture_tokens.c.revoked_at.is_(None))
    )
    with reported_as("check a capture token in", engine.url), engine.connect() as connection:
        return connection.scalar(statement)


def require_live_token(connection: Connection, token_id: int) -> None:
    """RevokedTokenError unless token `token_id` is live, read on `connection` (inside the caller's transaction, so
    a batch is never written under a token revoked meanwhile)."""
    if connection.scalar(_LIVE_TOKEN, {"token": token_id}) is None:
        raise RevokedTokenError(REVOKED)


def _select() -> Any:
    return select(
        capture_tokens.c.id, users.c.name.label("teacher"), capture_tokens.c.created_at, capture_tokens.c.revoked_at
    ).join(users, users.c.id == capture_tokens.c.user_id)


def _token(row: Row[Any]) -> CaptureToken:
    return CaptureToken(row.id, row.teacher, row.created_at, row.revoked_at)
