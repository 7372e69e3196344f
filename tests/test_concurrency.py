"""Many classrooms at once: two real capture processes writing to one SQLite file and to one PostgreSQL
database at the same time, and the dashboard answering while a capture writes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dashboard.app import create_app
from db.migrate import upgrade
from tests.cli import REPO
from tests.dashboard_users import signed_in_client
from tests.galleries import astronaut, write_frames
from tests.test_crash_safety import START_TIMEOUT_S, query
from tests.test_dashboard import page, text

FRAMES = 40
# A page that takes longer than this while capture writes is a dashboard blocked by the writer.
PAGE_SECONDS = 10


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """FRAMES one-face frames: one observation per frame to count."""
    return write_frames(tmp_path / "frames", astronaut(), FRAMES)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'school.db'}"
    return request.getfixturevalue("postgres_url")


def start_capture(folder: Path, url: str, session: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "capture", "--source", str(folder), "--db", url, "--session", session],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows_per_session(url: str, table: str) -> dict[str, int]:
    counts = query(
        url, f"SELECT s.name, count(*) FROM {table} t JOIN sessions s ON s.id = t.session_id GROUP BY s.name"
    )
    return dict(counts)


def test_two_classrooms_capture_into_one_database_at_once(folder: Path, url: str) -> None:
    # The schema is made first, as `make run` does; the race to create it is test_db's subject.
    upgrade(url).dispose()
    processes = {name: start_capture(folder, url, name) for name in ("room-a", "room-b")}
    # Both must be writing at the same moment, or this tests nothing.
    deadline = time.monotonic() + START_TIMEOUT_S
    while (
        not (counts := rows_per_session(url, "frames")).keys() >= {"room-a", "room-b"} or max(counts.values()) >= FRAMES
    ):
        assert time.monotonic() < deadline, "the captures never wrote at the same time"
        assert all(process.poll() is None for process in processes.values()), counts
        time.sleep(0.05)
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=START_TIMEOUT_S)
        assert process.returncode == 0, stderr
        assert f"session={name} frames={FRAMES} faces={FRAMES} " in stdout
        assert "NOT written" not in stdout and "skipped" not in stdout
    assert rows_per_session(url, "frames") == {"room-a": FRAMES, "room-b": FRAMES}
    assert rows_per_session(url, "observations") == {"room-a": FRAMES, "room-b": FRAMES}


def test_dashboard_keeps_answering_while_capture_writes(folder: Path, url: str) -> None:
    engine: Engine = upgrade(url)
    client = signed_in_client(create_app(engine), engine)
    process = start_capture(folder, url, "room-a")
    seen: list[int] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None:
            assert time.monotonic() < deadline, "capture did not finish"
            written = rows_per_session(url, "frames").get("room-a", 0)
            if not written:
                time.sleep(0.05)
                continue
            started = time.monotonic()
            sessions = text(page(client, "/sessions"))
            report = text(page(client, "/report/room-a"))
            assert time.monotonic() - started < PAGE_SECONDS
            assert "room-a" in sessions and "Cannot read the database" not in sessions + report
            if process.poll() is None:  # answered while the capture was still writing
                seen.append(written)
        stdout, stderr = process.communicate(timeout=START_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
        engine.dispose()
    assert process.returncode == 0, stderr
    assert f"frames={FRAMES} " in stdout
    # Several answers while the rows grew: the dashboard read between the writer's commits, not after them.
    assert len(seen) >= 3 and seen[-1] > seen[0], seen
