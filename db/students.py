"""Identity fix-ups after the fact: rename a student, merge students who are one person, undo a merge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, literal, or_, select, update

from db.classes import (
    add_roster_student,
    alias_target,
    cut_short,
    normalised,
    point_alias,
    restore_alias,
    session_class,
)
from db.engine import write_transaction
from db.errors import DatabaseError, reported_as
from db.lease import leases
from db.queries import UnknownSessionError
from db.rollups import RollupRule, rebuild
from db.schema import (
    TILE_COLUMNS,
    class_students,
    observations,
    sessions,
    string_length,
    student_merge_rows,
    student_merges,
    students,
)

# The display_name column's length: refused here alike on SQLite (which would store more) and PostgreSQL.
MAX_NAME_LENGTH = string_length(students.c.display_name)
# How many student names an "unknown student" message lists.
KNOWN_STUDENTS_SHOWN = 10


class UnknownStudentError(DatabaseError):
    """No student (or more than one) of the session goes by the given key or name."""


class UnknownMergeError(DatabaseError):
    """No such merge to undo, or it cannot be undone now."""


class LiveSessionError(DatabaseError):
    """The session is still being captured, so its students cannot be merged now."""


def rename_student(engine: Engine, session_name: str, student: str, new_name: str) -> str:
    """Give the student (a key such as `tile-3`, or their current name) the display name `new_name`.
    Returns the student's key. A running capture never overwrites a name given here.

    In a session of a class, the roster follows (db.classes): the student's roster student takes the new name
    (or, when another roster student has it already, the student becomes theirs), and the name the student had
    stays an alias of it, so that the next lesson's reading of that name shows the corrected one."""
    if not new_name.strip():
        raise DatabaseError("the new name is empty")
    if len(new_name.strip()) > MAX_NAME_LENGTH:
        raise DatabaseError(f"the new name is longer than {MAX_NAME_LENGTH} characters")
    with reported_as("rename a student in", engine.url), write_transaction(engine) as connection:
        session_id = _session_id(connection, session_name)
        row = _student(connection, session_id, student)
        connection.execute(
            update(students)
            .where(students.c.id == row.id)
            .values(
                display_name=new_name.strip(),
                class_student_id=_renamed_on_roster(connection, session_id, row, new_name),
            )
        )
        key: str = row.key
        return key


def _renamed_on_roster(connection: Connection, session_id: int, row: Row[Any], new_name: str) -> int | None:
    """Carry a rename over to the session's class roster; the student's roster student after it."""
    class_id = session_class(connection, session_id)
    if class_id is None:
        return None
    target = alias_target(connection, class_id, normalised(new_name))
    if target is not None:
        roster_id = target.id
    elif row.class_student_id is not None:
        roster_id = row.class_student_id
        connection.execute(
            update(class_students).where(class_students.c.id == roster_id).values(display_name=new_name.strip())
        )
        point_alias(connection, class_id, normalised(new_name), roster_id)
    else:
        roster_id = add_roster_student(connection, class_id, new_name.strip()).id
    if row.display_name is not None and cut_short(row.display_name) is None:
        point_alias(connection, class_id, normalised(row.display_name), roster_id)
    return roster_id


@dataclass(frozen=True)
class Merge:
    """A standing merge: `dropped`'s observations are `kept`'s (keys; `dropped_name` the name they had)."""

    id: int
    kept: str
    dropped: str
    dropped_name: str | None
    moved: int  # observations moved
    merged_by: str | None  # the dashboard user; None from the command line
    merged_at: datetime


def merge_students(engine: Engine, session_name: str, keep: str, drop: str, merged_by: str | None = None) -> Merge:
    """Make `drop`'s observations `keep`'s and remove `drop` (both a key or a current name), keeping what
    undo_merge needs to restore both exactly. Refused while the session is being captured (no end time, or a
    live capture's lease): the capture would go on writing to the removed student."""
    return merge_many(engine, session_name, keep, [drop], merged_by)[0]


def merge_many(
    engine: Engine, session_name: str, keep: str, drops: Sequence[str], merged_by: str | None = None
) -> list[Merge]:
    """merge_students of every one of `drops` into `keep`, all or none (one transaction), in the given order."""
    if not drops:
        raise UnknownStudentError("no student to merge was given")
    with reported_as("merge students in", engine.url), write_transaction(engine) as connection:
        session_id = _ended_session(connection, session_name, "merge")
        kept = _student(connection, session_id, keep)
        done = []
        for drop in drops:
            dropped = _student(connection, session_id, drop)
            if kept.id == dropped.id:
                raise UnknownStudentError(f"{keep!r} and {drop!r} are the same student ({kept.key})")
            done.append(_merge(connection, session_id, kept, dropped, merged_by))
            kept = _student(connection, session_id, kept.key)
        _recount_rollups(connection, session_id)
        return done


def _merge(connection: Connection, session_id: int, kept: Row[Any], dropped: Row[Any], merged_by: str | None) -> Merge:
    now = datetime.now(UTC)
    merge_id = connection.execute(
        insert(student_merges)
        .values(
            session_id=session_id,
            kept_key=kept.key,
            kept_name=kept.display_name,
            kept_first_seen=kept.first_seen,
            kept_last_seen=kept.last_seen,
            dropped_id=dropped.id,
            dropped_key=dropped.key,
            dropped_name=dropped.display_name,
            **{f"dropped_{column}": getattr(dropped, column) for column in TILE_COLUMNS},
            dropped_first_seen=dropped.first_seen,
            dropped_last_seen=dropped.last_seen,
            moved=0,
            merged_by=merged_by,
            merged_at=now,
            kept_class_student_id=kept.class_student_id,
            dropped_class_student_id=dropped.class_student_id,
            **_merged_on_roster(connection, session_id, kept, dropped),
        )
        .returning(student_merges.c.id)
    ).scalar_one()
    # Which rows were the dropped student's, written in the database: a student of a long class has thousands.
    theirs = select(literal(merge_id), observations.c.id).where(observations.c.student_id == dropped.id)
    connection.execute(insert(student_merge_rows).from_select(["merge_id", "observation_id"], theirs))
    moved = connection.execute(
        update(observations).where(observations.c.student_id == dropped.id).values(student_id=kept.id)
    ).rowcount
    connection.execute(update(student_merges).where(student_merges.c.id == merge_id).values(moved=moved))
    connection.execute(
        update(students)
        .where(students.c.id == kept.id)
        .values(
            **_merged_values(
                kept.display_name,
                (kept.first_seen, kept.last_seen),
                dropped.display_name,
                (dropped.first_seen, dropped.last_seen),
            ),
            class_student_id=_kept_roster_student(kept, dropped),
        )
    )
    connection.execute(delete(students).where(students.c.id == dropped.id))
    return Merge(merge_id, kept.key, dropped.key, dropped.display_name, moved, merged_by, now)


def _kept_roster_student(kept: Row[Any], dropped: Row[Any]) -> int | None:
    """The kept student's roster student after a merge: their own, or with the dropped one's name theirs."""
    chosen: int | None = kept.class_student_id if kept.display_name is not None else dropped.class_student_id
    return chosen


def _merged_on_roster(connection: Connection, session_id: int, kept: Row[Any], dropped: Row[Any]) -> dict[str, Any]:
    """Make the dropped student's name an alias of the kept one's roster student, so that the next lesson's
    reading of it is the kept student; the alias and whom it meant before, for the undo."""
    class_id = session_class(connection, session_id)
    kept_roster = _kept_roster_student(kept, dropped)
    if (
        class_id is None
        or kept_roster is None
        or dropped.display_name is None
        or cut_short(dropped.display_name) is not None
        or kept_roster == dropped.class_student_id
    ):
        return {"roster_alias": None, "roster_alias_was": None}
    alias = normalised(dropped.display_name)
    before = point_alias(connection, class_id, alias, kept_roster)
    if before == kept_roster:
        return {"roster_alias": None, "roster_alias_was": None}
    return {"roster_alias": alias, "roster_alias_was": before}


def _merged_values(
    kept_name: str | None,
    kept_times: tuple[datetime, datetime],
    dropped_name: str | None,
    dropped_times: tuple[datetime, datetime],
) -> dict[str, Any]:
    """The kept student's name and first and last seen after a merge: their own name if they had one."""
    return {
        "display_name": kept_name if kept_name is not None else dropped_name,
        "first_seen": min(kept_times[0], dropped_times[0]),
        "last_seen": max(kept_times[1], dropped_times[1]),
    }


def standing_merges(engine: Engine, session_id: int) -> list[Merge]:
    """The session's merges that have not been undone, the latest first."""
    statement = (
        select(student_merges).where(student_merges.c.session_id == session_id).order_by(student_merges.c.id.desc())
    )
    with reported_as("read merges from", engine.url), engine.connect() as connection:
        return [_as_merge(row) for row in connection.execute(statement)]


def undo_merge(engine: Engine, session_name: str, merge_id: int | None = None) -> list[Merge]:
    """Undo the merge `merge_id` of the session (None: its latest): the dropped student comes back with their
    id, key, name, tile, first and last seen, the observations that were theirs are theirs again, and the kept
    student gets back the name and times they had (a name given since is kept). Returns the merges undone.

    A merge is undone only after every later one involving its kept student (undo those first), and like a
    merge only while nobody captures the session."""
    with reported_as("undo a merge in", engine.url), write_transaction(engine) as connection:
        session_id = _ended_session(connection, session_name, "undo a merge")
        chosen = select(student_merges).where(student_merges.c.session_id == session_id)
        if merge_id is None:
            row = connection.execute(chosen.order_by(student_merges.c.id.desc()).limit(1)).one_or_none()
            if row is None:
                raise UnknownMergeError(f"session {session_name!r} has no merge to undo")
        else:
            row = connection.execute(chosen.where(student_merges.c.id == merge_id)).one_or_none()
            if row is None:
                raise UnknownMergeError(f"session {session_name!r} has no merge {merge_id} to undo")
        _undo(connection, session_id, row)
        _recount_rollups(connection, session_id)
        return [_as_merge(row)]


def undo_merges(engine: Engine, session_name: str, merge_ids: Sequence[int]) -> list[Merge]:
    """undo_merge of each of `merge_ids` (a merge_many), latest first, all or none."""
    with reported_as("undo a merge in", engine.url), write_transaction(engine) as connection:
        session_id = _ended_session(connection, session_name, "undo a merge")
        rows = connection.execute(
            select(student_merges)
            .where(student_merges.c.session_id == session_id, student_merges.c.id.in_(list(merge_ids)))
            .order_by(student_merges.c.id.desc())
        ).all()
        if len(rows) != len(set(merge_ids)):
            raise UnknownMergeError("that merge has already been undone")
        for row in rows:
            _undo(connection, session_id, row)
        _recount_rollups(connection, session_id)
        return [_as_merge(row) for row in rows]


def _undo(connection: Connection, session_id: int, merge: Row[Any]) -> None:
    later = connection.execute(
        select(student_merges.c.id, student_merges.c.kept_key, student_merges.c.dropped_key)
        .where(
            student_merges.c.session_id == session_id,
            student_merges.c.id > merge.id,
            or_(
                student_merges.c.kept_key.in_([merge.kept_key, merge.dropped_key]),
                student_merges.c.dropped_key.in_([merge.kept_key, merge.dropped_key]),
            ),
        )
        .order_by(student_merges.c.id.desc())
        .limit(1)
    ).one_or_none()
    if later is not None:
        raise UnknownMergeError(
            f"{later.dropped_key} was merged into {later.kept_key} after this merge; undo that merge first"
        )
    taken = connection.scalar(
        select(students.c.id).where(
            students.c.session_id == session_id,
            or_(students.c.key == merge.dropped_key, students.c.id == merge.dropped_id),
        )
    )
    if taken is not None:
        raise UnknownMergeError(f"the session has a student {merge.dropped_key} again; the merge cannot be undone")
    kept = _student(connection, session_id, merge.kept_key)
    connection.execute(
        insert(students).values(
            id=merge.dropped_id,
            session_id=session_id,
            key=merge.dropped_key,
            display_name=merge.dropped_name,
            **{column: getattr(merge, f"dropped_{column}") for column in TILE_COLUMNS},
            first_seen=merge.dropped_first_seen,
            last_seen=merge.dropped_last_seen,
            class_student_id=merge.dropped_class_student_id,
        )
    )
    class_id = session_class(connection, session_id)
    if merge.roster_alias is not None and class_id is not None:
        restore_alias(connection, class_id, merge.roster_alias, merge.roster_alias_was)
    theirs = select(student_merge_rows.c.observation_id).where(student_merge_rows.c.merge_id == merge.id)
    connection.execute(
        update(observations)
        .where(observations.c.id.in_(theirs), observations.c.student_id == kept.id)
        .values(student_id=merge.dropped_id)
    )
    merged = _merged_values(
        merge.kept_name,
        (merge.kept_first_seen, merge.kept_last_seen),
        merge.dropped_name,
        (merge.dropped_first_seen, merge.dropped_last_seen),
    )
    restored: dict[str, Any] = {}
    if kept.display_name == merged["display_name"]:  # else a name given since the merge stays
        restored |= {"display_name": merge.kept_name, "class_student_id": merge.kept_class_student_id}
    if (kept.first_seen, kept.last_seen) == (merged["first_seen"], merged["last_seen"]):
        # Else the session went on after the merge, and the kept student's later rows moved their times.
        restored |= {"first_seen": merge.kept_first_seen, "last_seen": merge.kept_last_seen}
    if restored:
        connection.execute(update(students).where(students.c.id == kept.id).values(**restored))
    connection.execute(update(sessions).where(sessions.c.id == session_id).values(mean_engagement=None))
    connection.execute(delete(student_merges).where(student_merges.c.id == merge.id))


def _recount_rollups(connection: Connection, session_id: int) -> None:
    # The roll-ups count per student: moved rows move their bins. Once per transaction, however many merges it
    # made or undid: a recount reads the whole session.
    rebuild(connection, RollupRule.configured(), session_id)


def _as_merge(row: Row[Any]) -> Merge:
    return Merge(row.id, row.kept_key, row.dropped_key, row.dropped_name, row.moved, row.merged_by, row.merged_at)


def _ended_session(connection: Connection, session_name: str, action: str) -> int:
    """The id of the session called `session_name`, locked for the change; LiveSessionError while a capture
    writes it."""
    session_id = _session_id(connection, session_name)
    # FOR UPDATE (PostgreSQL): a capture taking up the session meanwhile waits until the change is done; the
    # lease is read after this lock (db.lease).
    ended_at = connection.scalar(select(sessions.c.ended_at).where(sessions.c.id == session_id).with_for_update())
    lease = leases(connection, [session_id]).get(session_id)
    if lease is not None and lease.holds(datetime.now(UTC)):
        raise LiveSessionError(f"{lease.busy_message(session_name)}; stop it, then {action}")
    if ended_at is None:
        raise LiveSessionError(
            f"session {session_name!r} is still being captured (it has no end time); stop the capture, then {action}"
        )
    # One student's frames more or fewer: the class score changes with it.
    connection.execute(update(sessions).where(sessions.c.id == session_id).values(mean_engagement=None))
    return session_id


def _session_id(connection: Connection, name: str) -> int:
    session_id: int | None = connection.scalar(select(sessions.c.id).where(sessions.c.name == name))
    if session_id is None:
        raise UnknownSessionError(f"no session named {name!r}")
    return session_id


def _student(connection: Connection, session_id: int, student: str) -> Row[Any]:
    """The session's student with key `student`, else the one student whose display name it is."""
    columns = (
        students.c.id,
        students.c.key,
        students.c.display_name,
        *(students.c[column] for column in TILE_COLUMNS),
        students.c.first_seen,
        students.c.last_seen,
        students.c.class_student_id,
    )
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
