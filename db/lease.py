"""One live writer per session: the capture writing a session holds a lease on it (a row of session_writers),
renewed while it runs and deleted when it closes the session.

A second capture of the session, a purge and a merge see the lease at once and refuse. A writer killed
without closing (SIGKILL, a power cut) leaves a lease that ends by itself LEASE_SECONDS after its last
renewal, or at once for a writer on this machine whose process is gone. The times are the writers' own
clocks: machines writing one PostgreSQL database should keep their clocks in sync (NTP).

Callers lock the session's row first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transaction locks
the whole file) and read the lease afterwards, in a statement of its own: a capture taking the lease
meanwhile has then committed it, and is seen.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update

from db.errors import DatabaseError, reported_as
from db.schema import session_writers

LEASE_SECONDS = 30.0
# Three renewals per lease: one or two missed (a busy database) do not lose it.
RENEW_EVERY_S = LEASE_SECONDS / 3


class SessionBusyError(DatabaseError):
    """Another capture is writing the session right now."""


class LeaseLostError(DatabaseError):
    """This capture's lease ended (it could not renew it in time, or the session is gone): it must stop writing."""


@dataclass(frozen=True)
class Lease:
    writer: str  # "host:pid:token"
    until: datetime

    def holds(self, now: datetime) -> bool:
        """Whether its writer may still be writing at `now`: the lease has not ended, and a writer on this
        machine still runs."""
        if self.until <= now:
            return False
        host, pid, _ = self.writer.rsplit(":", 2)
        return host != socket.gethostname() or _process_exists(int(pid))

    def busy_message(self, session_name: str) -> str:
        host, pid, _ = self.writer.rsplit(":", 2)
        return (
            f"session {session_name!r} is still being captured, by process {pid} on {host} "
            f"(if that capture was killed, its lease ends at {self.until:%H:%M:%S} UTC)"
        )


def new_writer() -> str:
    """This process's writer name: its machine and process id (so a dead process is seen at once), and a
    random part (so two writers in one process are told apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def leases(connection: Connection, session_ids: list[int]) -> dict[int, Lease]:
    """The leases held on those sessions, ended ones included (see Lease.holds)."""
    rows = connection.execute(select(session_writers).where(session_writers.c.session_id.in_(session_ids)))
    return {row.session_id: Lease(row.writer, row.until) for row in rows}


def take(connection: Connection, session_id: int, session_name: str, writer: str) -> None:
    """Make `writer` the session's writer; SessionBusyError while another one holds it. The session's row must
    be locked by the caller's transaction (see the module docstring)."""
    held = leases(connection, [session_id]).get(session_id)
    if held is not None and held.holds(datetime.now(UTC)):
        raise SessionBusyError(held.busy_message(session_name))
    connection.execute(delete(session_writers).where(session_writers.c.session_id == session_id))
    connection.execute(insert(session_writers).values(session_id=session_id, writer=writer, until=_lease_end()))


def renew(connection: Connection, session_id: int, writer: str) -> None:
    """Extend `writer`'s lease; LeaseLostError when it is no longer theirs (or the session is gone)."""
    mine = (session_writers.c.session_id == session_id) & (session_writers.c.writer == writer)
    if connection.execute(update(session_writers).where(mine).values(until=_lease_end())).rowcount == 0:
        raise LeaseLostError(
            "this capture lost its session: another process took it over or purged it while this one could not "
            "renew its lease; the frames written before stay"
        )


def release(connection: Connection, session_id: int, writer: str) -> bool:
    """End `writer`'s lease; False when it had already lost it."""
    mine = (session_writers.c.session_id == session_id) & (session_writers.c.writer == writer)
    return connection.execute(delete(session_writers).where(mine)).rowcount == 1


class Heartbeat:
    """Renews a lease every RENEW_EVERY_S seconds from a thread, so it holds between frames however slowly they
    come (a low --fps, a long analysis). A failed renewal is left to the next one: the writer's own next frame
    reports a lease that was lost."""

    def __init__(self, engine: Engine, session_id: int, writer: str) -> None:
        self._engine = engine
        self._session_id = session_id
        self._writer = writer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            try:
                with reported_as("renew the session lease in", self._engine.url), self._engine.begin() as connection:
                    renew(connection, self._session_id, self._writer)
            except DatabaseError:
                continue


def _lease_end() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
