"""What the "Start class" page costs and how long its capture takes to start and stop, on a virtual screen
(Xvfb) showing a 7×7 1080p gallery of LFW faces (feh).

`python -m bench.classroom [--looks N]`:
- preview: ms per look (one screen grab, the pipeline's tiles and faces, the outlines drawn and encoded as the
  page's JPEG data URI), median and p95 over N looks after one untimed look that loads the models; the
  data URI's size in KB, which the browser receives every [dashboard.classroom] preview_seconds;
- capture: seconds from Start to the first frame in the database (the child loads its models first) and from
  Stop (SIGTERM) to the child's clean exit, through the real CaptureControl and `python -m capture`;
- killed: seconds from SIGKILL of a dashboard (tests.dashboard_stand_in) whose capture is recording to that
  capture child's end (it sees the pipe from its dead parent close, writes its frames and closes the session);
- windows: ms to list the windows with their titles (the page's list, every preview_seconds) and ms for one look
  at where a captured window is now (every [capture] window_follow_seconds), medians over N, beside the gallery.
The machine's load average is printed beside them: on a shared machine the numbers move with it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from capture.windows import shown_windows, window_at, x_display
from config import CaptureConfig
from config.schema import ClassroomConfig
from dashboard.capture_control import CaptureControl, CaptureRequest, CaptureRun
from dashboard.preview import Preview
from db.migrate import upgrade
from db.users import Role, add_user
from tests.cli import REPO
from tests.dashboard_stand_in import has_ended
from tests.galleries import compose_gallery, lfw_faces
from tests.screen import showing_fullscreen, virtual_screen, x_window

COLS = ROWS = 7
WAIT_S = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--looks", type=int, default=20, help="timed preview looks (default %(default)s)")
    args = parser.parse_args(argv)
    gallery = compose_gallery(lfw_faces(COLS * ROWS), COLS, ROWS, seed=5)
    with tempfile.TemporaryDirectory() as work, virtual_screen(), showing_fullscreen(gallery.image, Path(work)):
        preview = Preview(CaptureConfig())
        first = preview.look("screen:1")
        assert first is not None
        looks = []
        for _ in range(args.looks):
            started = time.perf_counter()
            picture = preview.look("screen:1")
            looks.append((time.perf_counter() - started) * 1000)
        assert picture is not None
        print(
            f"preview: {np.median(looks):.0f} ms median, {np.percentile(looks, 95):.0f} ms p95 per look over "
            f"{args.looks} looks; {picture.tiles} tiles, {picture.faces} faces; {len(picture.uri) / 1024:.0f} KB "
            f"data URI   load {load()}"
        )
        engine = upgrade(f"sqlite:///{work}/bench.db")
        add_user(engine, "bench", Role.TEACHER, "bench benchmark password")
        control = CaptureControl(engine, ClassroomConfig())
        started = time.monotonic()
        control.start(CaptureRequest("screen:1", "bench", "bench"))
        wait(control, lambda run: run.frames >= 1)
        first_frame_s = time.monotonic() - started
        stopping = time.monotonic()
        control.stop()
        run = wait(control, lambda run: not run.running)
        stop_s = time.monotonic() - stopping
        print(
            f"capture: first frame {first_frame_s:.1f} s after Start; exit {run.exit_code} {stop_s:.1f} s after "
            f"Stop; {run.frames} frames, {run.last_faces} faces in the last   load {load()}"
        )
        print(f"killed: capture ended {killed_s(f'sqlite:///{work}/bench.db'):.1f} s after its dashboard's SIGKILL")
        with x_window("Zoom Meeting", 100, 50, 640, 360, 0x2060C0) as zoom, x_display() as connection:
            listing = timed_ms(args.looks, shown_windows)
            following = timed_ms(args.looks, lambda: window_at(connection, zoom.id))
        print(
            f"windows: {np.median(listing):.1f} ms to list them, {np.median(following):.2f} ms per look at one "
            f"(medians of {args.looks})   load {load()}"
        )
    return 0


def killed_s(url: str) -> float:
    """Seconds from SIGKILL of a dashboard whose capture is recording to that capture child's end."""
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "tests.dashboard_stand_in", url, "killed", "bench"], cwd=REPO, stdout=subprocess.PIPE
    )
    assert dashboard.stdout is not None
    child = int(dashboard.stdout.readline().split()[0])
    said = dashboard.stdout.readline().decode().strip()
    if said != "recording":
        raise SystemExit(f"bench.classroom: the capture did not record: {said}")
    dashboard.kill()
    killed_at = time.monotonic()
    dashboard.wait()
    while not has_ended(child):
        if time.monotonic() - killed_at > WAIT_S:
            raise SystemExit(f"bench.classroom: the capture child still ran {WAIT_S} s after its dashboard was killed")
        time.sleep(0.02)
    return time.monotonic() - killed_at


def timed_ms(times: int, call: Callable[[], object]) -> list[float]:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def wait(control: CaptureControl, done: Callable[[CaptureRun], bool]) -> CaptureRun:
    """The run once `done` holds for it (a capture that ends first is done too: its outcome says why)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        run = control.current()
        assert run is not None
        if done(run) or not run.running:
            return run
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.classroom: gave up after {WAIT_S} s: {run.outcome() or 'still running'}")
        time.sleep(0.1)


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
