"""`python -m analytics export` run as a real subprocess against a real SQLite file."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from db.migrate import upgrade
from db.recorder import SessionRecorder
from db.schema import students
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 4, 9, 15, 0, 250000, tzinfo=UTC)
# The column order is the file's contract, so it is spelled out here rather than imported.
HEADER = [
    "frame",
    "ts",
    "student",
    "name",
    "x",
    "y",
    "w",
    "h",
    "emotion",
    "p_angry",
    "p_disgust",
    "p_fear",
    "p_happy",
    "p_sad",
    "p_surprise",
    "p_neutral",
    "presence",
    "yaw",
    "pitch",
    "eye_ratio",
    "eyes_closed",
    "landmarks_age",
]
# What the signal columns hold for observations recorded without signals (a face, nothing measured).
NO_SIGNALS = ["face", "", "", "", "", ""]
P_HAPPY = np.array([0.01, 0.0, 0.02, 0.9, 0.01, 0.03, 0.03], np.float32)
P_SAD = np.array([0.05, 0.01, 0.1, 0.02, 0.7, 0.02, 0.1], np.float32)


def face(key: str, x: int, p: np.ndarray) -> Observation:
    return Observation(key, Box(x, 0, 100, 100), Box(x + 10, 10, 40, 48), p, int(np.argmax(p)))


@pytest.fixture
def database(tmp_path: Path) -> str:
    """Two frames of one session; tile-1 carries a display name with a comma; another session exists."""
    url = f"sqlite:///{tmp_path / 'classpulse.db'}"
    engine = upgrade(url)
    with SessionRecorder.open(engine, "period-1", "screen:1") as recorder:
        recorder.record(FrameResult(0, T0, [face("tile-0", 0, P_HAPPY), face("tile-1", 100, P_SAD)], 9.0))
        recorder.record(
            FrameResult(1, T0 + timedelta(seconds=1), [face("tile-1", 100, P_HAPPY), face("tile-0", 0, P_SAD)], 9.0)
        )
    SessionRecorder.open(engine, "period-2", "screen:1").close()
    with engine.begin() as connection:
        connection.execute(update(students).where(students.c.key == "tile-1").values(display_name="Lovelace, Ada"))
    engine.dispose()
    return url


def run_export(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "analytics", "export", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    for text in expected:
        assert text in lines[0]


def test_export_writes_one_row_per_face_in_the_documented_format(database: str, tmp_path: Path) -> None:
    out = tmp_path / "period-1.csv"
    result = run_export("--db", database, "--session", "period-1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 4 rows to {out}"

    with out.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == HEADER
    assert [row[: -len(NO_SIGNALS)] for row in rows[1:]] == [
        [
            "0",
            "2025-03-04T09:15:00.250Z",
            "tile-0",
            "",
            "10",
            "10",
            "40",
            "48",
            "happy",
            "0.0100",
            "0.0000",
            "0.0200",
            "0.9000",
            "0.0100",
            "0.0300",
            "0.0300",
        ],
        [
            "0",
            "2025-03-04T09:15:00.250Z",
            "tile-1",
            "Lovelace, Ada",
            "110",
            "10",
            "40",
            "48",
            "sad",
            "0.0500",
            "0.0100",
            "0.1000",
            "0.0200",
            "0.7000",
            "0.0200",
            "0.1000",
        ],
        [
            "1",
            "2025-03-04T09:15:01.250Z",
            "tile-0",
            "",
            "10",
            "10",
            "40",
            "48",
            "sad",
            "0.0500",
            "0.0100",
            "0.1000",
            "0.0200",
            "0.7000",
            "0.0200",
            "0.1000",
        ],
        [
            "1",
            "2025-03-04T09:15:01.250Z",
            "tile-1",
            "Lovelace, Ada",
            "110",
            "10",
            "40",
            "48",
            "happy",
            "0.0100",
            "0.0000",
            "0.0200",
            "0.9000",
            "0.0100",
            "0.0300",
            "0.0300",
        ],
    ]
    assert all(row[-len(NO_SIGNALS) :] == NO_SIGNALS for row in rows[1:])


def test_a_carried_eye_reading_is_exported_with_its_age(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'classpulse.db'}"
    engine = upgrade(url)
    measured = FaceSignals(Presence.FACE, yaw=12.5, pitch=-3.0, eye_ratio=0.31, eyes_closed=False, landmarks_age=0)
    carried = FaceSignals(Presence.FACE, yaw=14.0, pitch=-2.5, eye_ratio=0.31, eyes_closed=False, landmarks_age=4)
    with SessionRecorder.open(engine, "period-1", "screen:1") as recorder:
        for index, signals in enumerate([measured, carried]):
            observation = Observation("tile-0", None, Box(10, 10, 40, 48), P_HAPPY, 3, signals)
            recorder.record(FrameResult(index, T0 + timedelta(seconds=index), [observation], 9.0))
    engine.dispose()
    out = tmp_path / "period-1.csv"
    assert run_export("--db", url, "--session", "period-1", "--out", str(out)).returncode == 0
    with out.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert [row[-len(NO_SIGNALS) :] for row in rows[1:]] == [
        ["face", "12.5", "-3.0", "0.3100", "0", "0"],
        ["face", "14.0", "-2.5", "0.3100", "0", "4"],
    ]


def test_an_unknown_session_exits_2_naming_the_known_ones(database: str, tmp_path: Path) -> None:
    out = tmp_path / "friday.csv"
    result = run_export("--db", database, "--session", "friday", "--out", str(out))
    assert_one_line_error(result, "'friday'", "'period-1'", "'period-2'")
    assert not out.exists()


@pytest.mark.parametrize(
    ("db_arg", "expected"),
    [("sqlite:///{tmp}/missing.db", "no database file"), ("mysqlish://u:pw@h/x", "unknown database kind")],
)
def test_a_bad_database_exits_2_and_creates_nothing(tmp_path: Path, db_arg: str, expected: str) -> None:
    result = run_export("--db", db_arg.format(tmp=tmp_path), "--session", "period-1", "--out", str(tmp_path / "x.csv"))
    assert_one_line_error(result, expected)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_out_path_exits_2(database: str, tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "period-1.csv"
    result = run_export("--db", database, "--session", "period-1", "--out", str(out))
    assert_one_line_error(result, "cannot write", str(out))
