"""Engagement score, its configuration, and every flag rule on synthetic signal sequences, clearing included."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.engagement import class_bins, frame_signals, student_bins
from analytics.flags import Flag, history_seconds, session_flags
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


def test_a_file_that_names_only_some_settings_keeps_the_defaults_of_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "school.toml"
    path.write_text("[flags]\neyes_closed_seconds = 20\n")
    config = load_config(path)
    assert config.flags.eyes_closed_seconds == 20
    assert config.flags.absent_seconds == CONFIG.flags.absent_seconds
    assert config.score == CONFIG.score


def test_a_changed_threshold_takes_effect(tmp_path: Path) -> None:
    config = load_config(edited(tmp_path, lambda text: text.replace("absent_seconds = 60", "absent_seconds = 5")))
    assert config.flags.absent_seconds == 5
    flags = flags_of([attentive()] * 5 + [Second(presence="camera_off")] * 8 + [attentive()] * 5, config=config)
    assert [flag.rule for flag in flags] == ["camera_off"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("turned_gap_seconds", "turned_gap_secs"), "unknown key(s) turned_gap_secs"),
        (
            lambda text: text.replace("negative_margin = 0.2", "negative_margin = 2"),
            "negative_margin: must be at most 1",
        ),
        (
            lambda text: text.replace("negative_max_engagement = 0.8", 'negative_max_engagement = "high"'),
            "negative_max_engagement: expected a number",
        ),
    ],
)
def test_a_bad_flag_threshold_is_rejected_naming_the_file_and_key(
    tmp_path: Path, edit: Callable[[str], str], message: str
) -> None:
    path = edited(tmp_path, edit)
    with pytest.raises(ConfigError, match=f"{re.escape(str(path))}.*{re.escape(message)}"):
        load_config(path)


# --- the flags -----------------------------------------------------------------------------------------


def test_a_camera_off_for_more_than_a_minute_is_flagged_from_its_start_and_clears_when_the_face_is_back() -> None:
    flags = flags_of([attentive()] * 30 + [Second(presence="camera_off")] * 90 + [attentive()] * 30)
    (flag,) = flags
    assert flag.rule == "camera_off"
    assert (flag.start, flag.raised, flag.end) == (at(30), at(91), at(120))
    assert flag.reason == "camera off for more than 60 s"
    assert not flag.active


def test_a_short_absence_is_not_flagged_and_a_continuing_one_stays_active() -> None:
    assert flags_of([attentive()] * 10 + [Second(presence="empty")] * 50 + [attentive()] * 10) == []
    (flag,) = flags_of([attentive()] * 10 + [Second(presence="empty")] * 80)
    assert flag.rule == "absent" and flag.active and "seat empty" in flag.reason
    assert (flag.start, flag.raised) == (at(10), at(71))


def test_a_student_gone_from_the_gallery_is_absent_and_no_drop_repeats_it() -> None:
    flags = flags_of([attentive()] * 200, [attentive()] * 150 + [None] * 80 + [attentive()] * 10)
    (flag,) = flags
    assert (flag.student, flag.rule, flag.start, flag.end) == ("tile-2", "absent", at(150), at(230))
    assert "not in the gallery" in flag.reason


def test_a_face_turned_away_and_no_longer_found_is_looking_away_not_absent() -> None:
    # The head turns (found at 40 degrees), then the detector loses it: its tile reads "empty" for 100 s.
    turned = [attentive()] * 200 + [attentive(yaw=40.0)] * 3 + [Second(presence="empty")] * 100 + [attentive()] * 100
    (flag,) = flags_of(turned)
    assert flag.rule == "looking_away" and "face lost while turned" in flag.reason
    assert flag.start == at(200)


def test_a_turned_face_lost_for_longer_than_the_turned_gap_becomes_absent_and_looking_away_ends_there() -> None:
    turned = [attentive()] * 200 + [attentive(yaw=40.0)] * 3 + [Second(presence="empty")] * 300
    absent, looking_away = sorted(flags_of(turned), key=lambda flag: flag.rule)
    assert (absent.rule, absent.start, absent.raised) == ("absent", at(203), at(384))
    assert "turned away" in absent.reason and absent.active
    assert looking_away.rule == "looking_away" and looking_away.end == absent.raised


def test_missed_detections_of_a_face_looking_at_the_camera_are_not_absence() -> None:
    missed = [attentive()] * 100 + ([Second(presence="empty")] * 25 + [attentive()] * 5) * 6
    assert flags_of(missed) == []


def test_looking_away_for_most_of_two_minutes_is_flagged_since_the_turn_and_clears() -> None:
    flags = flags_of([attentive()] * 120 + [attentive(yaw=60.0)] * 180 + [attentive()] * 200)
    (flag,) = only(flags, "looking_away")
    # More than 60 of the last 120 one-second frames turned away from the turn's 61st frame (120 + 60) until
    # only 60 of them are left in the window (300 + 59); the condition began with the turn.
    assert (flag.start, flag.raised, flag.end) == (at(120), at(180), at(359))
    assert "120 s" in flag.reason


def test_looking_away_that_wavers_around_the_threshold_is_one_flag() -> None:
    wavering = [attentive()] * 120 + [attentive(yaw=60.0)] * 70
    wavering += [attentive(yaw=60.0) if i % 2 else attentive() for i in range(120)]
    (flag,) = only(flags_of(wavering), "looking_away")
    assert flag.start == at(120)


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


def upset(seconds: int) -> list[Second]:
    """Sad, and the head down (turned) one frame in three: a student who is not just frowning at the screen."""
    return [attentive(emotion="sad", yaw=60.0 if i % 3 == 0 else 0.0) for i in range(seconds)]


def test_a_sustained_negative_expression_above_the_own_and_the_class_baseline_is_flagged_and_clears() -> None:
    class_ = [[attentive()] * 400] * 3
    flags = flags_of([attentive()] * 200 + upset(100) + [attentive()] * 100, *class_)
    (flag,) = only(flags, "negative")
    assert flag.student == "tile-1"
    # Raised once the smoothed probability (10 s) has averaged 0.5 over the last 30 s; since that window's start.
    assert at(215) < flag.raised < at(235)
    assert at(200) <= flag.start < flag.raised - pd.Timedelta(seconds=20)
    assert flag.end is not None and at(300) < flag.end < at(320)
    assert "negative expression" in flag.reason and "usual 0.00 and the class's 0.00" in flag.reason


def test_a_negative_stretch_long_enough_to_be_the_students_usual_clears() -> None:
    flags = only(flags_of([attentive()] * 300 + upset(600), *[[attentive()] * 900] * 3), "negative")
    (flag,) = flags
    # Once most of the five-minute baseline before the window is that stretch: every rule looks back a bounded
    # time, so a flag's start is the same from any read that reaches that far back.
    assert flag.end is not None and at(300 + 200) < flag.end < at(300 + 330)


def test_a_frown_at_high_engagement_is_not_flagged() -> None:
    frowning = [attentive()] * 200 + [attentive(emotion="sad")] * 100 + [attentive()] * 100
    assert only(flags_of(frowning, *[[attentive()] * 400] * 3), "negative") == []


def test_a_whole_class_frowning_and_a_resting_sad_face_are_not_flagged() -> None:
    whole_class = [[attentive()] * 200 + upset(100) + [attentive()] * 100] * 4
    assert only(flags_of(*whole_class), "negative") == []
    resting_sad = upset(400)
    assert only(flags_of(resting_sad, *[[attentive()] * 400] * 3), "negative") == []


def test_a_single_sad_frame_does_not_flicker_into_a_flag_and_no_emotions_raise_none() -> None:
    flicker = [attentive(emotion="sad") if i % 10 == 0 else attentive() for i in range(200)]
    assert only(flags_of(flicker), "negative") == []
    no_emotion = [attentive(emotion=None)] * 200
    assert flags_of(no_emotion) == []


def slump(seconds: int) -> list[Second]:
    """Every 10 s: 4 turned away with the eyes shut, 4 facing with the eyes shut, 2 fully attentive: below
    every other rule's threshold (turned 40 %, eyes shut 8 s at a time), a face score of 0.74."""
    pattern = [attentive(yaw=60.0, eyes_closed=True)] * 4 + [attentive(eyes_closed=True)] * 4 + [attentive()] * 2
    return (pattern * (seconds // 10 + 1))[:seconds]


def test_a_drop_against_the_own_baseline_that_no_other_flag_explains_is_flagged_and_clears() -> None:
    config = CONFIG.model_copy(update={"flags": CONFIG.flags.model_copy(update={"drop_fraction": 0.2})})
    flags = flags_of([attentive()] * 300 + slump(120) + [attentive()] * 200, config=config)
    (flag,) = flags
    assert flag.rule == "drop" and "own 1.00" in flag.reason
    assert flag.start == at(300)
    assert flag.end is not None and at(420) < flag.end < at(480)


def test_a_drop_another_flag_explains_is_not_raised() -> None:
    # Five engaged minutes, then 90 s turned away with the eyes shut: looking away and eyes closed say why.
    flags = flags_of([attentive()] * 300 + [attentive(yaw=60.0, eyes_closed=True)] * 90 + [attentive()] * 200)
    assert sorted(flag.rule for flag in flags) == ["eyes_closed", "looking_away"]


def test_a_student_who_was_always_low_has_no_drop() -> None:
    always_away = [attentive(yaw=60.0)] * 500
    assert only(flags_of(always_away), "drop") == []


def test_flags_starting_after_the_rules_history_are_the_same_from_a_later_read() -> None:
    seconds = [attentive()] * 300 + [Second(presence="camera_off")] * 90 + [attentive()] * 100 + upset(100)
    seconds += [attentive()] * 60 + [attentive(yaw=60.0)] * 150 + [attentive()] * 50
    students = (seconds, *[[attentive()] * len(seconds)] * 3)
    rows, frames = session(*students)
    whole = session_flags(frame_signals(rows, frames, CONFIG.score), CONFIG.flags)
    assert sorted(flag.rule for flag in whole) == ["camera_off", "looking_away", "negative"]
    cut = T0 + pd.Timedelta(seconds=200)
    later = session_flags(frame_signals(rows[rows["ts"] > cut], frames[frames["ts"] > cut], CONFIG.score), CONFIG.flags)
    settled = cut + pd.Timedelta(seconds=history_seconds(CONFIG.flags))
    assert [flag for flag in later if flag.start >= settled] == [flag for flag in whole if flag.start >= settled]


def test_the_smoothed_negative_emotion_is_the_same_to_the_bit_wherever_the_read_begins() -> None:
    # Uneven frame times and probabilities whose sums round: a running sum would carry the rounding of the rows
    # before a read's start into every later mean (the live page scores new frames on their own).
    rng = np.random.default_rng(3)
    students = [[attentive(emotion=str(rng.choice(EMOTIONS))) for _ in range(120)] for _ in range(3)]
    rows, frames = session(*students)
    jitter = pd.to_timedelta(rng.uniform(0, 0.9, len(frames)).cumsum(), unit="s")
    frames["ts"] += jitter
    rows["ts"] = rows["frame"].map(frames["ts"])
    rows["negative"] = rng.uniform(0, 1, len(rows)).round(7) / 3
    whole = frame_signals(rows, frames, CONFIG.score)
    cut = frames["ts"][40]
    later = frame_signals(rows[rows["ts"] > cut], frames[frames["ts"] > cut], CONFIG.score)
    settled = cut + pd.Timedelta(seconds=CONFIG.score.emotion_window_seconds)
    np.testing.assert_array_equal(
        later.loc[later["ts"] > settled, "negative"].to_numpy(), whole.loc[whole["ts"] > settled, "negative"]
    )
    # The trailing window's mean as pandas gives it, but for the last decimals of its running sum.
    window = f"{CONFIG.score.emotion_window_seconds * 1000:.0f}ms"
    rolling = rows.sort_values(["student_id", "ts"]).set_index("ts").groupby("student_id")["negative"]
    expected = rolling.rolling(window, min_periods=1).mean().to_numpy()
    np.testing.assert_allclose(whole["negative"].to_numpy(), expected, rtol=0, atol=1e-12)
