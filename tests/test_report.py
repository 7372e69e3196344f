"""`python -m analytics report` and `python -m capture --attention-only` as real subprocesses on real SQLite files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.report import session_tables, student_timeline
from analytics.settings import DEFAULT_CONFIG, load_config
from dashboard.figures import mood_timeline
from dashboard.report_figures import state_heatmap, student_timeline_figure
from db.migrate import upgrade
from db.queries import find_session
from db.recorder import SessionRecorder
from db.schema import PROBABILITY_COLUMNS
from tests.cli import assert_one_clear_line, run_module, sqlite_rows
from tests.galleries import astronaut
from tests.test_timeline import PERIOD_1, record
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
HAPPY = np.eye(len(EMOTIONS), dtype=np.float32)[EMOTIONS.index("happy")]
TILE_1, TILE_2 = Box(0, 0, 160, 90), Box(170, 0, 160, 90)


def face(key: str, tile: Box, yaw: float = 0.0) -> Observation:
    signals = FaceSignals(Presence.FACE, yaw=yaw, pitch=0.0, eye_ratio=0.3, eyes_closed=False)
    return Observation(key, tile, Box(tile.x + 50, 10, 40, 48), HAPPY, EMOTIONS.index("happy"), signals)


def camera_off(key: str, tile: Box) -> Observation:
    return Observation(key, tile, tile, None, None, FaceSignals(Presence.CAMERA_OFF))


@pytest.fixture
def database(tmp_path: Path) -> str:
    """Three minutes at 1 frame/s: tile-1 attentive throughout; tile-2 attentive for a minute, then turned
    away for 30 s, then camera off for the last 90 s (a camera-off flag still on at the end)."""
    url = f"sqlite:///{tmp_path / 'class.db'}"
    engine = upgrade(url)
    with SessionRecorder.open(engine, "period-1", "screen") as recorder:
        for second in range(180):
            second_student = (
                face("tile-2", TILE_2) if second < 60
                else face("tile-2", TILE_2, yaw=70.0) if second < 90
                else camera_off("tile-2", TILE_2)
            )  # fmt: skip
            observations = [face("tile-1", TILE_1), second_student]
            recorder.record(FrameResult(second, T0 + timedelta(seconds=second), observations, 20.0))
    engine.dispose()
    return url


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_report_writes_students_class_and_flags(database: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_module("analytics", "report", "--db", database, "--session", "period-1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 2 students, 18 time bins, 1 flags to {out}"

    first, second = read_csv(out / "students.csv")
    assert first["student"] == "tile-1" and second["student"] == "tile-2"
    assert float(first["seconds_present"]) == 180 and float(first["seconds_attentive"]) == 180
    assert float(first["engagement"]) == pytest.approx(1.0)
    assert float(first["share_happy"]) == 1 and float(first["share_sad"]) == 0
    assert first["flags"] == "0"
    assert float(second["seconds_present"]) == 90
    assert float(second["seconds_camera_off"]) == 90
    assert float(second["seconds_attentive"]) == 60
    assert float(second["attentive_share"]) == pytest.approx(60 / 90, abs=1e-3)
    assert second["flags"] == "1" and "camera_off: camera off for more than 60 s" in second["flag_reasons"]

    class_rows = read_csv(out / "class.csv")
    assert list(class_rows[0]) == ["bin", "students", "present", "attentive", "engagement"]
    assert float(class_rows[0]["engagement"]) == pytest.approx(1.0)
    assert float(class_rows[-1]["present"]) == pytest.approx(0.5)
    assert class_rows[0]["bin"] == "2025-03-04T09:00:00Z"

    (flag,) = read_csv(out / "flags.csv")
    assert (flag["student"], flag["rule"], flag["end"]) == ("tile-2", "camera_off", "")
    assert flag["start"] == "2025-03-04T09:01:30Z"

    # tile-2 never left: 180 s present, the last 90 s with the camera off.
    attendance = read_csv(out / "attendance.csv")
    assert [(row["student"], row["joined"], row["left"], row["seconds_camera_off"]) for row in attendance] == [
        ("tile-1", "2025-03-04T09:00:00Z", "2025-03-04T09:03:00Z", "0.000"),
        ("tile-2", "2025-03-04T09:00:00Z", "2025-03-04T09:03:00Z", "90.000"),
    ]
    assert [(row["seconds_present"], row["times_away"], row["away"]) for row in attendance] == [
        ("180.000", "0", "")
    ] * 2


def test_report_of_an_unknown_session_exits_2_with_one_line(database: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_module("analytics", "report", "--db", database, "--session", "friday", "--out", str(out))
    assert_one_clear_line(result, "'friday'", "'period-1'")
    assert not out.exists()


def test_report_rejects_a_config_with_an_unknown_key(database: str, tmp_path: Path) -> None:
    config = tmp_path / "engagement.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace("bin_seconds = 10", "bin_seconds = 10\nbin_secs = 5"))
    args = ("--db", database, "--session", "period-1", "--out", str(tmp_path / "r"), "--config", str(config))
    assert_one_clear_line(run_module("analytics", "report", *args), "unknown key(s) bin_secs", "engagement.toml")


def test_attention_only_capture_never_loads_the_emotion_model_and_stores_no_emotion(tmp_path: Path) -> None:
    image, db = tmp_path / "astronaut.png", tmp_path / "class.db"
    cv2.imwrite(str(image), astronaut())
    # A model path that does not exist: the run succeeds only if the model is never loaded.
    args = ("--source", str(image), "--db", f"sqlite:///{db}", "--session", "s", "--model", str(tmp_path / "no.tflite"))
    result = run_module("capture", *args, "--attention-only")
    assert result.returncode == 0, result.stderr
    assert "faces=1" in result.stdout
    emotion_columns = ", ".join(["emotion", *PROBABILITY_COLUMNS])
    (row,) = sqlite_rows(db, f"SELECT {emotion_columns}, presence, yaw, pitch, eye_ratio FROM observations")
    assert row[: len(PROBABILITY_COLUMNS) + 1] == (None,) * (len(PROBABILITY_COLUMNS) + 1)
    presence, yaw, pitch, eye_ratio = row[len(PROBABILITY_COLUMNS) + 1 :]
    assert presence == "face" and abs(yaw) < 10 and abs(pitch) < 15 and eye_ratio > 0.25
    # Without the switch the same (missing) model is an error.
    assert_one_clear_line(run_module("capture", *args), "no.tflite")


def test_student_table_times_each_students_faces_shares_and_dominant_emotion(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'period.db'}")
    record(engine, "period-1", PERIOD_1)
    tables = session_tables(engine, find_session(engine, "period-1").id, load_config())
    students = tables.students.set_index("student")

    assert list(students.index) == ["tile-0", "tile-1", "tile-2"]
    # Frames 4 s apart: tile-2's four frames stand for 16 s, until it left the gallery.
    assert list(students["seconds_present"]) == [28, 28, 16]
    assert students.loc["tile-2", "last_seen"] == T0 + timedelta(seconds=12)
    assert students.loc["tile-0", "share_happy"] == pytest.approx(4 / 7)
    assert students.loc["tile-2", "share_neutral"] == pytest.approx(3 / 4)
    assert list(students["dominant"]) == ["happy", "sad", "neutral"]
    assert np.allclose(students[[f"share_{emotion}" for emotion in EMOTIONS]].sum(axis=1), 1.0)

    record(engine, "cameras-off", [(0, {}), (1, {})])
    empty = session_tables(engine, find_session(engine, "cameras-off").id, load_config()).students
    assert empty.empty and {"student", "first_seen", "seconds_present", "dominant"} <= set(empty.columns)
    engine.dispose()


def empty_seat(key: str, tile: Box) -> Observation:
    return Observation(key, tile, tile, None, None, FaceSignals(Presence.EMPTY))


def test_attendance_gives_joined_left_camera_off_and_each_spell_away(tmp_path: Path) -> None:
    """tile-2, second by second: a face 0-9, camera off 10-19, out of the call 20-29, a face 30-39, an empty
    seat 40-44, a face 45-49, gone from 50 while tile-1 stays until 60."""
    engine = upgrade(f"sqlite:///{tmp_path / 'class.db'}")
    with SessionRecorder.open(engine, "period-1", "screen") as recorder:
        for second in range(60):
            second_student = (
                [face("tile-2", TILE_2)] if second < 10 or 30 <= second < 40 or 45 <= second < 50
                else [camera_off("tile-2", TILE_2)] if second < 20
                else [empty_seat("tile-2", TILE_2)] if 40 <= second < 45
                else []
            )  # fmt: skip
            recorder.record(
                FrameResult(second, T0 + timedelta(seconds=second), [face("tile-1", TILE_1), *second_student], 20.0)
            )
    tables = session_tables(engine, find_session(engine, "period-1").id, load_config())
    engine.dispose()
    first, second = tables.attendance.itertuples(index=False)
    assert (first.joined, first.left, first.seconds_present, first.times_away) == (
        T0,
        T0 + timedelta(seconds=60),
        60,
        0,
    )
    assert (second.joined, second.left) == (T0, T0 + timedelta(seconds=50))
    assert (second.seconds_present, second.seconds_camera_off, second.seconds_away) == (35, 10, 15)
    assert second.times_away == 2
    assert second.away == [
        (T0 + timedelta(seconds=20), T0 + timedelta(seconds=30)),
        (T0 + timedelta(seconds=40), T0 + timedelta(seconds=45)),
    ]
    # On the heatmap, bin by bin: the state that held longest (a tie, 5 s empty and 5 s face, reads as face),
    # scored only where the face showed.
    states = tables.states[tables.states["student"] == "tile-2"]
    assert list(states["state"]) == ["face", "camera_off", "absent", "face", "face", "absent"]
    assert states["score"].notna().tolist() == [True, False, False, True, True, False]
    # Engagement is scored over the time their face showed, not diluted by the time away or unseen.
    assert tables.students.set_index("student").loc["tile-2", "engagement"] == pytest.approx(1.0)


def test_a_short_sessions_charts_tick_whole_seconds_and_span_their_bins(tmp_path: Path) -> None:
    """Three seconds of class: Plotly, left to itself, labels such an axis every few milliseconds."""
    engine = upgrade(f"sqlite:///{tmp_path / 'short.db'}")
    with SessionRecorder.open(engine, "three seconds", "screen") as recorder:
        for second in range(3):
            recorder.record(FrameResult(second, T0 + timedelta(seconds=second), [face("tile-1", TILE_1)], 20.0))
    config = load_config()
    session = find_session(engine, "three seconds").id
    tables = session_tables(engine, session, config)
    assert tables.states is not None
    heatmap = state_heatmap(tables.states, config.score.bin_seconds)
    # The one bin is a cell from its start to the next bin's, not a sliver of a millisecond about its start.
    edges = heatmap.data[0].x
    assert len(edges) == 2 and edges[1] - edges[0] == timedelta(seconds=config.score.bin_seconds)
    timeline = student_timeline(engine, session, int(tables.states["student_id"].iloc[0]), tables.flags, config)
    engine.dispose()
    figure = student_timeline_figure(timeline)
    start, end = figure.layout.xaxis.range
    assert end - start == timedelta(seconds=timeline.bin_seconds)
    mood = mood_timeline(tables.emotion_counts)
    axes = (heatmap.layout.xaxis, figure.layout.xaxis, figure.layout.xaxis2, figure.layout.xaxis3, mood.layout.xaxis)
    for axis in axes:
        assert axis.dtick >= 1000 and axis.dtick % 1000 == 0, axis
    # Ticks follow the range shown, not the data: a live page's 15-minute window over 3 s of class is left to
    # Plotly, not labelled every second (900 labels stalled the browser).
    assert mood_timeline(tables.emotion_counts, shown=(T0, T0 + timedelta(minutes=15))).layout.xaxis.dtick is None
