"""A real capture process stopped by SIGINT, killed by SIGKILL, and writing while its PostgreSQL server is
stopped and started again, rows counted afterwards; the recorder's buffer against a locked SQLite file."""

from __future__ import annotations

import glob
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from capture.buffer import BufferedWriter
from db.migrate import upgrade
from db.recorder import SessionRecorder
from tests.cli import REPO
from tests.galleries import astronaut, write_frames
from tests.test_timeline import HAPPY, T0, face
from vocabulary.records import FrameResult

POSTGRES_SH = REPO / "scripts" / "postgres.sh"
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 one-face frames: long enough to interrupt, and one observation per frame to count. Only read, so
    written once for the module."""
    return write_frames(tmp_path_factory.mktemp("source") / "frames", astronaut(), 200)


def start_capture(folder: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "capture", "--source", str(folder), "--db", url, "--session", "s", *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def query(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    except Exception:  # noqa: BLE001 - the schema may not be there yet, or the server is down
        return []
    finally:
        engine.dispose()


def frame_count(url: str) -> int:
    rows = query(url, "SELECT count(*) FROM frames")
    return rows[0][0] if rows else 0


def wait_for_frames(process: subprocess.Popen[str], url: str, at_least: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while frame_count(url) < at_least:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "capture wrote no frames in time"
        time.sleep(0.1)


def assert_whole_frames(url: str) -> list[int]:
    """Every frame row has exactly its observations (none half-written); returns the frame indexes in order."""
    rows = query(
        url,
        "SELECT f.frame_index, f.faces, (SELECT count(*) FROM observations o "
        "WHERE o.session_id = f.session_id AND o.frame_index = f.frame_index) FROM frames f ORDER BY f.frame_index",
    )
    assert all(faces == observed for _, faces, observed in rows)
    return [index for index, _, _ in rows]


def test_sigint_commits_every_analysed_frame(folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    process = start_capture(folder, url)
    wait_for_frames(process, url, 3)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    indexes = assert_whole_frames(url)
    assert 3 <= len(indexes) < 200 and indexes == list(range(len(indexes)))
    assert f"frames={len(indexes)} faces={len(indexes)} " in stdout
    assert query(url, "SELECT ended_at IS NOT NULL FROM sessions") == [(1,)]


def test_sigkill_loses_at_most_the_frame_in_flight_and_the_session_continues(folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    process = start_capture(folder, url)
    wait_for_frames(process, url, 3)
    process.kill()
    process.wait(timeout=30)
    indexes = assert_whole_frames(url)
    killed_at = len(indexes)
    assert killed_at >= 3 and indexes == list(range(killed_at))
    # The next start with the same --session continues it: same session, frame indexes carry on.
    result = subprocess.run(
        [sys.executable, "-m", "capture", "--source", str(folder), "--db", url, "--session", "s", "--max-frames", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert assert_whole_frames(url) == list(range(killed_at + 3))
    assert query(url, "SELECT count(*) FROM sessions") == [(1,)]
    assert query(url, "SELECT count(*) FROM students") == [(1,)]  # the same face is the same student


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL server of this test's own (scripts/postgres.sh), so stopping it disturbs no other test."""
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        reason = "PostgreSQL is not installed (scripts/setup.sh test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must not skip this test")
        pytest.skip(reason)
    # Not under pytest's tmp_path: the server runs as the postgres user, who cannot enter root's 0700 folders.
    folder = Path(tempfile.mkdtemp(prefix="classpulse-outage-"))
    folder.chmod(0o755)
    try:
        url = postgres("start", folder)
        yield url, folder
    finally:
        postgres("stop", folder)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def postgres(action: str, folder: Path) -> str:
    result = subprocess.run([str(POSTGRES_SH), action, str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_capture_outlives_a_postgresql_restart_and_loses_no_frame(folder: Path, own_postgres: tuple[str, Path]) -> None:
    url, server = own_postgres
    process = start_capture(folder, url)
    wait_for_frames(process, url, 3)
    postgres("stop", server)
    # Capture goes on analysing while the server is down: started again once capture has said so.
    said = stderr_until(process, "keeping analysed frames in memory")
    assert process.poll() is None
    postgres("start", server)
    stdout, rest = process.communicate(timeout=180)
    stderr = said + rest
    assert process.returncode == 0, stderr
    assert "keeping analysed frames in memory" in stderr and "the database is back" in stderr
    assert assert_whole_frames(url) == list(range(200))
    assert "frames=200 faces=200 " in stdout


def stderr_until(process: subprocess.Popen[str], text: str) -> str:
    """What `process` wrote on stderr up to and including the first line holding `text`; the rest stays in the
    pipe for communicate(). Fails if the process ends, or START_TIMEOUT_S pass, without such a line."""
    lines: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if text in line:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    assert lines and text in lines[-1], "".join(lines)
    return "".join(lines)


def test_a_locked_sqlite_file_holds_frames_in_memory_and_pauses_when_the_buffer_is_full(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    engine = upgrade(f"sqlite:///{path}")
    # Give up on a lock after 0.1 s instead of the 10 s a capture waits, so the test is quick.
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA busy_timeout=100"))
    engine.dispose()
    warnings: list[str] = []
    stop = threading.Event()
    writer = BufferedWriter(
        SessionRecorder.open(engine, "s", "test"), stop, max_pending=3, retry_every_s=0.05, warn=warnings.append
    )
    writer.write(one_face_frame(0))
    # Released from a timer thread below; a stop after 30 s keeps a broken buffer from hanging the test.
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    guard = threading.Timer(30, stop.set)
    guard.start()
    locker.execute("BEGIN EXCLUSIVE")
    writer.write(one_face_frame(1))
    writer.write(one_face_frame(2))
    assert [r.frame_index for r in writer.pending] == [1, 2] and "database is locked" in warnings[0]
    # The third waiting frame fills the buffer: write() pauses until the lock goes, dropping nothing.
    threading.Timer(0.5, lambda: locker.execute("COMMIT")).start()
    started = time.monotonic()
    writer.write(one_face_frame(3))
    assert 0.4 <= time.monotonic() - started < 30
    assert not writer.pending and writer.written_frames == 4 and writer.written_faces == 4
    assert "the database is back" in warnings[-1]
    assert assert_whole_frames(f"sqlite:///{path}") == [0, 1, 2, 3]
    guard.cancel()
    locker.close()
    engine.dispose()


def one_face_frame(index: int) -> FrameResult:
    return FrameResult(index, T0 + timedelta(seconds=index), [face("tile-1", HAPPY)], 5.0)


def test_a_disk_that_stays_full_is_a_non_zero_exit_naming_the_frames_not_written(folder: Path, tmp_path: Path) -> None:
    """The capture may write files of at most 300 KB (RLIMIT_FSIZE, what a full disk does to a write): the
    database's log fills after some frames, and stays full to the end."""
    url = f"sqlite:///{tmp_path / 'class.db'}"
    upgrade(url).dispose()
    limit = 300_000
    # The end's wait for the disk to take the frames in memory is tried all the same, but for a second rather
    # than the default minute: a disk that stays full never takes them, and the minute was most of this test.
    school = tmp_path / "school.toml"
    school.write_text("[capture]\ndrain_seconds = 1.0\n")

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "capture", "--source", str(folder), "--db", url, "--session", "s", "--attention-only"]
        + ["--max-frames", "60", "--config", str(school)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=full_disk,
    )
    written = assert_whole_frames(url)
    assert 0 < len(written) < 60, result.stderr
    assert result.returncode != 0 and "Traceback" not in result.stderr
    summary = re.search(r"frames=(\d+) .* (\d+) NOT written", result.stdout)
    assert summary is not None, result.stdout
    assert (int(summary[1]), int(summary[2])) == (len(written), 60 - len(written))
    assert f"error: {60 - len(written)} analysed frame(s) were not written to the database" in result.stderr
