"""Keeps a capture going through a database outage: frames that cannot be written wait in memory (bounded)
and are written, in order, once the database answers again."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import InterfaceError, OperationalError

from config import CaptureConfig
from db.errors import DatabaseError
from vocabulary.records import FrameResult

# The configuration's capture.buffer_frames (config/classpulse.toml says why).
DEFAULT_MAX_PENDING = CaptureConfig().buffer_frames
RETRY_EVERY_S = 2.0


class Recorder(Protocol):
    """Where frames go: the database (db.recorder.SessionRecorder) or the school's server (capture.sender)."""

    next_frame_index: int

    def record(self, result: FrameResult) -> None: ...

    def reload(self) -> None: ...


def warn_on_stderr(message: str) -> None:
    print(f"capture: warning: {message}", file=sys.stderr, flush=True)


def is_outage(error: DatabaseError) -> bool:
    """A lost connection, a server that is down or restarting, a locked SQLite file: worth waiting for.
    Anything else (a constraint broken, a schema problem) is a bug, and is raised."""
    return isinstance(error.__cause__, OperationalError | InterfaceError)


@dataclass
class BufferedWriter:
    """Writes FrameResults through `recorder`; during an outage they queue, up to `max_pending` frames.

    When the queue is full, `write` waits for the database (or `stop`) instead of dropping frames.
    """

    recorder: Recorder
    stop: threading.Event
    max_pending: int = DEFAULT_MAX_PENDING
    retry_every_s: float = RETRY_EVERY_S
    warn: Callable[[str], None] = warn_on_stderr
    written_frames: int = 0
    written_faces: int = 0
    pending: deque[FrameResult] = field(default_factory=deque)
    _down_since: float | None = None
    _last_try: float = 0.0

    def write(self, result: FrameResult) -> None:
        self.pending.append(result)
        self._flush()
        if len(self.pending) >= self.max_pending:
            self.warn(f"{len(self.pending)} frames are waiting for the database; capture pauses until it is back")
            while len(self.pending) >= self.max_pending and not self.stop.is_set():
                self.stop.wait(self.retry_every_s)
                self._flush()

    def drain(self, timeout_s: float) -> int:
        """Keep trying for up to `timeout_s` to write what is waiting; returns the frames left unwritten."""
        deadline = time.monotonic() + timeout_s
        while not self._flush() and time.monotonic() < deadline:
            time.sleep(min(self.retry_every_s, max(deadline - time.monotonic(), 0)))
        if self.pending:
            self.warn(f"the database stayed unreachable: {len(self.pending)} analysed frame(s) were not written")
        return len(self.pending)

    def _flush(self) -> bool:
        """Write what is waiting, oldest first; False when the database is (still) unreachable."""
        now = time.monotonic()
        if self._down_since is not None and now - self._last_try < self.retry_every_s:
            return False
        self._last_try = now
        try:
            if self._down_since is not None:
                # A commit whose acknowledgement was lost did happen: read back what the database holds.
                self.recorder.reload()
                while self.pending and self.pending[0].frame_index < self.recorder.next_frame_index:
                    self._count(self.pending.popleft())
            while self.pending:
                self.recorder.record(self.pending[0])
                self._count(self.pending.popleft())
        except DatabaseError as error:
            if not is_outage(error):
                raise
            if self._down_since is None:
                self._down_since = now
                self.warn(f"{error}; keeping analysed frames in memory (at most {self.max_pending}) until it is back")
            return False
        if self._down_since is not None:
            self.warn(f"the database is back after {now - self._down_since:.0f} s; every waiting frame is written")
            self._down_since = None
        return True

    def _count(self, result: FrameResult) -> None:
        self.written_frames += 1
        self.written_faces += result.faces
