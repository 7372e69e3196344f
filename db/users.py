"""Dashboard users: add, list, remove, change passwords and roles, check a login. Passwords are stored as argon2id
hashes."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, Row, delete, insert, select, update
from zxcvbn import zxcvbn

from db.errors import reported_as
from db.schema import sessions, users

# Names appear in URLs, cookies and log lines: keep them plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")
MIN_PASSWORD_LENGTH = 10
# Longer passphrases gain nothing over this.
MAX_PASSWORD_LENGTH = 256
# zxcvbn's 0-4 guessability score; 3: "safely unguessable" (about 10^8 guesses or more), which rules out its
# 30 000 common passwords, keyboard rows, repeats and dictionary words with digits appended.
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72
_HASHER = PasswordHasher()  # argon2id with the library's current recommended costs


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
    Made on first use: an Argon2 hash at import would cost every command-line process ~0.3 s of CPU."""
    return _HASHER.hash("no such user")


class Role(StrEnum):
    TEACHER = "teacher"  # the live view and reports of their own sessions
    ADMIN = "admin"  # every session


class UserError(Exception):
    """A users command that cannot be done (unknown or duplicate name, weak password); the CLI exits 2."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: datetime
    notice_accepted_at: datetime | None
    # A short fingerprint of the password hash and the role: a login cookie carries it, so a password change,
    # a role change or a removal ends every session signed in before it.
    session_stamp: str


def add_user(engine: Engine, name: str, role: Role, password: str) -> User:
    _check_name(name)
    check_password(password, name)
    with reported_as("add a user to", engine.url), engine.begin() as connection:
        if connection.scalar(select(users.c.id).where(users.c.name == name)) is not None:
            raise UserError(f"user {name!r} already exists (change the password with `users passwd {name}`)")
        connection.execute(
            insert(users).values(
                name=name, role=role.value, password_hash=_HASHER.hash(password), created_at=datetime.now(UTC)
            )
        )
    return get_user(engine, name)


def list_users(engine: Engine) -> list[User]:
    with reported_as("read users from", engine.url), engine.connect() as connection:
        return [_user(row) for row in connection.execute(select(users).order_by(users.c.name))]


def get_user(engine: Engine, name: str) -> User:
    user = find_user(engine, name)
    if user is None:
        raise UserError(f"no user named {name!r}")
    return user


def find_user(engine: Engine, name: str) -> User | None:
    with reported_as("read users from", engine.url), engine.connect() as connection:
        row = connection.execute(select(users).where(users.c.name == name)).one_or_none()
    return None if row is None else _user(row)


def remove_user(engine: Engine, name: str) -> int:
    """Remove the user and hand their sessions to the admins (no owner): a later account of the same name must
    not inherit them. Returns how many sessions were handed over."""
    with reported_as("remove a user from", engine.url), engine.begin() as connection:
        if connection.execute(delete(users).where(users.c.name == name)).rowcount == 0:
            raise UserError(f"no user named {name!r}")
        return connection.execute(update(sessions).where(sessions.c.teacher == name).values(teacher=None)).rowcount


def set_password(engine: Engine, name: str, password: str) -> None:
    check_password(password, name)
    _store_password(engine, name, password)


def _store_password(engine: Engine, name: str, password: str) -> None:
    statement = update(users).where(users.c.name == name).values(password_hash=_HASHER.hash(password))
    with reported_as("change a password in", engine.url), engine.begin() as connection:
        if connection.execute(statement).rowcount == 0:
            raise UserError(f"no user named {name!r}")


def set_role(engine: Engine, name: str, role: Role) -> None:
    statement = update(users).where(users.c.name == name).values(role=role.value)
    with reported_as("change a role in", engine.url), engine.begin() as connection:
        if connection.execute(statement).rowcount == 0:
            raise UserError(f"no user named {name!r}")


def check_login(engine: Engine, name: str, password: str) -> User | None:
    """The user when `password` is theirs; None for a wrong password or an unknown name (indistinguishable)."""
    with reported_as("read users from", engine.url), engine.connect() as connection:
        row = connection.execute(select(users).where(users.c.name == name)).one_or_none()
    try:
        _HASHER.verify(_dummy_hash() if row is None else row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        # Not set_password: a password accepted under an older policy still signs in.
        _store_password(engine, name, password)
        return get_user(engine, name)
    return _user(row)


def accept_notice(engine: Engine, name: str) -> None:
    statement = update(users).where(users.c.name == name).values(notice_accepted_at=datetime.now(UTC))
    with reported_as("record the notice in", engine.url), engine.begin() as connection:
        connection.execute(statement)


def _user(row: Row[Any]) -> User:
    return User(
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        notice_accepted_at=row.notice_accepted_at,
        # A digest of the hash, not a piece of it: the cookie is signed, not encrypted.
        session_stamp=hashlib.sha256(f"{row.role}\n{row.password_hash}".encode()).hexdigest()[:16],
    )


def _check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"{name!r} is not a valid user name "
            "(1-100 letters, digits, '_', '.', '@' or '-', starting with a letter or digit)"
        )


def check_password(password: str, name: str) -> None:
    """UserError unless `password` is 10-256 characters, not blank, and not guessable by zxcvbn's estimate
    (its common-password and word lists, patterns such as repeats and keyboard rows, and the user's name)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise UserError("the password must not be all blanks")
    # zxcvbn refuses more than its 72 characters (its work grows fast with the length); a passphrase whose first
    # 72 are strong is strong.
    strength = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[name])
    if strength["score"] < MIN_PASSWORD_SCORE:
        why = strength["feedback"]["warning"] or "it is too easy to guess"
        raise UserError(f"the password is too weak: {why.rstrip('.')}; try a few unrelated words")
