"""What the dashboard's class pages read of a class (db.classes): the classes a teacher has with their lessons
counted, one class's lessons, and which student of each lesson is which roster student.

Each is a few grouped queries over the small tables (classes, sessions, students, class_students), never the
observations: the numbers per student come from each lesson's report (analytics.term), which is computed once
and kept while its session is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, func, select

from db.classes import UnknownClassError
from db.errors import reported_as
from db.queries import SessionInfo
from db.schema import class_students, classes, sessions, students


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    teacher: str | None  # the owning teacher; None: admins only
    created_at: datetime


@dataclass(frozen=True)
class ClassOverview:
    info: ClassInfo
    lessons: int  # its sessions
    roster: int  # roster students
    first_lesson: datetime | None  # the start of its first session; None without any
    last_lesson: datetime | None


def class_overviews(engine: Engine, teacher: str | None = None) -> list[ClassOverview]:
    """Every class (or `teacher`'s), by teacher and name, with its lessons and roster counted. A lesson counts
    only while it is the class's teacher's: one an admin gave to another teacher is out of the class page too
    (dashboard.pages.classes), so the list never promises a lesson the page does not show."""
    lessons = (
        select(
            sessions.c.class_id,
            func.count().label("lessons"),
            func.min(sessions.c.started_at).label("first_lesson"),
            func.max(sessions.c.started_at).label("last_lesson"),
        )
        .join(classes, classes.c.id == sessions.c.class_id)
        .where(sessions.c.teacher.is_not_distinct_from(classes.c.teacher))
        .group_by(sessions.c.class_id)
        .subquery()
    )
    roster = (
        select(class_students.c.class_id, func.count().label("roster")).group_by(class_students.c.class_id).subquery()
    )
    statement = (
        select(
            classes,
            func.coalesce(lessons.c.lessons, 0).label("lessons"),
            lessons.c.first_lesson,
            lessons.c.last_lesson,
            func.coalesce(roster.c.roster, 0).label("roster"),
        )
        .outerjoin(lessons, lessons.c.class_id == classes.c.id)
        .outerjoin(roster, roster.c.class_id == classes.c.id)
    )
    if teacher is not None:
        statement = statement.where(classes.c.teacher == teacher)
    with reported_as("read classes from", engine.url), engine.connect() as connection:
        found = [
            ClassOverview(
                ClassInfo(row.id, row.name, row.teacher, row.created_at),
                row.lessons,
                row.roster,
                row.first_lesson,
                row.last_lesson,
            )
            for row in connection.execute(statement)
        ]
    return sorted(found, key=lambda c: (c.info.teacher or "", c.info.name.casefold(), c.info.id))


def find_class_by_id(engine: Engine, class_id: int) -> ClassInfo:
    """The class with id `class_id`; UnknownClassError otherwise."""
    with reported_as("read classes from", engine.url), engine.connect() as connection:
        row = connection.execute(select(classes).where(classes.c.id == class_id)).one_or_none()
    if row is None:
        raise UnknownClassError(f"there is no class number {class_id}")
    return ClassInfo(row.id, row.name, row.teacher, row.created_at)


def class_lessons(engine: Engine, class_id: int) -> list[SessionInfo]:
    """The class's sessions, oldest first."""
    statement = select(sessions).where(sessions.c.class_id == class_id).order_by(sessions.c.started_at, sessions.c.id)
    with reported_as("read sessions from", engine.url), engine.connect() as connection:
        return [SessionInfo(**row._mapping) for row in connection.execute(statement)]


ROSTER_COLUMNS = ["class_student_id", "name", "session_id", "student"]


def roster_links(engine: Engine, class_id: int) -> pd.DataFrame:
    """Every roster student of the class with each session student linked to them (ROSTER_COLUMNS: roster id,
    roster name, session id, the session student's key), by name; a roster student linked to no session
    student (their lessons purged) has one row with session_id and student missing. One roster student may
    have several students in one lesson (two tiles read the same name)."""
    statement = (
        select(
            class_students.c.id.label("class_student_id"),
            class_students.c.display_name.label("name"),
            students.c.session_id,
            students.c.key.label("student"),
        )
        .outerjoin(students, students.c.class_student_id == class_students.c.id)
        .where(class_students.c.class_id == class_id)
        .order_by(class_students.c.display_name, class_students.c.id, students.c.session_id, students.c.id)
    )
    with reported_as("read a class's roster from", engine.url), engine.connect() as connection:
        rows = connection.execute(statement).all()
    table = pd.DataFrame([tuple(row) for row in rows], columns=ROSTER_COLUMNS)
    return table.astype({"class_student_id": "int64", "session_id": "Int64"})
