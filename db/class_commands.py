"""`python -m db classes list|show NAME|forget NAME`: the classes and their rosters (db.classes)."""

from __future__ import annotations

import argparse
import sys

from db.arguments import text
from db.classes import forget_class, list_classes, show_class
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade

PROG = "python -m db classes"


def add_classes_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    classes = commands.add_parser("classes", help="the classes, their rosters of students, and forgetting one")
    actions = classes.add_subparsers(dest="action", required=True)
    listed = actions.add_parser("list", help="every class: teacher, sessions, roster size")
    show = actions.add_parser("show", help="a class's roster (names and the readings that mean them) and sessions")
    forget = actions.add_parser(
        "forget", help="remove a class's roster and aliases (the sessions stay, until purged, with their names)"
    )
    for action in (show, forget):
        action.add_argument("name", type=text, metavar="NAME", help="the class's name")
    for action in (listed, show, forget):
        action.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
        action.add_argument("--teacher", type=text, default=None, metavar="USER", help="only this teacher's classes")


def run_classes(args: argparse.Namespace) -> int:
    try:
        engine = upgrade(args.db)
        if args.action == "list":
            found = list_classes(engine, args.teacher)
            for c in found:
                print(
                    f"{c.name}  teacher={c.teacher or '(admins)'}  sessions={c.sessions}  roster={c.roster}  "
                    f"since={c.created_at:%Y-%m-%d}"
                )
            print(f"{len(found)} class(es)")
        elif args.action == "show":
            detail = show_class(engine, args.name, args.teacher)
            summary = detail.summary
            print(
                f"class {summary.name!r} of {summary.teacher or '(admins)'}: {summary.roster} student(s) on the roster"
            )
            for student in detail.roster:
                also = f"  also read as: {', '.join(student.aliases)}" if student.aliases else ""
                print(f"  {student.name}  (in {student.sessions} session(s)){also}")
            print(f"{len(detail.sessions)} session(s):")
            for lesson in detail.sessions:
                print(f"  {lesson.name}  {lesson.started_at:%Y-%m-%d %H:%M} UTC  {lesson.students} student(s)")
        else:
            removed, aliases = forget_class(engine, args.name, args.teacher)
            print(f"forgot the roster of class {args.name!r}: {removed} student(s), {aliases} name reading(s)")
    except DatabaseError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0
