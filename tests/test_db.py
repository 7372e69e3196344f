"""The database package against real SQLite files and a PostgreSQL server: migrations, recorder, queries."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, LargeBinary, func, insert, inspect, select, text

from db.engine import connect
from db.errors import DatabaseError
from db.migrate import current_revision, head_revision, upgrade
from db.queries import UnknownSessionError, find_session, frame_rows, observation_rows
from db.recorder import SessionRecorder
from db.schema import PROBABILITY_COLUMNS, Base, frames, observations, sessions, students
from vocabulary.records import Box, FrameResult, Observation

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 4, 9, 0, 0, 123456, tzinfo=UTC)


def probabilities(*weights: float) -> np.ndarray:
    p = np.asarray(weights, np.float32)
    return p / p.sum()


def observation(key: str, box: Box, tile: Box | None, p: np.ndarray) -> Observation:
    return Observation(student_key=key, tile=tile, box=box, probabilities=p, emotion=int(np.argmax(p)))


def frame(index: int, found: list[Observation], seconds: float | None = None) -> FrameResult:
    ts = T0 + timedelta(seconds=index if seconds is None else seconds)
    return FrameResult(frame_index=index, timestamp=ts, observations=found, processing_ms=10.0 + index)


def count(engine: Engine, table) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind the project supports: tests that take `url` or `engine` run on both."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'nested' / 'classpulse.db'}"


# For tests of SQLite's own behaviour (WAL, PRAGMAs, trigger syntax).
sqlite_only = pytest.mark.parametrize("url", ["sqlite"], indirect=True)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    migrated = upgrade(url)
    yield migrated
    migrated.dispose()


TILE_A, TILE_B, TILE_C = Box(0, 0, 320, 180), Box(320, 0, 320, 180), Box(640, 0, 320, 180)
P_HAPPY = probabilities(1, 0, 2, 30, 1, 3, 5)
P_SAD = probabilities(2, 1, 3, 1, 20, 1, 4)
P_NEUTRAL = probabilities(1, 1, 1, 2, 2, 1, 9)


def three_frames() -> list[FrameResult]:
    """tile-0 throughout; tile-1 from frame 0 (moves tile in frame 2); track-7 appears in frame 1 without a tile."""
    return [
        frame(
            0,
            [
                observation("tile-0", Box(10, 20, 50, 60), TILE_A, P_HAPPY),
                observation("tile-1", Box(330, 25, 48, 52), TILE_B, P_SAD),
            ],
        ),
        frame(
            1,
            [
                observation("tile-0", Box(11, 21, 50, 60), TILE_A, P_NEUTRAL),
                observation("tile-1", Box(331, 26, 48, 52), TILE_B, P_HAPPY),
                observation("track-7", Box(700, 30, 40, 44), None, P_SAD),
            ],
        ),
        frame(
            2,
            [
                observation("tile-1", Box(650, 26, 48, 52), TILE_C, P_NEUTRAL),
                observation("tile-0", Box(12, 22, 50, 60), None, P_SAD),
            ],
        ),
    ]


def test_upgrade_creates_every_table_and_the_time_indexes(engine: Engine) -> None:
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) == {
        "alembic_version",
        "sessions",
        "students",
        "frames",
        "observations",
        "users",
        "flag_acknowledgements",
        "flag_silences",
        "session_writers",
        "capture_tokens",
        "student_merges",
        "student_merge_rows",
        "session_rollups",
        "classes",
        "class_students",
        "class_student_aliases",
    }
    for table in ("frames", "observations"):
        assert ["session_id", "ts"] in [index["column_names"] for index in inspector.get_indexes(table)]
    assert current_revision(engine) == head_revision()


# The keys 0013 added to existing tables on SQLite, written inline in ALTER TABLE ADD COLUMN (a rebuild of sessions
# or students would delete their children): SQLAlchemy reads the name and ON DELETE of table-level keys only, so
# these reflect unnamed and without it. test_sqlite_keeps_the_roster_keys_on_delete checks what they do instead.
INLINE_SQLITE_KEYS = {
    ("sessions", "class_id"),
    ("students", "class_student_id"),
    ("student_merges", "kept_class_student_id"),
    ("student_merges", "dropped_class_student_id"),
    ("student_merges", "roster_alias_was"),
}


def test_migration_matches_schema_module(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    if engine.dialect.name == "sqlite":
        differences = [
            difference
            for difference in differences
            if not (
                difference[0] in ("add_fk", "remove_fk")
                and (difference[1].table.name, *difference[1].column_keys) in INLINE_SQLITE_KEYS
            )
        ]
    assert differences == []


@sqlite_only
def test_sqlite_keeps_the_roster_keys_on_delete(engine: Engine) -> None:
    with engine.connect() as connection:
        for table, column in INLINE_SQLITE_KEYS:
            keys = connection.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()
            # (id, seq, table, from, to, on_update, on_delete, match)
            assert [(key[3], key[6]) for key in keys if key[3] == column] == [(column, "SET NULL")]


def test_no_column_can_hold_an_image() -> None:
    binary = [
        f"{c.table.name}.{c.name}"
        for t in Base.metadata.tables.values()
        for c in t.columns
        if isinstance(c.type, LargeBinary)
    ]
    assert binary == []


def test_upgrade_twice_and_racing_processes_leave_one_current_schema(url: str) -> None:
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def migrate() -> None:
        start.wait()
        try:
            upgrade(url).dispose()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            failures.append(exc)

    workers = [threading.Thread(target=migrate) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    engine = upgrade(url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()


@sqlite_only
def test_sqlite_connections_use_wal_and_enforce_foreign_keys(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    bad = {"session_id": 99, "key": "tile-0", "first_seen": T0, "last_seen": T0}
    with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as connection:
        connection.execute(insert(students).values(bad))


def test_alembic_command_line_migrates_sqlite_and_prints_postgres_sql(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    alembic = [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "db" / "alembic.ini")]
    subprocess.run(
        [*alembic, "-x", f"db=sqlite:///{database}", "upgrade", "head"], check=True, cwd=tmp_path, capture_output=True
    )
    assert "observations" in inspect(connect(f"sqlite:///{database}")).get_table_names()

    offline = subprocess.run(
        [*alembic, "-x", "db=postgresql://u:p@nowhere/classpulse", "upgrade", "head", "--sql"],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout
    assert "CREATE TABLE observations" in offline
    assert "ts TIMESTAMP WITH TIME ZONE NOT NULL" in offline
    assert all(f"{column} FLOAT NOT NULL" in offline for column in PROBABILITY_COLUMNS)


def test_recorded_frames_read_back_exactly(engine: Engine) -> None:
    results = three_frames()
    with SessionRecorder.open(engine, "period-1", "screen:1") as recorder:
        for result in results:
            recorder.record(result)

    session = find_session(engine, "period-1")
    assert (session.source, session.ended_at is not None) == ("screen:1", True)

    rows = observation_rows(engine, session.id)
    expected = [(result.frame_index, result.timestamp, o) for result in results for o in result.observations]
    # Ordered by frame, then by student in order of first appearance (tile-0, tile-1, track-7).
    order = {"tile-0": 0, "tile-1": 1, "track-7": 2}
    expected.sort(key=lambda item: (item[0], order[item[2].student_key]))
    assert len(rows) == len(expected) == 7
    for row, (index, ts, o) in zip(rows.itertuples(index=False), expected, strict=True):
        assert (row.frame, row.ts.to_pydatetime(), row.student, row.name) == (index, ts, o.student_key, None)
        assert (row.x, row.y, row.w, row.h, row.emotion) == (o.box.x, o.box.y, o.box.w, o.box.h, o.emotion)
        stored = np.array([getattr(row, column) for column in PROBABILITY_COLUMNS])
        np.testing.assert_array_equal(stored, o.probabilities.astype(np.float64))

    frame_table = frame_rows(engine, session.id)
    assert frame_table["frame"].tolist() == [0, 1, 2]
    assert frame_table["faces"].tolist() == [2, 3, 2]
    assert frame_table["processing_ms"].tolist() == [10.0, 11.0, 12.0]
    assert [ts.to_pydatetime() for ts in frame_table["ts"]] == [r.timestamp for r in results]

    with engine.connect() as connection:
        stored_students = {row.key: row for row in connection.execute(select(students).order_by(students.c.id))}
    assert list(stored_students) == ["tile-0", "tile-1", "track-7"]
    tile = lambda row: (row.tile_x, row.tile_y, row.tile_w, row.tile_h)  # noqa: E731
    # tile-0 had no tile in frame 2: its last known tile stays; tile-1 moved to TILE_C.
    assert tile(stored_students["tile-0"]) == (0, 0, 320, 180)
    assert tile(stored_students["tile-1"]) == (640, 0, 320, 180)
    assert tile(stored_students["track-7"]) == (None, None, None, None)
    seen = {key: (row.first_seen, row.last_seen) for key, row in stored_students.items()}
    assert seen == {
        "tile-0": (T0, T0 + timedelta(seconds=2)),
        "tile-1": (T0, T0 + timedelta(seconds=2)),
        "track-7": (T0 + timedelta(seconds=1), T0 + timedelta(seconds=1)),
    }


def test_timestamps_in_other_zones_are_the_same_instant_in_utc_and_naive_ones_are_refused(engine: Engine) -> None:
    recorder = SessionRecorder.open(engine, "zones", "video.mp4")
    berlin = datetime(2025, 3, 4, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    recorder.record(FrameResult(0, berlin, [observation("tile-0", Box(1, 2, 3, 4), None, P_HAPPY)], 5.0))
    naive = FrameResult(1, datetime(2025, 3, 4, 8, 31), [], 5.0)
    with pytest.raises(ValueError, match="no timezone"):
        recorder.record(naive)

    stored = frame_rows(engine, recorder.session_id)["ts"].tolist()
    assert [ts.to_pydatetime() for ts in stored] == [datetime(2025, 3, 4, 8, 30, tzinfo=UTC)]
    assert str(stored[0].tz) == "UTC"


def test_resumed_session_continues_the_frame_index_and_keeps_its_students(engine: Engine) -> None:
    with SessionRecorder.open(engine, "period-2", "screen:1") as recorder:
        for result in three_frames():
            recorder.record(result)

    resumed = SessionRecorder.open(engine, "period-2", "screen:1")
    assert resumed.next_frame_index == 3
    assert find_session(engine, "period-2").ended_at is None
    resumed.record(
        frame(
            3,
            [
                observation("tile-1", Box(1, 1, 9, 9), TILE_C, P_HAPPY),
                observation("tile-9", Box(2, 2, 9, 9), TILE_A, P_SAD),
            ],
        )
    )
    resumed.close()

    assert count(engine, sessions) == 1
    assert count(engine, students) == 4  # tile-1 reused, tile-9 new
    rows = observation_rows(engine, resumed.session_id)
    assert rows.loc[rows["frame"] == 3, "student"].tolist() == ["tile-1", "tile-9"]
    assert find_session(engine, "period-2").ended_at is not None


def test_a_frame_index_already_recorded_is_refused(engine: Engine) -> None:
    recorder = SessionRecorder.open(engine, "period-3", "screen:1")
    recorder.record(frame(0, []))
    with pytest.raises(ValueError, match="already recorded"):
        recorder.record(frame(0, [observation("tile-0", Box(1, 1, 9, 9), None, P_HAPPY)]))
    assert count(engine, frames) == 1
    assert count(engine, observations) == 0


@sqlite_only
def test_a_frame_that_fails_in_the_database_writes_nothing_and_recording_goes_on(engine: Engine) -> None:
    recorder = SessionRecorder.open(engine, "period-4", "screen:1")
    with engine.begin() as connection:  # a real failure inside the transaction, after the frame row
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_x BEFORE INSERT ON observations WHEN NEW.x = -1 "
            "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
        )
    poisoned = frame(0, [observation("tile-0", Box(-1, 0, 9, 9), TILE_A, P_HAPPY)])
    with pytest.raises(DatabaseError, match="refused by test trigger"):
        recorder.record(poisoned)
    assert (count(engine, frames), count(engine, students), count(engine, observations)) == (0, 0, 0)
    assert recorder.next_frame_index == 0

    recorder.record(frame(0, [observation("tile-0", Box(5, 0, 9, 9), TILE_A, P_HAPPY)]))
    assert (count(engine, frames), count(engine, students), count(engine, observations)) == (1, 1, 1)


@sqlite_only
def test_a_reader_sees_committed_rows_while_the_writer_holds_the_database(url: str, engine: Engine) -> None:
    recorder = SessionRecorder.open(engine, "live", "screen:1")
    recorder.record(frame(0, [observation("tile-0", Box(1, 1, 9, 9), TILE_A, P_HAPPY)]))
    reader = connect(url)
    with reader.connect() as old_snapshot:
        assert old_snapshot.scalar(select(func.count()).select_from(frames)) == 1
        # The reader's transaction is still open; in WAL mode the writer commits regardless.
        recorder.record(frame(1, [observation("tile-0", Box(1, 1, 9, 9), TILE_A, P_SAD)]))
        assert old_snapshot.scalar(select(func.count()).select_from(frames)) == 1
    fresh = observation_rows(reader, recorder.session_id)
    assert fresh["frame"].tolist() == [0, 1]
    assert frame_rows(reader, recorder.session_id, since=T0)["frame"].tolist() == [1]
    reader.dispose()


def test_since_returns_only_rows_strictly_after_it(engine: Engine) -> None:
    recorder = SessionRecorder.open(engine, "since", "screen:1")
    for result in three_frames():
        recorder.record(result)
    later = observation_rows(engine, recorder.session_id, since=T0 + timedelta(seconds=1))
    assert later["frame"].tolist() == [2, 2]
    assert observation_rows(engine, recorder.session_id, since=T0 + timedelta(seconds=2)).empty


def test_an_unknown_session_error_names_the_known_ones(engine: Engine) -> None:
    SessionRecorder.open(engine, "monday", "screen:1")
    SessionRecorder.open(engine, "tuesday", "screen:1")
    with pytest.raises(UnknownSessionError, match=r"no session named 'friday'.*'tuesday', 'monday'"):
        find_session(engine, "friday")


@pytest.mark.parametrize(
    ("bad_url", "reason"),
    [
        ("not a url", "is not a database URL"),
        ("oracle9://scott:tiger@db/x", "unknown database kind 'oracle9'"),
        ("postgresql://teacher:s3cret@127.0.0.1:1/classpulse", "127.0.0.1"),
        ("sqlite:///{tmp}/a-file/classpulse.db", "cannot make folder"),
    ],
)
def test_connect_explains_a_bad_database_in_one_line_without_the_password(
    tmp_path: Path, bad_url: str, reason: str
) -> None:
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(DatabaseError) as caught:
        connect(bad_url.format(tmp=tmp_path))
    message = str(caught.value)
    assert reason in message
    assert "\n" not in message
    assert "s3cret" not in message and "tiger" not in message


def test_connect_without_create_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(DatabaseError, match="no database file"):
        connect(f"sqlite:///{missing}", create=False)
    assert not missing.exists()
