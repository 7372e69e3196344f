"""Classes and their rosters: the sessions of one class (`capture --class NAME`) share a roster of students, so
that a student named in one lesson is the same student in the next, and a teacher's fix of a name carries over.

A roster student has a display name and aliases: the names as OCR reads them (normalised) that mean them: their
own name, a reading a teacher's rename corrected (db.students.rename_student), a name a merge dropped. A session's
student is linked to the roster student whose alias their name read is (students.class_student_id), and shown
with the roster name. A label cut short ("Alexandr…") means the one roster student whose alias it begins, if just
one; otherwise it stays unlinked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import write_transaction
from db.errors import DatabaseError, reported_as
from db.lease import SessionBusyError, leases
from db.purge import checkpoint, overwrite_deleted_data
from db.schema import (
    class_student_aliases,
    class_students,
    classes,
    sessions,
    string_length,
    student_merges,
    students,
)

MAX_CLASS_NAME_LENGTH = string_length(classes.c.name)
# How OCR and apps mark a label too long for its tile.
CUT_SHORT_MARKS = ("…", "...")


class UnknownClassError(DatabaseError):
    """No class (or more than one) goes by the given name."""


def normalised(name: str) -> str:
    """A name as the roster compares it: case folded, runs of spaces one space, no spaces around."""
    return " ".join(name.casefold().split())


def cut_short(name: str) -> str | None:
    """The normalised beginning of a label cut short ("Alexandr…" -> "alexandr"); None for a whole name."""
    stripped = name.strip()
    for mark in CUT_SHORT_MARKS:
        if stripped.endswith(mark):
            return normalised(stripped.removesuffix(mark)) or None
    return None


def class_for(connection: Connection, name: str, teacher: str | None) -> int:
    """The id of `teacher`'s class called `name`, created when new."""
    name = name.strip()
    found = _class_id(connection, name, teacher)
    if found is not None:
        return found
    try:
        # A savepoint: a capture of the same class starting at the same moment may create it first.
        with connection.begin_nested():
            created: int = connection.execute(
                insert(classes).values(name=name, teacher=teacher, created_at=datetime.now(UTC)).returning(classes.c.id)
            ).scalar_one()
            return created
    except IntegrityError:
        again = _class_id(connection, name, teacher)
        if again is None:
            raise
        return again


def _class_id(connection: Connection, name: str, teacher: str | None) -> int | None:
    owner = classes.c.teacher.is_(None) if teacher is None else classes.c.teacher == teacher
    found: int | None = connection.scalar(select(classes.c.id).where(classes.c.name == name, owner))
    return found


def session_class(connection: Connection, session_id: int) -> int | None:
    found: int | None = connection.scalar(select(sessions.c.class_id).where(sessions.c.id == session_id))
    return found


@dataclass(frozen=True)
class RosterStudent:
    id: int
    display_name: str
    added: bool = False  # added to the roster by the call that answered it: the name was new


def roster_student(connection: Connection, class_id: int, read: str) -> RosterStudent | None:
    """The roster student of the class a name read in one of its sessions means, added to the roster when new.
    None for a label cut short that begins no alias, or the aliases of several roster students."""
    prefix = cut_short(read)
    if prefix is not None:
        matches = connection.execute(
            select(class_students.c.id, class_students.c.display_name)
            .join(class_student_aliases, class_student_aliases.c.class_student_id == class_students.c.id)
            .where(class_student_aliases.c.class_id == class_id)
            .where(func.substr(class_student_aliases.c.alias, 1, len(prefix)) == prefix)
            .distinct()
        ).all()
        return RosterStudent(matches[0].id, matches[0].display_name) if len(matches) == 1 else None
    found = alias_target(connection, class_id, normalised(read))
    if found is not None:
        return found
    return add_roster_student(connection, class_id, read.strip())


def alias_target(connection: Connection, class_id: int, alias: str) -> RosterStudent | None:
    """The roster student `alias` (normalised) means in the class, if any."""
    row = connection.execute(
        select(class_students.c.id, class_students.c.display_name)
        .join(class_student_aliases, class_student_aliases.c.class_student_id == class_students.c.id)
        .where(class_student_aliases.c.class_id == class_id, class_student_aliases.c.alias == alias)
    ).one_or_none()
    return None if row is None else RosterStudent(row.id, row.display_name)


def add_roster_student(connection: Connection, class_id: int, display_name: str) -> RosterStudent:
    """A new roster student and their name as their first alias; the existing one if a concurrent capture of
    the class added that name first."""
    try:
        with connection.begin_nested():
            created = connection.execute(
                insert(class_students)
                .values(class_id=class_id, display_name=display_name, created_at=datetime.now(UTC))
                .returning(class_students.c.id)
            ).scalar_one()
            connection.execute(
                insert(class_student_aliases).values(
                    class_id=class_id, alias=normalised(display_name), class_student_id=created
                )
            )
            return RosterStudent(created, display_name, added=True)
    except IntegrityError:
        found = alias_target(connection, class_id, normalised(display_name))
        if found is None:
            raise
        return found


def point_alias(connection: Connection, class_id: int, alias: str, class_student_id: int) -> int | None:
    """Make `alias` (normalised) mean the roster student `class_student_id`; the one it meant before (None: new)."""
    before: int | None = connection.scalar(
        select(class_student_aliases.c.class_student_id).where(
            class_student_aliases.c.class_id == class_id, class_student_aliases.c.alias == alias
        )
    )
    if before is None:
        connection.execute(
            insert(class_student_aliases).values(class_id=class_id, alias=alias, class_student_id=class_student_id)
        )
    elif before != class_student_id:
        connection.execute(
            update(class_student_aliases)
            .where(class_student_aliases.c.class_id == class_id, class_student_aliases.c.alias == alias)
            .values(class_student_id=class_student_id)
        )
    return before


def restore_alias(connection: Connection, class_id: int, alias: str, meant: int | None) -> None:
    """Give `alias` back the roster student it meant (`meant`), or remove it (None: it was new)."""
    chosen = (class_student_aliases.c.class_id == class_id) & (class_student_aliases.c.alias == alias)
    if meant is None:
        connection.execute(delete(class_student_aliases).where(chosen))
    else:
        connection.execute(update(class_student_aliases).where(chosen).values(class_student_id=meant))


def overrule_reading(connection: Connection, class_id: int, overruled: int, meant: int | None) -> None:
    """The capture's vote changed a student's name from a reading for which the capture added the roster student
    `overruled` (RosterStudent.added) to one that links them to `meant` (None: to nobody). When `overruled` is
    nobody's since (no session's student, no merge names them), they are removed, and their readings mean
    `meant` from now on: OCR's first misreading ("Zoe Clien") leaves no stray roster student, and shows as the
    true name when it is read again in a later lesson."""
    if overruled == meant:
        return
    merged = (
        (student_merges.c.kept_class_student_id == overruled)
        | (student_merges.c.dropped_class_student_id == overruled)
        | (student_merges.c.roster_alias_was == overruled)
    )
    linked = select(students.c.id).where(students.c.class_student_id == overruled).limit(1)
    if connection.scalar(linked) is not None or connection.scalar(select(student_merges.c.id).where(merged).limit(1)):
        return
    if meant is not None:
        connection.execute(
            update(class_student_aliases)
            .where(class_student_aliases.c.class_id == class_id, class_student_aliases.c.class_student_id == overruled)
            .values(class_student_id=meant)
        )
    connection.execute(delete(class_students).where(class_students.c.id == overruled))


@dataclass(frozen=True)
class ClassSummary:
    name: str
    teacher: str | None
    sessions: int
    roster: int  # roster students
    created_at: datetime


@dataclass(frozen=True)
class RosterEntry:
    name: str
    aliases: list[str]  # the readings besides their own name, normalised
    sessions: int  # sessions of the class they were seen in


@dataclass(frozen=True)
class ClassSession:
    name: str
    started_at: datetime
    students: int


@dataclass(frozen=True)
class ClassDetail:
    summary: ClassSummary
    roster: list[RosterEntry]
    sessions: list[ClassSession]


def list_classes(engine: Engine, teacher: str | None = None) -> list[ClassSummary]:
    """Every class (or `teacher`'s), by teacher and name."""
    with reported_as("read classes from", engine.url), engine.connect() as connection:
        chosen = select(classes.c.id)
        if teacher is not None:
            chosen = chosen.where(classes.c.teacher == teacher)
        ids = list(connection.scalars(chosen))
        found = [_summary(connection, class_id) for class_id in ids]
    return sorted(found, key=lambda c: (c.teacher or "", c.name))


def _summary(connection: Connection, class_id: int) -> ClassSummary:
    row = connection.execute(select(classes).where(classes.c.id == class_id)).one()
    count_sessions = select(func.count()).select_from(sessions).where(sessions.c.class_id == class_id)
    count_roster = select(func.count()).select_from(class_students).where(class_students.c.class_id == class_id)
    return ClassSummary(
        row.name,
        row.teacher,
        connection.scalar(count_sessions) or 0,
        connection.scalar(count_roster) or 0,
        row.created_at,
    )


def show_class(engine: Engine, name: str, teacher: str | None = None) -> ClassDetail:
    """The class called `name` (of `teacher`, when several teachers have one so called): its roster, each
    student's aliases and sessions, and its sessions."""
    with reported_as("read a class from", engine.url), engine.connect() as connection:
        class_id = find_class(connection, name, teacher)
        roster = []
        for student in connection.execute(
            select(class_students.c.id, class_students.c.display_name)
            .where(class_students.c.class_id == class_id)
            .order_by(class_students.c.display_name, class_students.c.id)
        ):
            aliases = connection.scalars(
                select(class_student_aliases.c.alias)
                .where(class_student_aliases.c.class_student_id == student.id)
                .order_by(class_student_aliases.c.alias)
            )
            seen_in = select(func.count(func.distinct(students.c.session_id))).where(
                students.c.class_student_id == student.id
            )
            own = normalised(student.display_name)
            roster.append(
                RosterEntry(student.display_name, [a for a in aliases if a != own], connection.scalar(seen_in) or 0)
            )
        per_session = (
            select(sessions.c.name, sessions.c.started_at, func.count(students.c.id).label("students"))
            .outerjoin(students, students.c.session_id == sessions.c.id)
            .where(sessions.c.class_id == class_id)
            .group_by(sessions.c.id, sessions.c.name, sessions.c.started_at)
            .order_by(sessions.c.started_at, sessions.c.name)
        )
        lessons = [ClassSession(row.name, row.started_at, row.students) for row in connection.execute(per_session)]
        return ClassDetail(_summary(connection, class_id), roster, lessons)


def forget_class(engine: Engine, name: str, teacher: str | None = None) -> tuple[int, int]:
    """Remove the class's roster: every roster student and alias (the class and its sessions stay, and their
    students keep the names stored in each session until those sessions are purged). Refused while one of the
    class's sessions is being captured, which would add names back at once. Returns (students, aliases) removed."""
    with reported_as("forget a class in", engine.url), write_transaction(engine) as connection:
        overwrite_deleted_data(connection)
        class_id = find_class(connection, name, teacher)
        # FOR UPDATE (PostgreSQL): a capture taking up one of these sessions waits; leases are read after it.
        lessons = connection.execute(
            select(sessions.c.id, sessions.c.name).where(sessions.c.class_id == class_id).with_for_update()
        ).all()
        now = datetime.now(UTC)
        held = leases(connection, [row.id for row in lessons])
        for row in lessons:
            if row.id in held and held[row.id].holds(now):
                raise SessionBusyError(f"{held[row.id].busy_message(row.name)}; stop it, then forget the class")
        roster = select(class_students.c.id).where(class_students.c.class_id == class_id)
        connection.execute(
            update(students).where(students.c.class_student_id.in_(roster)).values(class_student_id=None)
        )
        aliases = connection.execute(
            delete(class_student_aliases).where(class_student_aliases.c.class_id == class_id)
        ).rowcount
        removed = connection.execute(delete(class_students).where(class_students.c.class_id == class_id)).rowcount
    if engine.dialect.name == "sqlite":
        checkpoint(engine)
    return removed, aliases


def find_class(connection: Connection, name: str, teacher: str | None) -> int:
    """The id of the class called `name` (of `teacher` if given); UnknownClassError naming the choices."""
    chosen = select(classes.c.id, classes.c.teacher).where(classes.c.name == name.strip())
    if teacher is not None:
        chosen = chosen.where(classes.c.teacher == teacher)
    rows = connection.execute(chosen).all()
    if len(rows) == 1:
        found: int = rows[0].id
        return found
    if rows:
        owners = ", ".join(sorted(row.teacher or "(admins)" for row in rows))
        raise UnknownClassError(f"{len(rows)} classes are called {name!r} (teachers {owners}); give --teacher")
    known = connection.scalars(select(classes.c.name).distinct().order_by(classes.c.name).limit(10)).all()
    whose = "" if teacher is None else f" of {teacher!r}"
    raise UnknownClassError(f"no class named {name!r}{whose}; known: {', '.join(known) or 'none'}")
