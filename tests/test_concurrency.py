"""Many classrooms at once: two real capture processes writing to one SQLite file and to one PostgreSQL
database at the same time, and the dashboard answering while a capture writes; one live writer per session
(a second capture, a merge, a killed writer, a writer that lost its lease)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from sqlalchemy import Engine, delete, insert, update

from dashboard.app import create_app
from db.lease import Lease, LeaseLostError, leases
from db.migrate import upgrade
from db.queries import find_session
from db.recorder import SessionRecorder
from db.schema import session_writers
from tests.cli import REPO, assert_one_clear_line, run_module
from tests.dashboard_users import signed_in_client
from tests.galleries import astronaut, write_frames
from tests.test_crash_safety import START_TIMEOUT_S, one_face_frame, query
from tests.test_dashboard import page, text
from tests.test_timeline import HAPPY, T0, face
from vocabulary.records import FrameResult

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


# One live writer per session (issue 12, item 2).


def two_face_frame(index: int) -> FrameResult:
    return FrameResult(index, T0 + timedelta(seconds=index), [face("tile-1", HAPPY), face("tile-2", HAPPY)], 5.0)


def one_image(tmp_path: Path) -> str:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut())
    return str(image)


def test_a_second_capture_of_a_session_being_captured_is_refused_and_changes_nothing(url: str, tmp_path: Path) -> None:
    engine = upgrade(url)
    image = one_image(tmp_path)
    writer = SessionRecorder.open(engine, "twin", "screen:1")  # the first capture, still running
    writer.record(two_face_frame(0))
    second = run_module("capture", "--source", image, "--db", url, "--session", "twin", "--attention-only")
    assert_one_clear_line(second, "'twin' is still being captured", f"by process {os.getpid()} on")
    assert find_session(engine, "twin").ended_at is None  # the second capture did not mark it ended
    merge = run_module("db", "students", "merge", "--db", url, "--session", "twin", "tile-1", "tile-2")
    assert_one_clear_line(merge, "'twin' is still being captured")
    writer.record(two_face_frame(1))  # the first capture goes on as if nothing happened
    writer.close()
    assert rows_per_session(url, "frames") == {"twin": 2} and find_session(engine, "twin").ended_at is not None
    # Once it has stopped, the session is continued as before.
    third = run_module("capture", "--source", image, "--db", url, "--session", "twin", "--attention-only")
    assert third.returncode == 0, third.stderr
    assert rows_per_session(url, "frames") == {"twin": 3}
    engine.dispose()


def test_a_killed_writers_lease_ends_at_once_on_this_machine_and_after_its_time_from_another(
    folder: Path, url: str, tmp_path: Path
) -> None:
    upgrade(url).dispose()
    first = start_capture(folder, url, "twin")
    deadline = time.monotonic() + START_TIMEOUT_S
    while rows_per_session(url, "frames").get("twin", 0) < 3:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert [row[0].split(":")[1] for row in query(url, "SELECT writer FROM session_writers")] == [str(first.pid)]
    image = one_image(tmp_path)
    resumed = run_module("capture", "--source", image, "--db", url, "--session", "twin", "--attention-only")
    assert resumed.returncode == 0, resumed.stderr  # its process is gone: no need to wait for the lease to end
    # A writer on another machine cannot be looked for: its lease holds until its time is up.
    engine = upgrade(url)
    twin = find_session(engine, "twin").id
    for until, refused in ((datetime.now(UTC) + timedelta(seconds=30), True), (datetime.now(UTC), False)):
        with engine.begin() as connection:
            connection.execute(delete(session_writers))
            connection.execute(insert(session_writers).values(session_id=twin, writer="elsewhere:1:x", until=until))
        result = run_module("capture", "--source", image, "--db", url, "--session", "twin", "--attention-only")
        if refused:
            assert_one_clear_line(result, "still being captured, by process 1 on elsewhere")
        else:
            assert result.returncode == 0, result.stderr
    engine.dispose()


def test_a_writer_that_lost_its_lease_stops_with_one_line_and_writes_nothing_more(url: str) -> None:
    engine = upgrade(url)
    writer = SessionRecorder.open(engine, "twin", "screen:1")
    writer.record(one_face_frame(0))
    # Its lease ran out while it was stalled, and another capture took the session over.
    with engine.begin() as connection:
        connection.execute(update(session_writers).values(writer="elsewhere:1:x"))
    with pytest.raises(LeaseLostError, match="lost its session"):
        writer.record(one_face_frame(1))
    writer.close()
    assert rows_per_session(url, "frames") == {"twin": 1}
    assert find_session(engine, "twin").ended_at is None  # the session is the other capture's to close
    engine.dispose()


def test_an_idle_writer_keeps_its_lease_by_the_heartbeat_alone(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A capture at a low --fps (or stuck in a long analysis) writes no frame for a while: its lease must not end.
    monkeypatch.setattr("db.lease.RENEW_EVERY_S", 0.2)
    engine = upgrade(url)
    writer = SessionRecorder.open(engine, "slow", "screen:1")
    writer.record(one_face_frame(0))
    session_id = find_session(engine, "slow").id
    near_end = datetime.now(UTC) + timedelta(seconds=1)
    with engine.begin() as connection:
        connection.execute(update(session_writers).values(until=near_end))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and lease_of(engine, session_id).until <= near_end:
        time.sleep(0.1)
    time.sleep(1.5)  # past the end the lease had before: renewed, not merely unexpired
    assert lease_of(engine, session_id).holds(datetime.now(UTC))
    writer.record(one_face_frame(1))  # still its writer: the frame is written
    writer.close()
    assert rows_per_session(url, "frames") == {"slow": 2}
    engine.dispose()


def lease_of(engine: Engine, session_id: int) -> Lease:
    with engine.connect() as connection:
        return leases(connection, [session_id])[session_id]
