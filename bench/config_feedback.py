"""What the configuration and capture's terminal feedback cost: reading and checking the configuration (paid once
at every command's start) and the progress bar's and status line's work per frame, drawn on a real
pseudo-terminal (against a 150-300 ms frame).

    .venv/bin/python -m bench.config_feedback
"""

from __future__ import annotations

import os
import pty
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import config
from capture.feedback import make_feedback
from vocabulary.records import Box, FaceSignals, FrameResult, Layout, Observation, Presence

ROUNDS = 200
FRAMES = 2000


def gallery_result(index: int) -> FrameResult:
    """A 49-tile frame's result as the pipeline gives it: 40 faces, 9 camera-off tiles, 40 names."""
    tiles = [Box(x * 100, y * 60, 100, 60) for y in range(7) for x in range(7)]
    observations = [
        Observation(
            f"tile-{i + 1}", tile, tile, None, None, FaceSignals(Presence.FACE if i < 40 else Presence.CAMERA_OFF)
        )
        for i, tile in enumerate(tiles)
    ]
    names = {f"tile-{i + 1}": f"Student {i + 1}" for i in range(40)}
    return FrameResult(index, datetime.now(UTC), observations, 200.0, student_names=names, layout=Layout.GRID)


def per_call_us(call: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e6)
    return times


def drained_terminal() -> tuple[int, int]:
    """A pseudo-terminal whose output is read and thrown away, as a terminal window would show it."""
    master, terminal = pty.openpty()

    def drain() -> None:
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    return master, terminal


def main() -> None:
    load_ms = [t / 1000 for t in per_call_us(config.load, ROUNDS)]
    print(f"config.load (default file): median {statistics.median(load_ms):.2f} ms over {ROUNDS}")
    master, terminal = drained_terminal()
    with os.fdopen(terminal, "w", encoding="utf-8") as stream:
        result = gallery_result(0)
        for label, live in (("file progress bar", False), ("live status line (every frame)", True)):
            feedback = make_feedback(live, FRAMES, "bench", 1e-9, stream)
            times = per_call_us(lambda f=feedback: f.frame(result, 200.0), FRAMES)
            feedback.close()
            print(f"{label}: median {statistics.median(times):.1f} us, p99 {sorted(times)[int(FRAMES * 0.99)]:.1f} us")
    os.close(master)


if __name__ == "__main__":
    main()
