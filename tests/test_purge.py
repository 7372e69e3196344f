"""`python -m db purge` and capture's --retain-days remove whole sessions, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from sqlalchemy import Engine, func, select, update

from db.migrate import upgrade
from db.recorder import SessionRecorder
from db.schema import (
    flag_silences,
    frames,
    observations,
    session_rollups,
    sessions,
    student_merge_rows,
    student_merges,
    students,
)
from db.students import merge_students
from db.users import Role, add_user
from tests.cli import assert_one_clear_line, run_module
from tests.dashboard_users import PASSWORD
from tests.galleries import astronaut
from tests.test_bad_input import assert_argument_refused
from tests.test_timeline import HAPPY, PERIOD_1, T0, face, record
from vocabulary.records import FrameResult

SESSION_TABLES = (observations, frames, students)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'classpulse.db'}"


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    """'ancient-history' ended 40 days ago, 'last-week' 7 days ago, 'today' is still running."""
    migrated = upgrade(url)
    now = datetime.now(UTC)
    for name, ended in (("ancient-history", now - timedelta(days=40)), ("last-week", now - timedelta(days=7))):
        record(migrated, name, PERIOD_1)
        with migrated.begin() as connection:
            connection.execute(update(sessions).where(sessions.c.name == name).values(started_at=ended, ended_at=ended))
    record(migrated, "today", PERIOD_1)
    with migrated.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == "today").values(ended_at=None))
    yield migrated
    migrated.dispose()


def rows_per_session(engine: Engine) -> dict[str, int]:
    """Every row of every session-owned table, counted per session name (rows of no session under None)."""
    with engine.connect() as connection:
        names = dict(connection.execute(select(sessions.c.id, sessions.c.name)).all())
        counts: dict[str | None, int] = dict.fromkeys(names.values(), 0)
        for table in SESSION_TABLES:
            statement = select(table.c.session_id, func.count()).group_by(table.c.session_id)
            for session_id, count in connection.execute(statement):
                key = names.get(session_id)
                counts[key] = counts.get(key, 0) + count
    return counts


def test_purge_older_than_removes_every_row_of_old_sessions_only(url: str, engine: Engine) -> None:
    before = rows_per_session(engine)
    assert set(before) == {"ancient-history", "last-week", "today"} and min(before.values()) > 0
    result = run_module("db", "purge", "--db", url, "--older-than-days", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["purged 1 session(s)", "  ancient-history"]
    assert rows_per_session(engine) == {"last-week": before["last-week"], "today": before["today"]}


def test_purge_of_a_named_session_leaves_no_row_behind(url: str, engine: Engine) -> None:
    for name in ("today", "last-week", "ancient-history"):
        assert run_module("db", "purge", "--db", url, "--session", name).returncode == 0
    assert rows_per_session(engine) == {}
    with engine.connect() as connection:
        for table in (*SESSION_TABLES, sessions):
            assert connection.scalar(select(func.count()).select_from(table)) == 0, table.name


def test_purge_removes_the_sessions_rollups_merges_and_silences_and_no_other_sessions(url: str, engine: Engine) -> None:
    merge_students(engine, "last-week", "tile-0", "tile-1")
    with engine.begin() as connection:
        for name in ("last-week", "today"):
            session_id = connection.scalar(select(sessions.c.id).where(sessions.c.name == name))
            connection.execute(
                flag_silences.insert().values(
                    session_id=session_id, created_by="alice", created_at=datetime.now(UTC), until=None
                )
            )

    def counts() -> dict[str, int]:
        with engine.connect() as connection:
            tables = (session_rollups, student_merges, student_merge_rows, flag_silences)
            return {table.name: connection.scalar(select(func.count()).select_from(table)) for table in tables}

    before = counts()
    assert before["student_merge_rows"] > 0 and before["student_merges"] == 1 and before["flag_silences"] == 2
    with engine.connect() as connection:
        today = connection.scalar(
            select(func.count())
            .select_from(session_rollups.join(sessions, sessions.c.id == session_rollups.c.session_id))
            .where(sessions.c.name == "today")
        )
    assert 0 < today < before["session_rollups"]
    assert run_module("db", "purge", "--db", url, "--session", "last-week").returncode == 0
    assert run_module("db", "purge", "--db", url, "--session", "ancient-history").returncode == 0
    assert counts() == {"session_rollups": today, "student_merges": 0, "student_merge_rows": 0, "flag_silences": 1}


def test_purge_of_an_unknown_session_is_one_clear_line(url: str, engine: Engine) -> None:
    assert_one_clear_line(run_module("db", "purge", "--db", url, "--session", "nope"), "nope")
    assert len(rows_per_session(engine)) == 3


def test_a_purged_sqlite_session_leaves_no_bytes_in_the_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'classpulse.db'}"
    engine = upgrade(url)
    record(engine, "secret-class-name", PERIOD_1)
    record(engine, "kept", PERIOD_1)
    assert run_module("db", "purge", "--db", url, "--session", "secret-class-name").returncode == 0
    engine.dispose()
    files = [path for path in tmp_path.iterdir() if path.name.startswith("classpulse.db")]
    assert all(b"secret-class-name" not in path.read_bytes() for path in files)
    assert any(b"kept" in path.read_bytes() for path in files)


def test_capture_with_retain_days_purges_old_sessions_first(url: str, engine: Engine, tmp_path: Path) -> None:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut())
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    result = run_module(
        "capture", "--source", str(image), "--db", url, "--session", "now", "--retain-days", "5", "--teacher", "alice"
    )
    assert result.returncode == 0, result.stderr
    assert "purged 2 session(s) older than 5 day(s)" in result.stderr
    assert set(rows_per_session(engine)) == {"today", "now"}
    with engine.connect() as connection:
        assert connection.scalar(select(sessions.c.teacher).where(sessions.c.name == "now")) == "alice"


def test_a_session_being_captured_is_never_purged_however_old_it_looks(url: str, engine: Engine) -> None:
    # The maths-7b: recorded ten days ago, then continued; a purge runs while it is being captured.
    record(engine, "maths-7b", PERIOD_1)
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    with engine.begin() as connection:
        statement = update(sessions).where(sessions.c.name == "maths-7b")
        connection.execute(statement.values(started_at=ten_days_ago, ended_at=ten_days_ago))
    with SessionRecorder.open(engine, "maths-7b", "screen:1") as recorder:  # continued: no end time now
        purged = run_module("db", "purge", "--db", url, "--older-than-days", "3")
        assert purged.returncode == 0 and "purged 2 session(s)" in purged.stdout, purged.stderr
        assert_one_clear_line(run_module("db", "purge", "--db", url, "--session", "maths-7b"), "being captured")
        frames_before = rows_per_session(engine)["maths-7b"]
        recorder.record(FrameResult(len(PERIOD_1), T0 + timedelta(seconds=30), [face("tile-0", HAPPY)], 5.0))
    assert set(rows_per_session(engine)) == {"today", "maths-7b"}
    assert rows_per_session(engine)["maths-7b"] == frames_before + 2  # the new frame and its observation
    # Ended now, it is purged by name, and ten days from now by age.
    assert run_module("db", "purge", "--db", url, "--session", "maths-7b").returncode == 0


@pytest.mark.parametrize("days", ["nan", "inf", "-inf", "1e300", "-1", "36501", "ten"])
def test_a_number_of_days_that_is_no_number_of_days_is_one_clear_line(url: str, engine: Engine, days: str) -> None:
    before = rows_per_session(engine)
    assert_argument_refused(run_module("db", "purge", "--db", url, "--older-than-days", days), "--older-than-days")
    capture = run_module("capture", "--source", "nowhere.png", "--db", url, "--retain-days", days)
    assert_argument_refused(capture, "--retain-days")
    assert rows_per_session(engine) == before


def test_capture_refuses_a_teacher_who_is_not_a_user_and_records_nothing(url: str, engine: Engine, tmp_path: Path):
    # The typo: ms.garica for ms.garcia would file the class where the real teacher never sees it.
    add_user(engine, "ms.garcia", Role.TEACHER, PASSWORD)
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut())
    result = run_module("capture", "--source", str(image), "--db", url, "--session", "typo", "--teacher", "ms.garica")
    assert_one_clear_line(result, "'ms.garica' is not a dashboard user")
    assert "typo" not in rows_per_session(engine)
