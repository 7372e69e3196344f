"""The dashboard's one capture: `python -m capture` of this computer's screen as a child process, started and
stopped from the "Start class" page (dashboard.pages.classroom), and watched through the rows it writes.

The child writes into the dashboard's own database with the dashboard's configuration in force, so what the
page's status counts is what the live page and the report will read. It is stopped as a terminal's Ctrl-C
would stop it: SIGTERM, which capture turns into "finish the frame in hand, write every analysed frame, close
the session" (capture.runner.stop_on_signals); only one that is still running `stop_seconds` later is killed.
A dashboard that ends stops its capture the same way (atexit), and one that dies (a crash, SIGKILL: no atexit
runs) closes the pipe the child watches, which stops it the same way too (dashboard.capture_child says why a
pipe): no capture outlives the page that started it.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine
from sqlalchemy.engine import URL

import config
from capture.errors import CaptureError
from capture.sources import open_source
from config.schema import ClassroomConfig
from db.errors import DatabaseError
from db.queries import UnknownSessionError, find_session, frame_rows

REPO = Path(__file__).resolve().parents[1]
# LiteRT's own start-up notice on stderr: not a problem the teacher needs to read.
NOISE_PREFIXES = ("INFO:",)


class CaptureStartError(Exception):
    """The capture cannot start: its source cannot be opened, or the process not launched. One line."""


class CaptureBusyError(CaptureStartError):
    """A capture is already running from this dashboard (one at a time)."""


@dataclass(frozen=True)
class CaptureRequest:
    """What to capture and where it goes: a capture.sources spec, the session's name, its owner and the class
    it belongs to (capture's --class; None: none)."""

    source: str
    session: str
    teacher: str
    class_name: str | None = None


@dataclass
class CaptureRun:
    """One capture child and what is known of it: its process, its output's last lines and its frames so far."""

    request: CaptureRequest
    process: subprocess.Popen[str]
    started_at: datetime
    config_file: Path
    errors: deque[str]
    summary: str = ""  # capture's one summary line on stdout, once it has ended cleanly
    frames: int = 0  # recorded by this run (a continued session's older frames are not counted)
    faces: int = 0  # summed over those frames
    last_faces: int | None = None
    last_frame_at: datetime | None = None
    stop_requested: bool = False
    exit_code: int | None = None
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.exit_code is None

    def outcome(self) -> str:
        """How the run ended, in one sentence; "" while it runs."""
        if self.exit_code is None:
            return ""
        if self.exit_code == 0:
            return f"Stopped. {self.frames} frame(s) recorded."
        if self.stop_requested and self.exit_code == -signal.SIGTERM:
            return "Stopped before the first frame was recorded."
        if self.exit_code == -signal.SIGKILL and self.stop_requested:
            return f"Killed: it did not end within the stop time. {self.frames} frame(s) were recorded."
        return f"Capture failed (exit {self.exit_code}): {self.errors[-1] if self.errors else 'it said nothing'}"


class CaptureControl:
    """Starts, stops and watches at most one capture child for one dashboard process. Thread-safe: the page's
    callbacks run on the web server's threads."""

    def __init__(self, engine: Engine, settings: ClassroomConfig) -> None:
        self._engine = engine
        self._settings = settings
        self._lock = threading.Lock()
        self._run: CaptureRun | None = None
        atexit.register(self.shutdown)

    def start(self, request: CaptureRequest) -> CaptureRun:
        """Launch `python -m capture` for `request`. CaptureBusyError while another run of this dashboard is
        alive; CaptureStartError when its source cannot be opened (said at once, not after the models load)."""
        with self._lock:
            if self._run is not None and self._poll(self._run):
                # Names no session: whoever asks may not be the teacher whose class it is.
                raise CaptureBusyError("a class is already being captured on this computer: one capture at a time")
            try:
                with open_source(request.source):
                    pass
            except CaptureError as error:
                raise CaptureStartError(str(error)) from None
            # The configuration in force (the dashboard's --config and options) goes to the child as a file,
            # so capture tunes its stages exactly as this dashboard was told to.
            with tempfile.NamedTemporaryFile("w", prefix="classpulse-", suffix=".toml", delete=False) as written:
                written.write(config.to_toml(config.chosen(), "the dashboard that started this capture"))
            # Each value joined to its option: a name that starts with "-" is then a value, not an option.
            command = [
                sys.executable,
                "-m",
                "dashboard.capture_child",
                f"--source={request.source}",
                f"--session={request.session}",
                f"--teacher={request.teacher}",
                # Without its password: a command line is readable by every local user (ps), a process's
                # environment only by its owner, and libpq takes the password from PGPASSWORD.
                f"--db={self._engine.url.set(password=None).render_as_string(hide_password=False)}",
                f"--config={written.name}",
                *([f"--class={request.class_name}"] if request.class_name is not None else []),
            ]
            try:
                process = subprocess.Popen(
                    command,
                    cwd=REPO,
                    # Never written: its end is how the child learns that this dashboard is gone.
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    env=_child_environment(self._engine.url),
                )
            except OSError as error:
                Path(written.name).unlink(missing_ok=True)
                raise CaptureStartError(f"cannot start the capture: {error.strerror or error}") from error
            run = CaptureRun(
                request,
                process,
                datetime.now(UTC),
                Path(written.name),
                deque(maxlen=self._settings.error_lines),
            )
            assert process.stdout is not None and process.stderr is not None  # both are pipes, as asked above
            run.readers = [
                _read_lines(process.stdout, lambda line: setattr(run, "summary", line)),
                _read_lines(process.stderr, lambda line: _keep_error(run.errors, line)),
            ]
            self._run = run
            return run

    def stop(self) -> CaptureRun | None:
        """Ask the running capture to finish (SIGTERM); killed if it is still running `stop_seconds` later.
        Returns the run (None when there is none); it ends on its own time, which `current` reports."""
        with self._lock:
            run = self._run
            if run is None or not self._poll(run) or run.stop_requested:
                return run
            run.stop_requested = True
            run.process.terminate()
            threading.Thread(target=self._kill_if_still_running, args=(run,), daemon=True).start()
            return run

    def current(self) -> CaptureRun | None:
        """The running capture, or the last one with its outcome, with the frames it has recorded so far."""
        with self._lock:
            run = self._run
            if run is None:
                return None
            running = self._poll(run)
            self._count_frames(run)
            if not running:
                for reader in run.readers:
                    # Its output is all there once the process has ended; the reader only has to take it.
                    reader.join(timeout=5)
            return run

    def shutdown(self) -> None:
        """Stop the capture and wait for it to end (the dashboard is ending): no capture outlives it."""
        run = self.stop()
        if run is None:
            return
        try:
            run.process.wait(timeout=self._settings.stop_seconds)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()
        self.current()

    def _kill_if_still_running(self, run: CaptureRun) -> None:
        try:
            run.process.wait(timeout=self._settings.stop_seconds)
        except subprocess.TimeoutExpired:
            run.process.kill()

    def _poll(self, run: CaptureRun) -> bool:
        """Whether `run` is still running; notes its exit code and removes its configuration file once ended."""
        if run.exit_code is None:
            code = run.process.poll()
            if code is not None:
                run.exit_code = code
                run.config_file.unlink(missing_ok=True)
                if run.process.stdin is not None:
                    run.process.stdin.close()
        return run.exit_code is None

    def _count_frames(self, run: CaptureRun) -> None:
        """Add the frames `run` recorded since the last look (an index lookup and the new rows only)."""
        try:
            session = find_session(self._engine, run.request.session)
            new = frame_rows(self._engine, session.id, since=run.last_frame_at or run.started_at)
        except UnknownSessionError:
            return  # not created yet: the child is still loading its models
        except DatabaseError as error:
            _keep_error(run.errors, f"dashboard: cannot read the capture's frames: {error}")
            return
        if new.empty:
            return
        run.frames += len(new)
        run.faces += int(new["faces"].sum())
        run.last_faces = int(new["faces"].iloc[-1])
        run.last_frame_at = new["ts"].iloc[-1].to_pydatetime()


def _read_lines(stream: IO[str], keep: Callable[[str], None]) -> threading.Thread:
    """A thread that hands every non-empty line of `stream` to `keep` until the child closes it."""

    def read() -> None:
        with stream:
            for line in _lines(stream):
                keep(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def _lines(stream: Iterable[str]) -> Iterable[str]:
    return (line.rstrip() for line in stream if line.strip())


def _keep_error(errors: deque[str], line: str) -> None:
    if not line.startswith(NOISE_PREFIXES):
        errors.append(line)


def _child_environment(url: URL) -> dict[str, str]:
    """This process's environment, with the database's password for libpq when the URL has one."""
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    return environment
