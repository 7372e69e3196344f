"""analytics.live against real SQLite files: a pass that reads only the new frames must see what a fresh read
of the same span sees, renames and merges included; a pass's flags start when their condition began."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.live import LiveState, RecentRows, engagement_config, lookback_seconds, rescore
from db.migrate import upgrade
from db.purge import purge_session
from db.queries import engagement_rows, find_session
from db.students import merge_students, rename_student
from tests.test_timeline import HAPPY, NEUTRAL, PERIOD_1, SAD, T0, record

NEGATIVE = engagement_config().score.negative_emotions


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    migrated = upgrade(f"sqlite:///{tmp_path / 'classpulse.db'}")
    record(migrated, "period-1", PERIOD_1)
    yield migrated
    migrated.dispose()


def assert_reads_alike(engine: Engine, kept: RecentRows, since_seconds: float, session: str = "period-1") -> None:
    session_id = find_session(engine, session).id
    since = T0 + timedelta(seconds=since_seconds)
    rows, frames = kept.read(engine, session_id, NEGATIVE, since)
    fresh_rows, fresh_frames = engagement_rows(engine, session_id, NEGATIVE, since=since)
    pd.testing.assert_frame_equal(rows, fresh_rows)
    pd.testing.assert_frame_equal(frames, fresh_frames)


def test_a_pass_after_new_frames_and_a_rename_reads_what_a_fresh_read_does(engine: Engine) -> None:
    kept = RecentRows()
    assert_reads_alike(engine, kept, since_seconds=2)
    # The capture goes on, and the teacher renames a student whose rows were kept.
    record(engine, "period-1", [(28, {"tile-0": NEUTRAL, "tile-1": SAD}), (32, {"tile-1": HAPPY})], first_index=7)
    rename_student(engine, "period-1", "tile-1", "Ada")
    assert_reads_alike(engine, kept, since_seconds=6)
    assert_reads_alike(engine, kept, since_seconds=6)  # nothing new since
    assert_reads_alike(engine, kept, since_seconds=0)  # further back than what was kept


def test_a_pass_after_a_merge_reads_afresh(engine: Engine) -> None:
    kept = RecentRows()
    assert_reads_alike(engine, kept, since_seconds=2)
    merge_students(engine, "period-1", "tile-0", "tile-2")  # tile-2's kept rows now belong to tile-0
    assert_reads_alike(engine, kept, since_seconds=2)


def test_another_session_under_a_purged_ones_id_is_read_afresh(engine: Engine) -> None:
    kept = RecentRows()
    assert_reads_alike(engine, kept, since_seconds=2)
    purge_session(engine, "period-1")
    record(engine, "period-2", [(40, {"tile-5": HAPPY}), (44, {"tile-5": SAD})])
    assert find_session(engine, "period-2").id == 1  # SQLite gave the new session the purged one's id
    assert_reads_alike(engine, kept, since_seconds=6, session="period-2")


def test_a_flag_shows_since_its_condition_began_after_a_reload_not_since_the_scoring_lookback(engine: Engine) -> None:
    # tile-1 leaves after 10 s; the page is opened half an hour later, far past what one pass scores.
    frames = [
        (seconds, {"tile-0": HAPPY} | ({"tile-1": HAPPY} if seconds <= 10 else {})) for seconds in range(0, 1801, 10)
    ]
    record(engine, "long-gone", frames)
    session_id = find_session(engine, "long-gone").id
    latest = T0 + timedelta(seconds=1800)
    assert lookback_seconds(engagement_config()) < 1800 - 20
    opened = [("tile-1", "absent", pd.Timestamp(T0 + timedelta(seconds=20)))]  # the first frame without them
    for _ in range(2):  # opened, then reloaded: a fresh state each time, the same start
        state = rescore(engine, LiveState.start(session_id, 15 * 60), latest)
        assert [(flag.student, flag.rule, flag.start) for flag in state.flags] == opened

    record(engine, "long-gone", [(1810, {"tile-0": HAPPY})], first_index=len(frames))
    later = rescore(engine, state, latest + timedelta(seconds=10))  # the next pass, in a new bin
    assert later.scored_at == latest + timedelta(seconds=10)
    assert [(flag.student, flag.rule, flag.start) for flag in later.flags] == opened
