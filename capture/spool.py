"""The capture's outbox when it sends to a server (capture.sender): every analysed frame is kept in a local
SQLite file until the server has acknowledged it, so a server that is down, a lost network or a capture that
is stopped or killed loses nothing; the next run sends what is left, in order.

It holds what the server receives, numbers only (vocabulary.wire), never an image.

The file's layout has a version (SQLite's user_version, SPOOL_VERSION): a spool left by an earlier ClassPulse,
frames still waiting in it, is brought up to date when opened, so an upgrade loses none of them.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capture.errors import CaptureError
from db.engine import DATA_DIR

DEFAULT_SPOOL = DATA_DIR / "capture-spool.db"
# 0: the first layout; 1: spooled_sessions.class.
SPOOL_VERSION = 1

_SESSIONS = """
CREATE TABLE IF NOT EXISTS spooled_sessions (
    server TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    -- The SHA-256 of the capture token the session's frames are sent with (db.tokens.hash_token): a run with
    -- another teacher's token leaves them alone.
    token TEXT NOT NULL,
    -- 0 while the frame numbers were chosen without the server (it was down when the capture started).
    confirmed INTEGER NOT NULL,
    -- Added to the frame numbers the capture gives, once the server said where the session continues.
    shift INTEGER NOT NULL DEFAULT 0,
    -- The class (`capture --class`) the session was started in: a later run sending its frames opens it in the
    -- same class on the server, not in that run's. NULL: none.
    class TEXT,
    PRIMARY KEY (server, name)
)
"""
_FRAMES = """
CREATE TABLE IF NOT EXISTS spooled_frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    server TEXT NOT NULL,
    session TEXT NOT NULL,
    frame_index INTEGER NOT NULL,
    payload TEXT NOT NULL  -- vocabulary.wire JSON; its "frame" is replaced by frame_index when sent
)
"""


class SpoolError(CaptureError):
    """The spool file cannot be opened or written (a full disk, a folder that cannot be made)."""


@dataclass(frozen=True)
class SpooledSession:
    name: str
    source: str
    class_of: str | None = None  # the class it was captured in, if any


@dataclass(frozen=True)
class SpooledFrame:
    seq: int
    frame_index: int
    payload: str


class Spool:
    """One SQLite file, shared by the capture's thread (adding frames) and its sender's (taking them out)."""

    def __init__(self, path: Path = DEFAULT_SPOOL) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._connection.execute("PRAGMA busy_timeout=10000")
            # FULL: an acknowledged-by-nobody frame must survive a power cut as well as a crash.
            self._connection.execute("PRAGMA synchronous=FULL")
            self._upgrade()
        except (OSError, sqlite3.Error) as error:
            raise SpoolError(f"cannot open the capture spool {path}: {error}") from None
        self._lock = threading.Lock()
        self._hold_alone()

    def _upgrade(self) -> None:
        """Create the tables, or bring an earlier version's up to SPOOL_VERSION keeping what waits in them."""
        version = self._connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SPOOL_VERSION:
            self._connection.close()
            raise SpoolError(
                f"the capture spool {self.path} was written by a newer ClassPulse (version {version}); use that "
                "version to send its frames, or give this capture another --spool FILE"
            )
        with _Transaction(self._connection):
            self._connection.execute(_SESSIONS)
            columns = {row[1] for row in self._connection.execute("PRAGMA table_info(spooled_sessions)")}
            if "class" not in columns:  # a version-0 spool: its sessions were started without a class known
                self._connection.execute("ALTER TABLE spooled_sessions ADD COLUMN class TEXT")
            self._connection.execute(_FRAMES)
            # PRAGMA takes no bound parameters; SPOOL_VERSION is this module's integer.
            self._connection.execute(f"PRAGMA user_version = {SPOOL_VERSION}")

    def _hold_alone(self) -> None:
        """One capture per spool: two would each send, and close, the other's sessions. The lock is the
        operating system's, so a capture that was killed leaves none behind."""
        self._owner = (self.path.parent / f"{self.path.name}.lock").open("a")
        try:
            fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._owner.close()
            self._connection.close()
            raise SpoolError(
                f"another capture is using the spool {self.path}; give this one its own with --spool FILE"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._connection.close()
        self._owner.close()

    def session(self, server: str, name: str) -> SpooledSession | None:
        row = self._one(
            "SELECT name, source, class FROM spooled_sessions WHERE server = ? AND name = ?", (server, name)
        )
        return None if row is None else SpooledSession(*row)

    def start_session(
        self, server: str, token: str, name: str, source: str, server_next: int | None, class_of: str | None = None
    ) -> int:
        """A capture of session `name` begins; the frame number it is to give its first frame.

        `token`: the hash of the capture token. `server_next`: where the server continues the session, None while
        it cannot be asked. `class_of`: its class (`capture --class`), kept with it; a run continuing it without
        one keeps the class it had. Frames of earlier runs still waiting keep their place before the new ones. Numbers
        given without the server stay unconfirmed until it answers (`confirm`); with its answer the capture
        numbers as the server does.
        """
        with self._lock, self._transaction():
            last, stored_token = self._connection.execute(
                "SELECT max(f.frame_index), s.token FROM spooled_sessions s JOIN spooled_frames f "
                "ON f.server = s.server AND f.session = s.name WHERE s.server = ? AND s.name = ?",
                (server, name),
            ).fetchone()
            if last is None:
                self._connection.execute(
                    "INSERT OR REPLACE INTO spooled_sessions (server, name, source, token, confirmed, shift, class) "
                    "VALUES (?, ?, ?, ?, 0, 0, ?)",
                    (server, name, source, token, class_of),
                )
            elif stored_token != token:
                raise SpoolError(
                    f"frames of session {name!r} captured with another capture token wait in {self.path}: "
                    "give this capture another --session name"
                )
            else:
                self._connection.execute(
                    "UPDATE spooled_sessions SET source = ?, class = coalesce(?, class) WHERE server = ? AND name = ?",
                    (source, class_of, server, name),
                )
            if server_next is None:
                shift = self._connection.execute(
                    "SELECT shift FROM spooled_sessions WHERE server = ? AND name = ?", (server, name)
                ).fetchone()[0]
                return 0 if last is None else last + 1 - shift
            last = self._confirm(server, name, server_next)
            self._connection.execute(
                "UPDATE spooled_sessions SET shift = 0 WHERE server = ? AND name = ?", (server, name)
            )
            return server_next if last is None else max(server_next, last + 1)

    def add(self, server: str, session: str, frame_index: int, payload: str) -> None:
        """Keep one frame; `frame_index` in the capture's numbering, to which the session's shift is added."""
        self._execute(
            "INSERT INTO spooled_frames (server, session, frame_index, payload) "
            "SELECT ?, ?, ? + shift, ? FROM spooled_sessions WHERE server = ? AND name = ?",
            (server, session, frame_index, payload, server, session),
            expect_rows=1,
        )

    def confirm(self, server: str, name: str, server_next: int) -> None:
        """The server continues the session at `server_next`: frames numbered without it are renumbered from
        there if they were below it, and so is every later frame of this capture (the session's shift)."""
        with self._lock, self._transaction():
            self._confirm(server, name, server_next)

    def _confirm(self, server: str, name: str, server_next: int) -> int | None:
        """`confirm`, in a transaction already begun; the session's last waiting frame number after it."""
        confirmed: int | None
        first: int | None
        last: int | None
        confirmed, first, last = self._connection.execute(
            "SELECT s.confirmed, min(f.frame_index), max(f.frame_index) FROM spooled_sessions s "
            "LEFT JOIN spooled_frames f ON f.server = s.server AND f.session = s.name "
            "WHERE s.server = ? AND s.name = ?",
            (server, name),
        ).fetchone()
        if confirmed or first is None or first >= server_next:
            self._connection.execute(
                "UPDATE spooled_sessions SET confirmed = 1 WHERE server = ? AND name = ?", (server, name)
            )
            return last
        shift = server_next - first
        self._connection.execute(
            "UPDATE spooled_frames SET frame_index = frame_index + ? WHERE server = ? AND session = ?",
            (shift, server, name),
        )
        self._connection.execute(
            "UPDATE spooled_sessions SET confirmed = 1, shift = shift + ? WHERE server = ? AND name = ?",
            (shift, server, name),
        )
        return last + shift

    def oldest(
        self, server: str, token: str, limit: int, skip: frozenset[str] = frozenset()
    ) -> tuple[SpooledSession, list[SpooledFrame]] | None:
        """The oldest frames waiting for `server` under `token`, up to `limit`, all of the oldest session's
        (sessions in `skip` aside); None when none wait."""
        with self._lock:
            first = self._connection.execute(
                "SELECT f.session FROM spooled_frames f JOIN spooled_sessions s ON s.server = f.server "
                f"AND s.name = f.session WHERE f.server = ? AND s.token = ? AND f.session NOT IN "
                f"({', '.join('?' * len(skip))}) ORDER BY f.seq LIMIT 1",
                (server, token, *skip),
            ).fetchone()
            if first is None:
                return None
            rows = self._connection.execute(
                "SELECT seq, frame_index, payload FROM spooled_frames WHERE server = ? AND session = ? "
                "ORDER BY seq LIMIT ?",
                (server, first[0], limit),
            ).fetchall()
        session = self.session(server, first[0])
        assert session is not None, "a spooled frame's session is kept as long as the frame"
        return session, [SpooledFrame(*row) for row in rows]

    def remove(self, seqs: list[int]) -> None:
        """The server acknowledged these frames."""
        with self._lock, self._transaction():
            self._connection.executemany("DELETE FROM spooled_frames WHERE seq = ?", [(seq,) for seq in seqs])

    def waiting(self, server: str, token: str | None = None) -> dict[str, int]:
        """Frames waiting for `server` (under `token` only, if given), per session."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT f.session, count(*) FROM spooled_frames f JOIN spooled_sessions s ON s.server = f.server "
                "AND s.name = f.session WHERE f.server = ? AND s.token = coalesce(?, s.token) GROUP BY f.session",
                (server, token),
            ).fetchall()
        return dict(rows)

    def forget_session(self, server: str, name: str) -> None:
        """The session is over and the server holds all of it."""
        self._execute(
            "DELETE FROM spooled_sessions WHERE server = ? AND name = ? AND NOT EXISTS "
            "(SELECT 1 FROM spooled_frames WHERE server = ? AND session = ?)",
            (server, name, server, name),
        )

    def finished_sessions(self, server: str, token: str, current: str) -> list[str]:
        """Sessions of earlier runs under `token` (not `current`) whose every frame the server now holds: to be
        closed there."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT name FROM spooled_sessions s WHERE server = ? AND token = ? AND name != ? AND NOT EXISTS "
                "(SELECT 1 FROM spooled_frames f WHERE f.server = s.server AND f.session = s.name)",
                (server, token, current),
            ).fetchall()
        return [row[0] for row in rows]

    def _one(self, sql: str, parameters: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._connection.execute(sql, parameters).fetchone()
            return row

    def _execute(self, sql: str, parameters: tuple[object, ...], expect_rows: int | None = None) -> None:
        with self._lock:
            try:
                changed = self._connection.execute(sql, parameters).rowcount
            except sqlite3.Error as error:
                raise SpoolError(f"cannot write the capture spool {self.path}: {error}") from None
        assert expect_rows is None or changed == expect_rows, f"{sql}: {changed} rows changed"

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception (the connection runs in autocommit mode)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._connection.execute("COMMIT")
            return
        self._connection.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise SpoolError(f"cannot write the capture spool: {exc}") from None
