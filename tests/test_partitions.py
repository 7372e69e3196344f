"""Time partitions (db.partitions, migration 0014) on a real PostgreSQL, and retention (`python -m db retention`)
on it and on a real SQLite file: days are created ahead, a row of any time is kept, retention drops whole old days
and keeps newer ones and sessions being captured, and the migration keeps every row and the 64-bit ids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select, text, update

import config
from db import __main__ as db_cli
from db.engine import connect
from db.migrate import ALEMBIC_INI, upgrade
from db.partitions import SCHEMA, create_day, partitions
from db.queries import find_session
from db.recorder import SessionRecorder
from db.schema import frames, observations, session_rollups, sessions
from tests.test_rollups import assert_rollups_agree, varied_frame
from vocabulary.records import FrameResult

FRAMES = 12


def record(engine: Engine, name: str, start: datetime, step: timedelta = timedelta(seconds=1)) -> int:
    """A session of FRAMES varied frames (tests.test_rollups) from `start`, `step` apart; returns its id."""
    rng = np.random.default_rng(3)
    with SessionRecorder.open(engine, name, "screen:1") as recorder:
        for index in range(FRAMES):
            frame = varied_frame(index, rng)
            recorder.record(FrameResult(index, start + step * index, frame.observations, frame.processing_ms))
    return find_session(engine, name).id


def where_rows_are(engine: Engine, table: str, session_id: int) -> dict[str, int]:
    """The partitions holding the session's rows of `table`, with their counts."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT tableoid::regclass::text AS part, count(*) FROM {table} WHERE session_id = :s GROUP BY 1"),
            {"s": session_id},
        ).all()
    return {row.part: row.count for row in rows}


def rows_of(engine: Engine, table: str, session_id: int) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text(f"SELECT count(*) FROM {table} WHERE session_id = :s"), {"s": session_id}))


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    migrated = upgrade(postgres_url)
    yield migrated
    migrated.dispose()


def test_upgrade_partitions_observations_and_rollups_by_day_ahead_of_today_with_a_default(engine: Engine) -> None:
    ahead = config.chosen().database.partition_days_ahead
    today = datetime.now(UTC).date()
    with engine.connect() as connection:
        kinds = dict(
            connection.execute(
                text(
                    "SELECT relname, relkind FROM pg_class WHERE relname IN "
                    "('observations', 'session_rollups', 'frames') AND relnamespace = 'public'::regnamespace"
                )
            ).all()
        )
        assert kinds == {"observations": "p", "session_rollups": "p", "frames": "r"}
        for table in ("observations", "session_rollups"):
            found = partitions(connection, table)
            days = [p.start.date() for p in found if p.start is not None]
            assert days == [today + timedelta(days=n) for n in range(ahead + 1)]
            assert found[-1].name == f"{SCHEMA}.{table}_default"
            assert all(p.name.startswith(f"{SCHEMA}.") for p in found)


def test_a_row_far_in_the_past_or_future_is_kept_in_the_default_and_moves_to_its_day_when_created(
    engine: Engine,
) -> None:
    past = record(engine, "from-1999", datetime(1999, 3, 1, 9, tzinfo=UTC))
    future = record(engine, "from-2090", datetime(2090, 7, 1, 23, 59, 55, tzinfo=UTC))
    for session in (past, future):
        assert where_rows_are(engine, "observations", session) == {
            f"{SCHEMA}.observations_default": rows_of(engine, "observations", session)
        }
        assert list(where_rows_are(engine, "session_rollups", session)) == [f"{SCHEMA}.session_rollups_default"]
        assert_rollups_agree(engine, session)
    before = {session: rows_of(engine, "observations", session) for session in (past, future)}
    with engine.begin() as connection:
        for table in ("observations", "session_rollups"):
            create_day(connection, table, date(2090, 7, 2))
    # The future session's frames cross midnight: those after it moved to the new day, the others wait.
    moved = where_rows_are(engine, "observations", future)
    assert set(moved) == {f"{SCHEMA}.observations_default", f"{SCHEMA}.observations_20900702"}
    assert sum(moved.values()) == before[future]
    assert rows_of(engine, "observations", past) == before[past]
    assert f"{SCHEMA}.session_rollups_20900702" in where_rows_are(engine, "session_rollups", future)
    assert_rollups_agree(engine, future)


def old_day_partitions(engine: Engine, *days: date) -> None:
    with engine.begin() as connection:
        for day in days:
            for table in ("observations", "session_rollups"):
                create_day(connection, table, day)


def test_retention_drops_whole_old_days_purges_their_sessions_and_keeps_newer_ones(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    old_day, kept_day = (now - timedelta(days=10)).date(), (now - timedelta(days=2)).date()
    old_day_partitions(engine, old_day, kept_day)
    old = record(engine, "old", datetime.combine(old_day, datetime.min.time(), UTC) + timedelta(hours=9))
    kept = record(engine, "kept", datetime.combine(kept_day, datetime.min.time(), UTC) + timedelta(hours=9))
    stray = record(engine, "stray", datetime(2001, 1, 1, tzinfo=UTC))  # in the default partition
    with engine.begin() as connection:
        for session, day in ((old, old_day), (kept, kept_day), (stray, date(2001, 1, 1))):
            ended = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
            connection.execute(update(sessions).where(sessions.c.id == session).values(ended_at=ended))
    kept_rows = rows_of(engine, "observations", kept)

    assert db_cli.main(["retention", "--days", "5", "--db", engine.url.render_as_string(hide_password=False)]) == 0

    out = capsys.readouterr().out.splitlines()
    assert f"dropped partition {SCHEMA}.observations_{old_day:%Y%m%d} (the rows of {old_day:%Y-%m-%d})" in out
    assert f"dropped partition {SCHEMA}.session_rollups_{old_day:%Y%m%d} (the rows of {old_day:%Y-%m-%d})" in out
    assert "purged session 'old'" in out and "purged session 'stray'" in out
    assert out[-1].startswith("kept 5 day(s):")
    with engine.connect() as connection:
        days = {p.start.date() for p in partitions(connection, "observations") if p.start is not None}
        names = set(connection.scalars(select(sessions.c.name)))
        left = {
            table.name: connection.scalar(select(func.count()).select_from(table)) for table in (observations, frames)
        }
    assert old_day not in days and kept_day in days
    assert names == {"kept"}
    assert rows_of(engine, "observations", kept) == kept_rows == left["observations"]
    assert left["frames"] == FRAMES
    assert_rollups_agree(engine, kept)


def test_retention_keeps_the_days_of_a_session_still_being_captured(engine: Engine) -> None:
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=10)).date()
    old_day_partitions(engine, old_day)
    start = datetime.combine(old_day, datetime.min.time(), UTC) + timedelta(hours=23)
    rng = np.random.default_rng(5)
    with SessionRecorder.open(engine, "long-running", "screen:1") as recorder:
        with engine.begin() as connection:
            connection.execute(update(sessions).where(sessions.c.id == recorder.session_id).values(started_at=start))
        for index in range(3):
            frame = varied_frame(index, rng)
            recorder.record(FrameResult(index, start + timedelta(seconds=index), frame.observations, 5.0))
        assert db_cli.main(["retention", "--days", "5", "--db", engine.url.render_as_string(hide_password=False)]) == 0
        assert rows_of(engine, "observations", recorder.session_id) > 0
        with engine.connect() as connection:
            assert old_day in {p.start.date() for p in partitions(connection, "observations") if p.start is not None}


def snapshot(engine: Engine, table: str) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3"), connection)


def test_migration_0014_keeps_every_row_the_64_bit_ids_and_their_sequence(postgres_url: str) -> None:
    alembic = Config(str(ALEMBIC_INI))
    engine = connect(postgres_url)
    with engine.begin() as connection:
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "0013")
        connection.execute(text("SELECT setval('observations_id_seq', 3000000000)"))
    # Across UTC midnight, so that the rows fill two days.
    session = record(engine, "before-0014", datetime(2026, 11, 30, 23, 59, 56, tzinfo=UTC))
    before = {table: snapshot(engine, table) for table in ("observations", "session_rollups")}
    assert before["observations"]["id"].min() > 2**31

    upgrade(engine)

    for table, rows in before.items():
        pd.testing.assert_frame_equal(snapshot(engine, table), rows)
    assert set(where_rows_are(engine, "observations", session)) == {
        f"{SCHEMA}.observations_20261130",
        f"{SCHEMA}.observations_20261201",
    }
    assert_rollups_agree(engine, session)
    with engine.connect() as connection:
        sequence = connection.scalar(text("SELECT pg_get_serial_sequence('observations', 'id')"))
        assert sequence == "public.observations_id_seq"
        assert (
            connection.scalar(
                text("SELECT data_type::text FROM pg_sequences WHERE sequencename = 'observations_id_seq'")
            )
            == "bigint"
        )
    later = record(engine, "after-0014", datetime.now(UTC))
    with engine.connect() as connection:
        new_ids = connection.scalars(select(observations.c.id).where(observations.c.session_id == later)).all()
    assert min(new_ids) > before["observations"]["id"].max()
    assert_rollups_agree(engine, later)
    with engine.begin() as connection:
        alembic.attributes["connection"] = connection
        command.downgrade(alembic, "0013")
    pd.testing.assert_frame_equal(
        snapshot(engine, "observations")[lambda t: t["session_id"] == session].reset_index(drop=True),
        before["observations"],
    )
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT relkind FROM pg_class WHERE oid = 'observations'::regclass")) == "r"
    engine.dispose()


def test_retention_on_sqlite_purges_the_sessions_that_ended_before_and_keeps_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = upgrade(url)
    now = datetime.now(UTC)
    old = record(engine, "old", now - timedelta(days=9))
    record(engine, "recent", now - timedelta(hours=1))
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.id == old).values(ended_at=now - timedelta(days=9)))

    assert db_cli.main(["retention", "--days", "5", "--db", url]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "purged session 'old'",
        "kept 5 day(s): 0 partition action(s), 1 session(s)",
    ]
    with engine.connect() as connection:
        assert set(connection.scalars(select(sessions.c.name))) == {"recent"}
        assert (
            connection.scalar(
                select(func.count()).select_from(session_rollups).where(session_rollups.c.session_id == old)
            )
            == 0
        )
    engine.dispose()
