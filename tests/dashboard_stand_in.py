"""`python -m tests.dashboard_stand_in DB_URL SESSION TEACHER`: stands for a dashboard whose capture is running, to
be killed: a CaptureControl in a process of its own starts a capture of screen 1, prints the capture child's pid
and its configuration file, then "recording" once the child has written a frame (or the run's outcome if it ended
first), then waits. Used by tests.test_capture_control and bench.classroom."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from config.schema import ClassroomConfig
from dashboard.capture_control import CaptureControl, CaptureRequest
from db.migrate import upgrade


def main(url: str, session: str, teacher: str) -> None:
    control = CaptureControl(upgrade(url), ClassroomConfig())
    run = control.start(CaptureRequest("screen:1", session, teacher))
    print(run.process.pid, run.config_file, flush=True)
    while run.frames < 1 and run.running:
        time.sleep(0.1)
        control.current()
    print("recording" if run.running else run.outcome(), flush=True)
    time.sleep(3600)


def has_ended(pid: int) -> bool:
    """Whether process `pid` has ended: gone, or a zombie whose exit status nobody has collected yet (an orphan's
    is collected by whichever process adopted it, on its own time)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


if __name__ == "__main__":
    main(*sys.argv[1:4])
