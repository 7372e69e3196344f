"""analytics.timeline over rows read back from real SQLite files written by the recorder.

Also home of the small session builders the dashboard tests share.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.timeline import (
    counts_since,
    dominant_emotions,
    emotion_counts,
    emotion_shares,
    merge_counts,
    mood_now,
    student_states,
)
from db.migrate import upgrade
from db.queries import emotion_tally, find_session, observation_rows, student_rows
from db.recorder import SessionRecorder
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Box, FrameResult, Observation

# On a 10 s boundary, so bins start at T0, T0 + 10 s, ...
T0 = datetime(2025, 3, 4, 9, 0, 0, tzinfo=UTC)
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)

# A frame as (seconds after T0, {student key: emotion index}).
FrameSpec = tuple[float, dict[str, int]]

# Three students over 25 s: bins [0, 10) [10, 20) [20, 30). tile-2 leaves after 12 s.
PERIOD_1: list[FrameSpec] = [
    (0, {"tile-0": HAPPY, "tile-1": SAD, "tile-2": NEUTRAL}),
    (4, {"tile-0": HAPPY, "tile-1": SAD, "tile-2": NEUTRAL}),
    (8, {"tile-0": NEUTRAL, "tile-1": SAD, "tile-2": NEUTRAL}),
    (12, {"tile-0": HAPPY, "tile-1": HAPPY, "tile-2": ANGRY}),
    (16, {"tile-0": SURPRISE, "tile-1": HAPPY}),
    (20, {"tile-0": HAPPY, "tile-1": FEAR}),
    (24, {"tile-0": SAD, "tile-1": FEAR}),
]


def probabilities(emotion: int) -> np.ndarray:
    p = np.full(len(EMOTIONS), 0.04, np.float32)
    p[emotion] = 1 - 0.04 * (len(EMOTIONS) - 1)
    return p


def face(key: str, emotion: int) -> Observation:
    x = 100 * int(key.rsplit("-", 1)[-1]) if key[-1].isdigit() else 0
    return Observation(key, Box(x, 0, 100, 100), Box(x + 20, 20, 50, 60), probabilities(emotion), emotion)


def record(engine: Engine, session: str, frames: list[FrameSpec], start: datetime = T0, first_index: int = 0) -> None:
    """Write `frames` to `session` (created or continued) and close it."""
    with SessionRecorder.open(engine, session, "screen:1") as recorder:
        for index, (seconds, faces) in enumerate(frames, start=first_index):
            found = [face(key, emotion) for key, emotion in faces.items()]
            recorder.record(FrameResult(index, start + timedelta(seconds=seconds), found, 5.0))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    migrated = upgrade(f"sqlite:///{tmp_path / 'classpulse.db'}")
    yield migrated
    migrated.dispose()


@pytest.fixture
def rows(engine: Engine) -> pd.DataFrame:
    record(engine, "period-1", PERIOD_1)
    return observation_rows(engine, find_session(engine, "period-1").id)


def counts_of(table: pd.DataFrame, bin_start: datetime) -> dict[str, int]:
    return {emotion: count for emotion, count in table.loc[pd.Timestamp(bin_start)].items() if count}


def test_emotion_counts_tallies_each_face_in_its_epoch_aligned_ten_second_bin(rows: pd.DataFrame) -> None:
    counts = emotion_counts(rows)

    assert list(counts.columns) == list(EMOTIONS)
    assert list(counts.index) == [pd.Timestamp(T0 + timedelta(seconds=s)) for s in (0, 10, 20)]
    assert counts_of(counts, T0) == {"happy": 2, "sad": 3, "neutral": 4}
    assert counts_of(counts, T0 + timedelta(seconds=10)) == {"angry": 1, "happy": 3, "surprise": 1}
    assert counts_of(counts, T0 + timedelta(seconds=20)) == {"fear": 2, "happy": 1, "sad": 1}
    assert counts.to_numpy().sum() == len(rows)


def test_emotion_counts_per_student_and_with_other_bin_lengths(rows: pd.DataFrame) -> None:
    per_student = emotion_counts(rows, by=("student",))
    assert per_student.loc[("tile-2", pd.Timestamp(T0))].to_dict() == {**dict.fromkeys(EMOTIONS, 0), "neutral": 3}
    assert sorted(per_student.index.get_level_values("student").unique()) == ["tile-0", "tile-1", "tile-2"]

    by_minute = emotion_counts(rows, bin_seconds=60)
    assert list(by_minute.index) == [pd.Timestamp(T0)]
    assert by_minute.to_numpy().sum() == len(rows)


def test_counts_of_the_tally_made_in_the_database_equal_the_counts_of_the_rows(
    engine: Engine, rows: pd.DataFrame
) -> None:
    tally = emotion_tally(engine, find_session(engine, "period-1").id)
    assert len(tally) < len(rows)  # one row per frame time and emotion, not per face
    pd.testing.assert_frame_equal(emotion_counts(tally), emotion_counts(rows))


def test_counts_from_any_split_of_the_rows_merge_to_the_counts_of_all_of_them(rows: pd.DataFrame) -> None:
    whole = emotion_counts(rows, by=("student",))
    for cut in range(len(rows) + 1):
        merged = merge_counts(
            emotion_counts(rows.iloc[:cut], by=("student",)), emotion_counts(rows.iloc[cut:], by=("student",))
        )
        pd.testing.assert_frame_equal(merged, whole)


def test_an_empty_read_gives_typed_empty_counts_that_merge_cleanly(rows: pd.DataFrame) -> None:
    empty = emotion_counts(rows.iloc[:0])
    assert empty.empty and list(empty.columns) == list(EMOTIONS)
    pd.testing.assert_frame_equal(merge_counts(empty, emotion_counts(rows)), emotion_counts(rows))


def test_counts_since_keeps_only_bins_that_start_after_it(rows: pd.DataFrame) -> None:
    counts = emotion_counts(rows)
    assert list(counts_since(counts, T0 + timedelta(seconds=5)).index) == [
        pd.Timestamp(T0 + timedelta(seconds=s)) for s in (10, 20)
    ]
    assert list(counts_since(counts, T0 + timedelta(seconds=10)).index) == [pd.Timestamp(T0 + timedelta(seconds=20))]


def test_shares_sum_to_one_and_dominant_is_the_most_frequent(rows: pd.DataFrame) -> None:
    counts = emotion_counts(rows)
    assert np.allclose(emotion_shares(counts).sum(axis=1), 1.0)
    assert emotion_shares(counts).loc[pd.Timestamp(T0), "neutral"] == pytest.approx(4 / 9)
    assert list(dominant_emotions(counts)) == ["neutral", "happy", "fear"]


def test_mood_now_covers_only_the_last_ten_seconds(rows: pd.DataFrame) -> None:
    mood = mood_now(rows, until=T0 + timedelta(seconds=24))

    # Frames at 16, 20 and 24 s are in (14, 24]; the one at 12 s is not.
    assert mood.faces == 6
    assert mood.students == 2
    assert mood.shares["fear"] == pytest.approx(2 / 6)
    assert mood.shares.sum() == pytest.approx(1.0)


def test_mood_now_with_nobody_in_the_window_is_all_zero(rows: pd.DataFrame) -> None:
    mood = mood_now(rows, until=T0 + timedelta(hours=1))
    assert (mood.faces, mood.students, mood.shares.sum()) == (0, 0, 0)


def test_student_states_take_the_most_frequent_recent_emotion_latest_winning_ties(
    engine: Engine, rows: pd.DataFrame
) -> None:
    session_id = find_session(engine, "period-1").id
    states = student_states(student_rows(engine, session_id), rows, until=T0 + timedelta(seconds=24))

    assert list(states["student"]) == ["tile-0", "tile-1", "tile-2"]
    # tile-0 in (14, 24]: surprise, happy, sad (one each) -> the latest, sad. tile-1: happy, fear, fear -> fear.
    assert list(states["emotion"]) == ["sad", "fear", None]
    assert states.loc[2, "last_seen"] == pd.Timestamp(T0 + timedelta(seconds=12))


def test_tallies_of_a_session_without_faces_are_empty_tables_with_their_columns(engine: Engine) -> None:
    record(engine, "cameras-off", [(0, {}), (1, {}), (2, {})])
    session_id = find_session(engine, "cameras-off").id
    assert emotion_counts(emotion_tally(engine, session_id)).empty
