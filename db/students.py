"""Identity fix-ups after the fact: rename a student, or merge two students who are one person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, select, update

from db.engine import write_transaction
from db.errors import DatabaseError, reported_as
from db.lease import leases
from db.queries import UnknownSessionError
from db.schema import observations, sessions, string_length, students

# The display_name column's length: refused here alike on SQLite (which would store more) and PostgreSQL.
MAX_NAME_LENGTH = string_length(students.c.display_name)
# How many student names an "unknown student" message lists.
KNOWN_STUDENTS_SHOWN = 10


class UnknownStudentError(DatabaseError):
    """No student (or more than one) of the session goes by the given key or name."""


class LiveSessionError(DatabaseError):
    """The session is still being captured, so its students cannot be merged now."""


def rename_student(engine: Engine, session_name: str, student: str, new_name: str) -> str:
    """Give the student (a key such as `tile-3`, or their current name) the display name `new_name`.
    Returns the student's key. A running capture never overwrites a name given here."""
    if not new_name.strip():
        raise DatabaseError("the new name is empty")
    if len(new_name.strip()) > MAX_NAME_LENGTH:
        raise DatabaseError(f"the new name is longer than {MAX_NAME_LENGTH} characters")
    with reported_as("rename a student in", engine.url), write_transaction(engine) as connection:
        session_id = _session_id(connection, session_name)
        row = _student(connection, session_id, student)
        connection.execute(update(students).where(students.c.id == row.id).values(display_name=new_name.strip()))
        key: str = row.key
        return key


def merge_students(engine: Engine, session_name: str, keep: str, drop: str) -> int:
    """Make `drop`'s observations `keep`'s and remove `drop` (both a key or a current name).
    Returns how many observations moved. Refused while the session is being captured (no end time): the
    capture would go on writing to the removed student."""
    with reported_as("merge students in", engine.url), write_transaction(engine) as connection:
        session_id = _session_id(connection, session_name)
        kept, dropped = _student(connection, session_id, keep), _student(connection, session_id, drop)
        if kept.id == dropped.id:
            raise UnknownStudentError(f"{keep!r} and {drop!r} are the same student ({kept.key})")
        # FOR UPDATE (PostgreSQL): a capture taking up the session meanwhile waits until the merge is done; the
        # lease is read after this lock (db.lease).
        ended_at = connection.scalar(select(sessions.c.ended_at).where(sessions.c.id == session_id).with_for_update())
        lease = leases(connection, [session_id]).get(session_id)
        if lease is not None and lease.holds(datetime.now(UTC)):
            raise LiveSessionError(f"{lease.busy_message(session_name)}; stop it, then merge")
        if ended_at is None:
            raise LiveSessionError(
                f"session {session_name!r} is still being captured (it has no end time); stop the capture, then merge"
            )
        moved = connection.execute(
            update(observations).where(observations.c.student_id == dropped.id).values(student_id=kept.id)
        ).rowcount
        # One student's frames fewer: the class score changes with it.
        connection.execute(update(sessions).where(sessions.c.id == session_id).values(mean_engagement=None))
        connection.execute(
            update(students)
            .where(students.c.id == kept.id)
            .values(
                display_name=func.coalesce(students.c.display_name, dropped.display_name),
                first_seen=min(kept.first_seen, dropped.first_seen),
                last_seen=max(kept.last_seen, dropped.last_seen),
            )
        )
        connection.execute(delete(students).where(students.c.id == dropped.id))
        return moved


def _session_id(connection: Connection, name: str) -> int:
    session_id: int | None = connection.scalar(select(sessions.c.id).where(sessions.c.name == name))
    if session_id is None:
        raise UnknownSessionError(f"no session named {name!r}")
    return session_id


def _student(connection: Connection, session_id: int, student: str) -> Row[Any]:
    """The session's student with key `student`, else the one student whose display name it is."""
    columns = (students.c.id, students.c.key, students.c.display_name, students.c.first_seen, students.c.last_seen)
    in_session = select(*columns).where(students.c.session_id == session_id)
    row = connection.execute(in_session.where(students.c.key == student)).one_or_none()
    if row is not None:
        return row
    named = connection.execute(in_session.where(students.c.display_name == student)).all()
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        keys = ", ".join(r.key for r in named)
        raise UnknownStudentError(f"{len(named)} students are called {student!r} ({keys}); give one of their keys")
    known = connection.execute(in_session.order_by(students.c.id).limit(KNOWN_STUDENTS_SHOWN)).all()
    listed = ", ".join(r.key if r.display_name is None else f"{r.key} ({r.display_name})" for r in known)
    raise UnknownStudentError(f"no student {student!r} in this session; known: {listed or 'none'}")
