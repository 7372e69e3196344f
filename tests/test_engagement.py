"""Engagement score, its configuration, and every flag rule on synthetic signal sequences, clearing included."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.engagement import class_bins, frame_signals, student_bins
from analytics.flags import Flag, session_flags
from analytics.settings import DEFAULT_CONFIG, ConfigError, EngagementConfig, load_config
from vocabulary.emotions import EMOTIONS

T0 = pd.Timestamp(datetime(2025, 3, 4, 9, 0, tzinfo=UTC))
CONFIG = load_config()
NEGATIVE = [EMOTIONS.index(emotion) for emotion in CONFIG.score.negative_emotions]


@dataclass(frozen=True)
class Second:
    """One frame of one student, one second long: what the capture would have stored."""

    presence: str = "face"
    yaw: float = 0.0
    eyes_closed: bool = False
    landmarks_age: int = 0  # frames since the eyes were measured (the reading carried since)
    emotion: str | None = "neutral"  # the model sure of it; None: no emotion inferred


def attentive(**changes: object) -> Second:
    return dataclasses.replace(Second(), **changes)  # type: ignore[arg-type]


def session(*students: list[Second | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """engagement_rows and frame_rows for one frame per second; None: the student has no row in that frame."""
    length = max(len(seconds) for seconds in students)
    frames = pd.DataFrame({"frame": range(length), "ts": [T0 + pd.Timedelta(seconds=i) for i in range(length)]})
    rows = []
    for student_id, seconds in enumerate(students, start=1):
        for frame, second in enumerate(seconds):
            if second is None:
                continue
            face = second.presence == "face"
            inferred = face and second.emotion is not None
            probabilities = np.eye(len(EMOTIONS))[EMOTIONS.index(second.emotion)] if inferred else np.full(7, np.nan)
            rows.append(
                {
                    "frame": frame,
                    "ts": frames["ts"][frame],
                    "student_id": student_id,
                    "student": f"tile-{student_id}",
                    "name": None,
                    "emotion": float(np.argmax(probabilities)) if inferred else np.nan,
                    "negative": probabilities[NEGATIVE].sum() if inferred else np.nan,
                    "presence": second.presence,
                    "yaw": second.yaw if face else np.nan,
                    "pitch": 0.0 if face else np.nan,
                    "eyes_closed": second.eyes_closed if face else pd.NA,
                    "landmarks_age": second.landmarks_age if face else np.nan,
                }
            )
    table = pd.DataFrame(rows).astype({"eyes_closed": "boolean"})
    return table, frames


def flags_of(*students: list[Second | None], config: EngagementConfig = CONFIG) -> list[Flag]:
    rows, frames = session(*students)
    return session_flags(frame_signals(rows, frames, config.score), config.flags)


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def only(flags: list[Flag], rule: str) -> list[Flag]:
    return [flag for flag in flags if flag.rule == rule]


# --- the score -----------------------------------------------------------------------------------------


def test_an_attentive_neutral_face_scores_1_and_an_absent_student_0() -> None:
    rows, frames = session([attentive()] * 5 + [Second(presence="camera_off")] * 5)
    signals = frame_signals(rows, frames, CONFIG.score)
    assert signals["score"].tolist() == pytest.approx([1.0] * 5 + [0.0] * 5)
    assert signals["present"].tolist() == [True] * 5 + [False] * 5


def test_two_merged_students_seen_in_one_frame_count_once_there() -> None:
    rows, frames = session([attentive()] * 3, [None, Second(presence="camera_off"), None])
    # After a merge of student 2 into student 1, frame 1 holds two rows of student 1.
    merged = rows.assign(student_id=1, student="tile-1")
    signals = frame_signals(merged, frames, CONFIG.score)
    assert signals["frame"].tolist() == [0, 1, 2]
    assert signals["present"].tolist() == [True, True, True]


def test_each_component_takes_its_configured_weight() -> None:
    weights = CONFIG.score.weights
    total = weights.present + weights.attentive + weights.eyes_open + weights.expression
    rows, frames = session(
        [attentive(yaw=80.0), attentive(eyes_closed=True), attentive(emotion="sad")] + [attentive()] * 20
    )
    score = frame_signals(rows, frames, CONFIG.score)["score"].tolist()
    assert score[0] == pytest.approx(1 - weights.attentive / total)
    assert score[1] == pytest.approx(1 - weights.eyes_open / total)
    # Smoothed over the window: the sad frame (1 of 3 so far) moves the expression by a third.
    assert score[2] == pytest.approx(1 - weights.expression / total / 3)


def test_without_emotions_the_expression_weight_drops_out() -> None:
    rows, frames = session([attentive(emotion=None)] * 3 + [attentive(emotion=None, yaw=80.0)])
    score = frame_signals(rows, frames, CONFIG.score)["score"].tolist()
    weights = CONFIG.score.weights
    assert score[:3] == pytest.approx([1.0] * 3)
    assert score[3] == pytest.approx(1 - weights.attentive / (weights.present + weights.attentive + weights.eyes_open))


def test_class_score_averages_the_students_in_the_gallery_per_bin() -> None:
    rows, frames = session([attentive()] * 20, [Second(presence="empty")] * 10 + [attentive()] * 10)
    per_student = student_bins(frame_signals(rows, frames, CONFIG.score), bin_seconds=10)
    table = class_bins(per_student)
    assert table["students"].tolist() == [2, 2]
    assert table["score"].tolist() == pytest.approx([0.5, 1.0])
    assert table["present"].tolist() == pytest.approx([0.5, 1.0])


def test_a_late_joiner_is_not_absent_before_joining() -> None:
    rows, frames = session([attentive()] * 100, [None] * 90 + [attentive()] * 10)
    signals = frame_signals(rows, frames, CONFIG.score)
    assert len(signals[signals["student"] == "tile-2"]) == 10
    assert flags_of([attentive()] * 100, [None] * 90 + [attentive()] * 10) == []


# --- the configuration ---------------------------------------------------------------------------------


def edited(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    path = tmp_path / "engagement.toml"
    path.write_text(edit(DEFAULT_CONFIG.read_text()))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("absent_seconds = 60", "absent_secs = 60"), "unknown key(s) absent_secs"),
        (lambda text: text + "\n[extra]\nx = 1\n", "unknown key(s) extra"),
        (lambda text: text.replace("bin_seconds = 10", "bin_seconds = 2.5"), "score.bin_seconds: expected an integer"),
        (lambda text: text.replace("present = 0.4", 'present = "high"'), "score.weights.present: expected a number"),
        (lambda text: text.replace('"sad"]', '"bored"]'), "negative_emotions: unknown ['bored']"),
        (lambda text: text.replace("eyes_closed_seconds = 10\n", ""), "missing key(s) eyes_closed_seconds"),
        (lambda text: text.replace("bin_seconds = 10", "bin_seconds = 0"), "score.bin_seconds: must be more than 0"),
        (
            lambda text: text.replace("drop_fraction = 0.4", "drop_fraction = 40"),
            "flags.drop_fraction: must be at most 1",
        ),
    ],
)
def test_a_bad_config_is_rejected_naming_the_key(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_config(edited(tmp_path, edit))


def test_a_changed_threshold_takes_effect(tmp_path: Path) -> None:
    config = load_config(edited(tmp_path, lambda text: text.replace("absent_seconds = 60", "absent_seconds = 5")))
    assert config.flags.absent_seconds == 5
    flags = flags_of([attentive()] * 5 + [Second(presence="camera_off")] * 8 + [attentive()] * 5, config=config)
    assert [flag.rule for flag in flags] == ["absent"]


# --- the flags -----------------------------------------------------------------------------------------


def test_absent_for_more_than_a_minute_is_flagged_from_its_start_and_clears_when_the_face_is_back() -> None:
    flags = flags_of([attentive()] * 30 + [Second(presence="camera_off")] * 90 + [attentive()] * 30)
    (flag,) = only(flags, "absent")
    assert (flag.start, flag.raised, flag.end) == (at(30), at(91), at(120))
    assert "camera off" in flag.reason and "60 s" in flag.reason
    assert not flag.active


def test_a_short_absence_is_not_flagged_and_a_continuing_one_stays_active() -> None:
    assert flags_of([attentive()] * 10 + [Second(presence="empty")] * 50 + [attentive()] * 10) == []
    (flag,) = flags_of([attentive()] * 10 + [Second(presence="empty")] * 80)
    assert flag.rule == "absent" and flag.active and "seat empty" in flag.reason


def test_a_student_gone_from_the_gallery_is_absent() -> None:
    flags = flags_of([attentive()] * 100, [attentive()] * 10 + [None] * 80 + [attentive()] * 10)
    (flag,) = flags
    assert (flag.student, flag.rule, flag.start, flag.end) == ("tile-2", "absent", at(10), at(90))
    assert "not in the gallery" in flag.reason


def test_looking_away_for_most_of_two_minutes_is_flagged_and_clears() -> None:
    flags = flags_of([attentive()] * 120 + [attentive(yaw=60.0)] * 180 + [attentive()] * 200)
    (flag,) = only(flags, "looking_away")
    # More than 60 of the last 120 one-second frames turned away: from the turn's 61st frame (120 + 60) until
    # only 60 of them are left in the window (300 + 59).
    assert flag.start == at(180)
    assert flag.end == at(359)
    assert "120 s" in flag.reason


def test_glancing_away_now_and_then_is_not_flagged() -> None:
    glances = [attentive(yaw=60.0) if i % 3 == 0 else attentive() for i in range(400)]
    assert only(flags_of(glances), "looking_away") == []


def test_eyes_closed_for_more_than_10_s_is_flagged_and_clears_when_they_open() -> None:
    seconds = [attentive()] * 50 + [attentive(eyes_closed=True)] * 15 + [attentive()] * 35
    seconds[80:88] = [attentive(eyes_closed=True)] * 8  # a shorter closing: not flagged
    (flag,) = only(flags_of(seconds), "eyes_closed")
    assert (flag.start, flag.raised, flag.end) == (at(50), at(61), at(65))


def test_eyes_closed_is_raised_by_a_reading_taken_more_than_10_s_after_the_first_not_by_a_carried_one() -> None:
    # The eyes read closed at 50 s, then that reading is carried (not measured again) until a new reading at 64 s.
    carried = [attentive(eyes_closed=True, landmarks_age=age) for age in range(1, 14)]
    seconds = [attentive()] * 50 + [attentive(eyes_closed=True)] + carried + [attentive(eyes_closed=True)] * 5
    (flag,) = only(flags_of(seconds), "eyes_closed")
    assert (flag.start, flag.raised) == (at(50), at(64))
    # Carried and never confirmed: no flag, however long it is carried.
    unconfirmed = [attentive()] * 50 + [attentive(eyes_closed=True)] + carried
    assert only(flags_of(unconfirmed), "eyes_closed") == []


def test_a_sustained_negative_expression_is_flagged_and_clears() -> None:
    seconds = [attentive()] * 30 + [attentive(emotion="sad")] * 60 + [attentive()] * 60
    (flag,) = only(flags_of(seconds), "negative")
    assert flag.start > at(30) and flag.start < at(40)  # once the smoothing window is mostly sad
    assert flag.end is not None and at(90) < flag.end < at(100)
    assert "negative expression" in flag.reason


def test_a_single_sad_frame_does_not_flicker_into_a_flag_and_no_emotions_raise_none() -> None:
    flicker = [attentive(emotion="sad") if i % 10 == 0 else attentive() for i in range(200)]
    assert only(flags_of(flicker), "negative") == []
    no_emotion = [attentive(emotion=None)] * 200
    assert flags_of(no_emotion) == []


def test_a_sharp_drop_against_the_own_baseline_is_flagged_and_clears() -> None:
    # Five engaged minutes, then 90 s turned away with the eyes shut (score 0.5), then engaged again: the last
    # minute's score falls below 60% of the baseline (1.0) once 49 s of it are slumped.
    slump = attentive(yaw=60.0, eyes_closed=True)
    flags = flags_of([attentive()] * 300 + [slump] * 90 + [attentive()] * 200)
    (flag,) = only(flags, "drop")
    assert flag.start == at(348)
    assert flag.end is not None and at(390) < flag.end < at(420)
    assert "own" in flag.reason


def test_a_student_who_was_always_low_has_no_drop() -> None:
    always_away = [attentive(yaw=60.0)] * 500
    assert only(flags_of(always_away), "drop") == []
