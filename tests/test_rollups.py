"""The per-session roll-ups (db.rollups) against real SQLite files and a real PostgreSQL: written with each frame
they agree with a recount of the raw rows, a rebuild gives them again, and PostgreSQL's hot ids are 64-bit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from analytics.live import engagement_config
from db.bulk import array_literal
from db.errors import DatabaseError
from db.migrate import upgrade
from db.queries import find_session
from db.recorder import SessionRecorder
from db.rollups import RollupRule, rebuild
from db.schema import PROBABILITY_COLUMNS, frames, observations, session_rollups, students
from db.students import merge_students, undo_merge
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

# Half a second into a bin, at 0.7 s a frame: frames fall on both sides of bin edges.
T0 = datetime(2026, 12, 3, 9, 0, 3, 500000, tzinfo=UTC)
STUDENTS = 6
FRAMES = 40
COUNTED = (
    "observations",
    "faces",
    "camera_off",
    "empty",
    "attentive",
    "eyes_open",
    "emotions",
    "emotion_faces",
    "emotion_attentive",
    "emotion_eyes_open",
    "last_frame",
)


def varied_frame(index: int, rng: np.random.Generator) -> FrameResult:
    """Every kind of row: faces turned past the limits or not, eyes closed, open or unknown, faces with and
    without an emotion, cameras off, empty seats, and a student who is out of the gallery every third frame."""
    found = []
    for n in range(STUDENTS):
        if n == STUDENTS - 1 and index % 3 == 0:
            continue
        tile = Box(100 * n, 0, 100, 100)
        kind = (index + n) % 7
        if kind == 5:
            found.append(Observation(f"tile-{n}", tile, tile, None, None, FaceSignals(Presence.CAMERA_OFF)))
            continue
        if kind == 6:
            found.append(Observation(f"tile-{n}", tile, tile, None, None, FaceSignals(Presence.EMPTY)))
            continue
        yaw = float(rng.choice([None, -45.0, 12.0, 31.0, 0.0]) or np.nan)
        pitch = float(rng.choice([-30.0, 5.0, 24.0]))
        eyes_closed = [None, True, False][int(rng.integers(3))]
        signals = FaceSignals(Presence.FACE, None if np.isnan(yaw) else yaw, pitch, 0.3, eyes_closed, 0)
        face = Box(tile.x + 20, 20, 50, 60)
        if kind == 4:  # a face seen without an emotion
            found.append(Observation(f"tile-{n}", tile, face, None, None, signals))
            continue
        probabilities = rng.dirichlet(np.ones(len(EMOTIONS)))
        found.append(Observation(f"tile-{n}", tile, face, probabilities, int(probabilities.argmax()), signals))
    return FrameResult(index, T0 + timedelta(seconds=0.7 * index), found, 5.0)


def record_varied(engine: Engine, name: str) -> int:
    rng = np.random.default_rng(7)
    with SessionRecorder.open(engine, name, "screen:1") as recorder:
        for index in range(FRAMES):
            recorder.record(varied_frame(index, rng))
    return find_session(engine, name).id


def stored_rollups(engine: Engine, session_id: int) -> pd.DataFrame:
    """The session's roll-up rows as stored, ordered by bin and student."""
    statement = (
        select(session_rollups)
        .where(session_rollups.c.session_id == session_id)
        .order_by(session_rollups.c.bin_start, session_rollups.c.student_id)
    )
    with engine.connect() as connection:
        table = pd.DataFrame(connection.execute(statement).mappings().all())
    table["bin_start"] = pd.to_datetime(table["bin_start"], utc=True)
    return table.drop(columns="session_id").reset_index(drop=True)


def recount(engine: Engine, session_id: int) -> pd.DataFrame:
    """The roll-ups counted again from the session's raw observation rows, with pandas, as stored_rollups."""
    score = engagement_config().score
    columns = ["student_id", "frame_index", "ts", "presence", "yaw", "pitch", "eyes_closed", *PROBABILITY_COLUMNS]
    with engine.connect() as connection:
        rows = pd.DataFrame(
            connection.execute(
                select(*(observations.c[c] for c in columns)).where(observations.c.session_id == session_id)
            ).all(),
            columns=columns,
        )
    presence = rows["presence"].fillna(Presence.FACE.value)
    face = presence == Presence.FACE.value
    yaw, pitch = rows["yaw"].astype(float).abs(), rows["pitch"].astype(float).abs()
    attentive = face & ~((yaw > score.max_yaw_degrees) | (pitch > score.max_pitch_degrees))
    eyes_open = face & (rows["eyes_closed"] != True)  # noqa: E712 (None is open too)
    emotion = rows[PROBABILITY_COLUMNS[0]].notna()
    negative = rows[[f"p_{e}" for e in score.negative_emotions]].astype(float).sum(axis=1).where(emotion, 0.0)
    table = pd.DataFrame(
        {
            "bin_start": pd.to_datetime(rows["ts"], utc=True).dt.floor("10s"),
            "student_id": rows["student_id"],
            "observations": 1,
            "faces": face.astype(int),
            "camera_off": (presence == Presence.CAMERA_OFF.value).astype(int),
            "empty": (presence == Presence.EMPTY.value).astype(int),
            "attentive": attentive.astype(int),
            "eyes_open": eyes_open.astype(int),
            "emotions": emotion.astype(int),
            "emotion_faces": (emotion & face).astype(int),
            "emotion_attentive": (emotion & attentive).astype(int),
            "emotion_eyes_open": (emotion & eyes_open).astype(int),
            "negative": negative,
            "frame_index": rows["frame_index"],
            "presence": presence,
        }
    ).sort_values("frame_index")
    grouped = table.groupby(["bin_start", "student_id"], sort=True)
    summed = grouped[[*COUNTED[:-1], "negative"]].sum()
    last = (
        grouped[["frame_index", "presence"]]
        .last()
        .rename(columns={"frame_index": "last_frame", "presence": "last_presence"})
    )
    return summed.join(last).reset_index()


def assert_rollups_agree(engine: Engine, session_id: int) -> None:
    stored, counted = stored_rollups(engine, session_id), recount(engine, session_id)
    assert len(stored) == len(counted) > 0
    for column in ("bin_start", "student_id", *COUNTED, "last_presence"):
        assert stored[column].tolist() == counted[column].tolist(), column
    np.testing.assert_allclose(stored["negative"], counted["negative"], rtol=0, atol=1e-9)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/c.db"
    migrated = upgrade(url)
    yield migrated
    migrated.dispose()


def test_rollups_written_with_each_frame_agree_with_a_recount_of_the_raw_rows(engine: Engine) -> None:
    session_id = record_varied(engine, "varied")
    assert_rollups_agree(engine, session_id)
    stored = stored_rollups(engine, session_id)
    # The scripted frames give every kind of count somewhere, so none of them is checked only at zero.
    assert (stored[list(COUNTED)].sum() > 0).all() and stored["negative"].sum() > 0
    assert stored["bin_start"].nunique() == 4  # 27.3 s of frames from 3.5 s into a bin


def test_a_rebuild_counts_the_same_rows_again_and_follows_a_new_rule(engine: Engine) -> None:
    session_id = record_varied(engine, "varied")
    before = stored_rollups(engine, session_id)
    with engine.begin() as connection:
        rebuild(connection, RollupRule.configured(), session_id)
    after = stored_rollups(engine, session_id)
    pd.testing.assert_frame_equal(after.drop(columns="negative"), before.drop(columns="negative"))
    np.testing.assert_allclose(after["negative"], before["negative"], rtol=0, atol=1e-9)
    # Every head counts as attentive under limits of 90°: the rule in force is what a row is counted by.
    with engine.begin() as connection:
        rebuild(connection, RollupRule(90.0, 90.0, ("p_sad",)), session_id)
    wide = stored_rollups(engine, session_id)
    assert wide["attentive"].tolist() == wide["faces"].tolist() != before["attentive"].tolist()


def test_a_frame_that_fails_adds_nothing_to_the_rollups(engine: Engine) -> None:
    session_id = record_varied(engine, "varied")
    before = stored_rollups(engine, session_id)
    with SessionRecorder.open(engine, "varied", "screen:1") as recorder:
        late = varied_frame(FRAMES, np.random.default_rng(1))
        # Stored under a number already there (as a resend is): the frame's insert fails, and all of it with it.
        recorder.next_frame_index = FRAMES - 1
        bad = FrameResult(FRAMES - 1, late.timestamp, late.observations, 5.0)
        with pytest.raises(DatabaseError):
            recorder.record(bad)
    pd.testing.assert_frame_equal(stored_rollups(engine, session_id), before)
    assert_rollups_agree(engine, session_id)


@pytest.mark.parametrize("column", [(observations, "id"), (frames, "id")], ids=["observations", "frames"])
def test_postgres_hot_ids_are_64_bit_and_go_past_2_to_the_31(postgres_url: str, column: tuple) -> None:
    engine = upgrade(postgres_url)
    table, name = column
    with engine.connect() as connection:
        types = dict(
            connection.execute(
                text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE (table_name, column_name) IN "
                    "(('observations', 'id'), ('frames', 'id'), ('student_merge_rows', 'observation_id'))"
                )
            ).all()
        )
        sequences = dict(
            connection.execute(text("SELECT sequence_name, data_type FROM information_schema.sequences")).all()
        )
    assert types == dict.fromkeys(["observations.id", "frames.id", "student_merge_rows.observation_id"], "bigint")
    assert sequences["observations_id_seq"] == sequences["frames_id_seq"] == "bigint"
    with engine.begin() as connection:
        connection.execute(text(f"SELECT setval('{table.name}_{name}_seq', {2**31 + 10})"))
    session_id = record_varied(engine, "past 2**31")
    with engine.connect() as connection:
        ids = connection.scalars(select(table.c[name]).where(table.c.session_id == session_id)).all()
    assert len(ids) > 0 and min(ids) > 2**31
    assert_rollups_agree(engine, session_id)
    engine.dispose()


def test_array_literals_read_back_as_the_values_they_were_made_of(postgres_url: str) -> None:
    """The school server sends a batch's columns as array literals (db.bulk.array_literal): every value a row
    may hold, awkward text and NumPy scalars included, reads back as itself through the statement's cast."""
    minus_five = timezone(timedelta(hours=-5))
    columns: list[tuple[str, list[Any], list[Any]]] = [
        ("text", ["plain", 'a "quoted" word', "back\\slash", "comma, {brace}", "NULL", "", " sp ", "ünï ☺", None], []),
        ("double precision", [0.1, -2.5e-300, 1.7976931348623157e308, 5e-324, None, np.float64(1 / 3)], []),
        ("double precision", [np.float32(0.1), 2.0, 3.5], [float(np.float32(0.1)), 2.0, 3.5]),
        ("integer", [0, -7, 2**31 - 1, None, np.int64(5)], []),
        ("boolean", [True, False, None, np.bool_(True)], []),
        ("timestamptz", [T0, datetime(2026, 12, 3, 4, 5, 6, 7, tzinfo=minus_five), T0, None], []),
    ]
    engine = create_engine(postgres_url, poolclass=NullPool)
    with engine.connect() as connection:
        for type_name, values, expected in columns:
            read = connection.exec_driver_sql(f"SELECT %s::{type_name}[]", (array_literal(values),)).scalar_one()
            assert read == (expected or values), type_name
        nan = connection.exec_driver_sql("SELECT %s::float8[]", (array_literal([float("nan")]),)).scalar_one()
        assert np.isnan(nan[0])
    engine.dispose()


def test_a_merge_and_its_undo_move_the_rollups_with_the_rows(engine: Engine) -> None:
    session_id = record_varied(engine, "varied")
    before = stored_rollups(engine, session_id)
    with engine.connect() as connection:
        dropped = connection.scalar(select(students.c.id).where(students.c.key == "tile-1"))
    assert dropped in set(before["student_id"])
    merge = merge_students(engine, "varied", "tile-0", "tile-1")
    assert_rollups_agree(engine, session_id)
    assert dropped not in set(stored_rollups(engine, session_id)["student_id"])
    undo_merge(engine, "varied", merge.id)
    assert_rollups_agree(engine, session_id)
    after = stored_rollups(engine, session_id)
    pd.testing.assert_frame_equal(after.drop(columns="negative"), before.drop(columns="negative"))
