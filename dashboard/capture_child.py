"""`python -m dashboard.capture_child ARGS`: `python -m capture ARGS` as the dashboard's child, which ends as a
Ctrl-C would end it (every analysed frame written, the session closed) once the dashboard is gone, however the
dashboard ended: a clean exit, a crash, or SIGKILL, which runs no atexit and no signal handler of its own.

The dashboard holds the write end of the pipe that is this process's standard input and never writes to it.
The kernel closes a process's descriptors however it dies, so the dashboard's death is end-of-file here, at
once and certainly; this process then sends itself SIGTERM, which capture turns into a clean stop
(capture.runner.stop_on_signals). Chosen over the alternatives because:
- prctl(PR_SET_PDEATHSIG) fires when the *thread* that started the child ends, not the process, and the
  dashboard starts captures from its web server's worker threads; it also needs a preexec_fn, which may
  deadlock in a process with threads (the subprocess documentation's warning);
- watching the parent's pid needs a polling period and is fooled by pid reuse; a pipe has neither problem, and
  a parent that died before this process started watching is an end-of-file on the first read, not a race.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from capture.__main__ import main

# The option naming the configuration file the dashboard wrote for this child (dashboard.capture_control).
CONFIG_OPTION = "--config="


def watch_parent(argv: list[str]) -> threading.Thread:
    """A thread that stops this capture cleanly once standard input reaches its end (the dashboard is gone)."""

    def watch() -> None:
        while os.read(sys.stdin.fileno(), 4096):
            pass  # the dashboard writes nothing; a stray byte is no reason to stop
        # Nobody reads the output pipes any more: writing the summary line there would fail the clean stop.
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
            os.dup2(devnull.fileno(), sys.stderr.fileno())
        # The dashboard wrote it for this child and can no longer remove it; capture has read it at start.
        for argument in argv:
            if argument.startswith(CONFIG_OPTION):
                Path(argument.removeprefix(CONFIG_OPTION)).unlink(missing_ok=True)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="parent-watch", daemon=True)
    watcher.start()
    return watcher


if __name__ == "__main__":
    watch_parent(sys.argv[1:])
    sys.exit(main(sys.argv[1:]))
