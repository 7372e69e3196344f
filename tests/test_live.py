"""analytics.live against real SQLite files: a pass that reads only the new frames must see what a fresh read
of the same span sees, renames and merges included; a pass's flags start when their condition began."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.engagement import frame_signals
from analytics.live import RECENT_ROWS, LiveState, RecentRows, engagement_config, lookback_seconds, rescore
from analytics.live_flags import flag_span
from db.engine import connect
from db.migrate import upgrade
from db.purge import purge_session
from db.queries import engagement_rows, find_session
from db.recorder import SessionRecorder
from db.students import merge_students, rename_student
from tests.test_live_flags import observation
from tests.test_timeline import HAPPY, NEUTRAL, PERIOD_1, SAD, T0, record
from vocabulary.records import FrameResult, Presence

NEGATIVE = engagement_config().score.negative_emotions
CONFIG = engagement_config()
CAMERA_SINCE_30_S = ("tile-2", "camera_off", pd.Timestamp(T0 + timedelta(seconds=30)))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    migrated = upgrade(f"sqlite:///{tmp_path / 'classpulse.db'}")
    record(migrated, "period-1", PERIOD_1)
    yield migrated
    migrated.dispose()


def assert_reads_alike(engine: Engine, kept: RecentRows, since_seconds: float, session: str = "period-1") -> None:
    """What `kept` gives is a fresh read's frames and, past the first smoothing window, the signals of a read
    of the whole session (where a fresh read's smoothing lacks the rows before it)."""
    session_id = find_session(engine, session).id
    since = T0 + timedelta(seconds=since_seconds)
    frames, signals = kept.read(engine, session_id, CONFIG.score, since)
    pd.testing.assert_frame_equal(frames, engagement_rows(engine, session_id, NEGATIVE, since=since)[1])
    everything = frame_signals(*engagement_rows(engine, session_id, NEGATIVE), CONFIG.score)
    settled = pd.Timestamp(since) + pd.Timedelta(seconds=CONFIG.score.emotion_window_seconds)
    expected = everything[(everything["ts"] > settled) & everything["student_id"].isin(signals["student_id"])]
    pd.testing.assert_frame_equal(
        signals[signals["ts"] > settled].reset_index(drop=True), expected.reset_index(drop=True), check_exact=True
    )


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


def test_passes_bin_by_bin_equal_a_full_recomputation_through_joins_leaves_cameras_off_and_a_merge(
    tmp_path: Path,
) -> None:
    # A long class, then one pass per new bin; beside each, a full pass over the same rows from a fresh state and
    # with nothing kept (another URL of the same file, so RecentRows keeps nothing for it).
    engine = upgrade(f"sqlite:///{tmp_path / 'class.db'}")
    fresh = connect(f"sqlite:///{tmp_path / '.' / 'class.db'}", create=False)

    def frames(start: int, stop: int) -> None:
        """Seconds start..stop at 1 frame/s, as one capture's batch (a merge needs the session ended)."""
        results = []
        for second in range(start, stop):
            keys = ["tile-1", "tile-2"] + (["tile-3"] if second < 100 else [])
            keys += (["tile-4"] if second < 905 else []) + (["tile-5"] if second >= 925 else [])
            seen = [
                observation(key, Presence.CAMERA_OFF, second=second)
                if (key == "tile-2" and 30 <= second < 935) or (key == "tile-1" and second >= 915)
                else observation(key, upset=key == "tile-4" and second >= 600, second=second)
                for key in keys
            ]
            results.append(FrameResult(second, T0 + timedelta(seconds=second), seen, 5.0))
        with SessionRecorder.open(engine, "live", "screen:1") as recorder:
            recorder.record_many(results)

    frames(0, 900)
    session_id = find_session(engine, "live").id
    state = LiveState.start(session_id, None)
    for step, end in enumerate(range(905, 995, 10)):
        frames(end - (5 if step == 0 else 10), end)
        if end == 955:
            # tile-5 was tile-1 on a second device: the bins where both showed now count one student.
            merge_students(engine, "live", "tile-1", "tile-5")
        latest = T0 + timedelta(seconds=end - 1)
        state = rescore(engine, state, latest)
        if step == 0:  # a camera off since long before any pass's span, its start found in the data
            assert CAMERA_SINCE_30_S in {(flag.student, flag.rule, flag.start) for flag in state.flags}
            continue  # the first pass is a full one itself
        whole = rescore(fresh, LiveState.start(session_id, None), latest)
        # Bit for bit: the smoothing sums each window afresh, so it does not depend on where a read began.
        pd.testing.assert_series_equal(state.engagement, whole.engagement, check_exact=True)
        assert state.flags == whole.flags
        assert len({(flag.student, flag.rule) for flag in state.flags}) == len(state.flags)
        if end < 935:  # on since before every pass's span: the start carried from pass to pass
            assert CAMERA_SINCE_30_S in {(flag.student, flag.rule, flag.start) for flag in state.flags}
        # tile-3, gone from the call long before any pass's span, is absent in both.
        assert state.states == whole.states and state.states["tile-3"] == "absent"
        assert state.scores == whole.scores
        # The signals a pass keeps, its new frames scored with the smoothing window's rows before them, are a
        # whole read's (but for the first window of a span read afresh, and tile-3, gone before any span).
        _, held = RECENT_ROWS.read(engine, session_id, CONFIG.score, latest - 2 * flag_span(CONFIG))
        everything = frame_signals(*engagement_rows(engine, session_id, NEGATIVE), CONFIG.score)
        settled = held["ts"].min() + pd.Timedelta(seconds=CONFIG.score.emotion_window_seconds)
        expected = everything[(everything["ts"] >= settled) & everything["student_id"].isin(held["student_id"])]
        kept = held[held["ts"] >= settled]
        pd.testing.assert_frame_equal(kept.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True)
    # What the passes went through.
    assert {(flag.student, flag.rule) for flag in state.flags} >= {("tile-1", "camera_off"), ("tile-4", "absent")}
    fresh.dispose()
    engine.dispose()
