"""Milliseconds for a class page over a term: first open (every lesson's report computed), open again unchanged
(each lesson's per-student numbers kept by dashboard.lesson_cache), and one student's term view.

`python -m bench.classes [--lessons L] [--minutes M] [--students N] [--repeats R]`: a SQLite class of L ended
lessons of M minutes x N students x 1 row/s (bench.dashboard.SyntheticClass), every student on the roster,
then the pages as the router builds them. The first open costs about one report per lesson (bench.report);
after it, a view reads the small tables and asks each lesson's session_version, never its observations.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, update

from bench.dashboard import SESSION, SyntheticClass, Timings
from dashboard.lesson_cache import forget_lessons
from dashboard.pages.classes import class_page, term_page
from dashboard.report_cache import forget_reports
from db.class_reads import find_class_by_id
from db.classes import normalised
from db.migrate import upgrade
from db.schema import class_student_aliases, class_students, classes, sessions, students


def term_of_lessons(engine: Engine, lessons: int, minutes: int, student_count: int) -> tuple[int, int]:
    """The class's id and its first roster student's, its lessons a week apart and ended."""
    start = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)
    with engine.begin() as connection:
        class_id = connection.scalar(
            insert(classes).values(name="bench 7B", teacher=None, created_at=start).returning(classes.c.id)
        )
        roster = []
        for n in range(1, student_count + 1):
            name = f"Student {n}"
            roster_id = connection.scalar(
                insert(class_students)
                .values(class_id=class_id, display_name=name, created_at=start)
                .returning(class_students.c.id)
            )
            connection.execute(
                insert(class_student_aliases).values(
                    class_id=class_id, alias=normalised(name), class_student_id=roster_id
                )
            )
            roster.append(roster_id)
    for lesson in range(lessons):
        synthetic = SyntheticClass(engine, student_count, start + timedelta(days=7 * lesson), seed=lesson)
        synthetic.add_frames(minutes * 60)
        with engine.begin() as connection:
            connection.execute(
                update(sessions)
                .where(sessions.c.id == synthetic.session_id)
                .values(name=f"{SESSION} {lesson + 1}", class_id=class_id, ended_at=synthetic.latest)
            )
            for student_id, roster_id in zip(synthetic.student_ids, roster, strict=True):
                connection.execute(
                    update(students).where(students.c.id == student_id).values(class_student_id=roster_id)
                )
    return class_id, roster[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classes", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lessons", type=int, default=6)
    parser.add_argument("--minutes", type=int, default=50)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        engine = upgrade(f"sqlite:///{work}/bench.db")
        class_id, student = term_of_lessons(engine, args.lessons, args.minutes, args.students)
        info = find_class_by_id(engine, class_id)
        print(
            f"SQLite, a class of {args.lessons} lessons x {args.minutes} min x {args.students} students x 1 row/s "
            f"= {args.lessons * args.minutes * 60 * args.students} observations; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'what':<48}{'runs':>6}{'median ms':>11}{'p95 ms':>9}{'CPU ms':>10}{'CPU p95':>10}")
        first, kept, term = Timings(), Timings(), Timings()
        for _ in range(args.repeats):
            forget_lessons()
            forget_reports()
            first.run(lambda: class_page(engine, info))
            kept.run(lambda: class_page(engine, info))
            term.run(lambda: term_page(engine, info, student))
        first.print_row("class page, first open (every lesson's report)")
        kept.print_row("class page, open again (lessons unchanged)")
        term.print_row("a student's term view (lessons unchanged)")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
