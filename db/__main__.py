"""`python -m db`: database maintenance.

`python -m db purge --db URL (--older-than-days N | --session NAME)`: remove sessions completely.
`python -m db retention --days N [--db URL]`: keep N days (PostgreSQL: drop older days' partitions whole).
`python -m db partitions [--db URL]`: create the days' partitions ahead of today (PostgreSQL; daily, by cron).
`python -m db students rename --db URL --session NAME OLD NEW`: give a student a display name.
`python -m db students merge --db URL --session NAME KEEP DROP`: make two students one.
`python -m db students undo-merge --db URL --session NAME [MERGE]`: undo the session's latest merge (or MERGE).
`python -m db classes list|show NAME|forget NAME [--db URL] [--teacher USER]`: classes and their rosters.
"""

from __future__ import annotations

import argparse
import sys

import config
from db.arguments import days, text
from db.class_commands import add_classes_commands, run_classes
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.partitions import keep_ahead
from db.purge import purge_older_than, purge_session, retain
from db.students import merge_students, rename_student, undo_merge

PROG = "python -m db"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    purge = commands.add_parser(
        "purge", help="remove sessions with every row they own (observations, frames, students)"
    )
    purge.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--older-than-days", type=days, metavar="N", help="every session that ended more than N days ago"
    )
    which.add_argument("--session", type=text, metavar="NAME", help="the session called NAME")
    retention = commands.add_parser(
        "retention", help="keep N days: drop older days whole (PostgreSQL) and purge sessions ended before"
    )
    retention.add_argument("--days", type=days, required=True, metavar="N", help="the days of rows to keep")
    ahead = commands.add_parser("partitions", help="create the days' partitions ahead of today (PostgreSQL)")
    for command in (retention, ahead):
        command.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    _add_students_commands(commands)
    add_classes_commands(commands)
    return parser.parse_args(argv)


def _add_students_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    students = commands.add_parser("students", help="fix students' identities after a session")
    actions = students.add_subparsers(dest="action", required=True)
    rename = actions.add_parser("rename", help="give a student a display name")
    rename.add_argument("old", type=text, metavar="OLD", help="the student's key (e.g. tile-3) or current name")
    rename.add_argument("new", type=text, metavar="NEW", help="the name to show from now on")
    merge = actions.add_parser("merge", help="make DROP's observations KEEP's and remove DROP")
    merge.add_argument("keep", type=text, metavar="KEEP", help="the student's key or name that stays")
    merge.add_argument("drop", type=text, metavar="DROP", help="the student's key or name that goes")
    undo = actions.add_parser("undo-merge", help="bring back a merged student exactly as they were")
    undo.add_argument(
        "merge", type=int, nargs="?", metavar="MERGE", help="the merge's number (printed by merge); default: the latest"
    )
    for action in (rename, merge, undo):
        action.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
        action.add_argument(
            "--session", type=text, required=True, metavar="NAME", help="the session the students are in"
        )


def _students(args: argparse.Namespace) -> int:
    try:
        engine = upgrade(args.db)
        if args.action == "rename":
            key = rename_student(engine, args.session, args.old, args.new)
            print(f"renamed {key} to {args.new.strip()!r}")
        elif args.action == "merge":
            merge = merge_students(engine, args.session, args.keep, args.drop)
            print(
                f"merged {args.drop!r} into {args.keep!r}: {merge.moved} observation(s) moved "
                f"(merge {merge.id}; undo-merge {merge.id} undoes it)"
            )
        else:
            for undone in undo_merge(engine, args.session, args.merge):
                print(f"undid merge {undone.id}: {undone.dropped} is back with {undone.moved} observation(s)")
    except DatabaseError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


def _partitions(args: argparse.Namespace) -> int:
    try:
        engine = upgrade(args.db)
        # Retention creates the days ahead too: a cron line that runs it daily keeps both.
        created = keep_ahead(engine, config.chosen().database.partition_days_ahead)
        done = retain(engine, args.days) if args.command == "retention" else None
    except DatabaseError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    for name in created:
        print(f"created partition {name}")
    if done is not None:
        for line in done.dropped:
            print(line)
        for name in done.purged:
            print(f"purged session {name!r}")
        print(f"kept {args.days:g} day(s): {len(done.dropped)} partition action(s), {len(done.purged)} session(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "students":
        return _students(args)
    if args.command == "classes":
        return run_classes(args)
    if args.command in ("retention", "partitions"):
        return _partitions(args)
    try:
        engine = upgrade(args.db)
        if args.session is not None:
            purge_session(engine, args.session)
            purged = [args.session]
        else:
            purged = purge_older_than(engine, args.older_than_days)
    except DatabaseError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(f"purged {len(purged)} session(s)" + "".join(f"\n  {name}" for name in purged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
