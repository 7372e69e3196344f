"""Kept session reports: reused while the session is unchanged, computed afresh after any change to it; the
average engagement stored for the sessions list, cleared when the session changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from analytics.settings import load_config
from dashboard.report_cache import forget_reports, report_tables, warm_report
from db.migrate import upgrade
from db.queries import find_session
from db.schema import sessions
from db.students import merge_students, rename_student, undo_merge
from tests.test_timeline import PERIOD_1, T0, record

CONFIG = load_config()


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    engines = tuple(upgrade(f"sqlite:///{tmp_path / name}") for name in ("one.db", "two.db"))
    yield engines
    for engine in engines:
        engine.dispose()


def test_a_report_is_kept_until_a_rename_or_a_new_frame_changes_the_session(databases: tuple[Engine, Engine]) -> None:
    engine = databases[0]
    record(engine, "period-1", PERIOD_1)
    session = find_session(engine, "period-1")
    first = report_tables(engine, session, CONFIG)
    assert report_tables(engine, session, CONFIG) is first

    rename_student(engine, "period-1", "tile-1", "Ada Lovelace")
    renamed = report_tables(engine, session, CONFIG)
    assert renamed is not first
    assert renamed.students.set_index("student").loc["tile-1", "name"] == "Ada Lovelace"

    record(engine, "period-1", [(30, {"tile-0": 3})], first_index=len(PERIOD_1))
    later = report_tables(engine, session, CONFIG)
    assert later is not renamed
    assert later.students.set_index("student").loc["tile-0", "last_seen"] == T0 + timedelta(seconds=30)


def test_reports_of_two_databases_are_kept_apart(databases: tuple[Engine, Engine]) -> None:
    mine, theirs = databases
    record(mine, "period-1", PERIOD_1)
    record(theirs, "period-1", PERIOD_1[:2])
    mine_last = report_tables(mine, find_session(mine, "period-1"), CONFIG).students["last_seen"].max()
    theirs_last = report_tables(theirs, find_session(theirs, "period-1"), CONFIG).students["last_seen"].max()
    assert (mine_last, theirs_last) == (T0 + timedelta(seconds=24), T0 + timedelta(seconds=4))


def test_a_report_stores_the_average_engagement_until_more_frames_or_a_merge_change_it(
    databases: tuple[Engine, Engine],
) -> None:
    engine = databases[0]
    record(engine, "period-1", PERIOD_1)
    assert find_session(engine, "period-1").mean_engagement is None
    tables = report_tables(engine, find_session(engine, "period-1"), CONFIG)
    stored = find_session(engine, "period-1").mean_engagement
    assert stored == pytest.approx(tables.class_bins["score"].mean()) and 0 < stored <= 1

    record(engine, "period-1", [(30, {"tile-0": 3})], first_index=len(PERIOD_1))
    assert find_session(engine, "period-1").mean_engagement is None
    report_tables(engine, find_session(engine, "period-1"), CONFIG)
    assert find_session(engine, "period-1").mean_engagement is not None
    merge_students(engine, "period-1", "tile-0", "tile-2")
    assert find_session(engine, "period-1").mean_engagement is None


def test_a_merge_and_its_undo_each_give_a_report_computed_afresh(databases: tuple[Engine, Engine]) -> None:
    engine = databases[0]
    record(engine, "period-1", PERIOD_1)
    session = find_session(engine, "period-1")
    before = report_tables(engine, session, CONFIG)
    merge = merge_students(engine, "period-1", "tile-0", "tile-2")
    merged = report_tables(engine, session, CONFIG)
    assert list(merged.students["student"]) == ["tile-0", "tile-1"]
    undo_merge(engine, "period-1", merge.id)
    assert find_session(engine, "period-1").mean_engagement is None  # the class score changes back with it
    undone = report_tables(engine, session, CONFIG)
    assert undone is not merged and undone is not before
    assert undone.students.equals(before.students) and undone.attendance.equals(before.attendance)


def test_an_ended_session_is_warmed_once_and_its_first_open_finds_the_report_kept(
    databases: tuple[Engine, Engine],
) -> None:
    engine = databases[0]
    forget_reports()
    record(engine, "period-1", PERIOD_1)  # closed: its end is stamped
    session = find_session(engine, "period-1")
    warming = warm_report(engine, session, CONFIG)
    assert warming is not None
    warming.join()
    # Computed without anyone opening it: an ended session's report stores its average as it is computed.
    assert find_session(engine, "period-1").mean_engagement is not None
    assert warm_report(engine, session, CONFIG) is None  # this end was warmed already
    kept = report_tables(engine, session, CONFIG)
    assert report_tables(engine, session, CONFIG) is kept

    record(engine, "period-1", [(30, {"tile-0": 3})], first_index=len(PERIOD_1))  # resumed, then ended again
    again = warm_report(engine, find_session(engine, "period-1"), CONFIG)
    assert again is not None
    again.join()
    later = report_tables(engine, find_session(engine, "period-1"), CONFIG)
    assert later is not kept and later.students["last_seen"].max() == T0 + timedelta(seconds=30)


def test_a_running_session_is_not_warmed(databases: tuple[Engine, Engine]) -> None:
    engine = databases[0]
    forget_reports()
    record(engine, "period-1", PERIOD_1)
    with engine.begin() as connection:  # as if its capture were still running
        connection.execute(update(sessions).where(sessions.c.name == "period-1").values(ended_at=None))
    assert warm_report(engine, find_session(engine, "period-1"), CONFIG) is None
    assert find_session(engine, "period-1").mean_engagement is None
