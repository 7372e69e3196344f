"""Milliseconds for the dashboard's heavy work on a long class: the live page's refresh and the session report.

`python -m bench.dashboard [--minutes M] [--students N] [--ticks T] [--repeats R]`. Builds a SQLite session of
M minutes x N students x 1 observation per second (default 2 h x 50 = 360 000 rows) with bulk inserts through
db.schema, then times the real callbacks: `live_tick` (the dcc.Interval's callback; first refresh, then
incremental ones, each after 2 s more of rows arrive as from a running capture), the same again while another
process writes one frame a second into the file as capture does (one transaction per frame) and the page
refreshes every 2 s of real time, and the report page the router builds: computed from the rows, and again
with the session unchanged (kept by dashboard.report_cache). Each live row also times the refresh's answer
encoded as Dash sends it to the browser ("+ JSON").
Targets (issue 11): live refresh <= 150 ms p95, the live page's first refresh and the report page <= 2 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from plotly.io.json import to_json_plotly
from sqlalchemy import Engine, insert

from dashboard.pages.live import DEFAULT_WINDOW_SECONDS, LiveOutputs, live_tick
from dashboard.pages.report import session_report
from dashboard.report_cache import forget_reports
from db.engine import connect
from db.migrate import upgrade
from db.queries import find_session
from db.schema import PROBABILITY_COLUMNS, frames, observations, sessions, students
from vocabulary.emotions import EMOTIONS

SESSION = "bench-long-class"
TICK_SECONDS = 2  # the live page's refresh period; a running capture adds this many frames between ticks
TARGET_TICK_MS = 150
TARGET_FIRST_MS = 2000
TARGET_REPORT_MS = 2000
# Rows per INSERT batch: large enough to amortise the round trips, small enough to keep memory flat.
CHUNK_FRAMES = 600


class SyntheticClass:
    """Writes a class of `students` faces, one frame a second, straight into the tables (no capture pipeline)."""

    def __init__(self, engine: Engine, student_count: int, start: datetime, seed: int = 0) -> None:
        self.engine, self.student_count, self.start = engine, student_count, start
        self.rng = np.random.default_rng(seed)
        self.next_frame = 0
        self.session_id, self.student_ids = self._open_session()

    @classmethod
    def continuing(cls, engine: Engine, other: SyntheticClass) -> SyntheticClass:
        """A writer that goes on with `other`'s session from its next frame (in another process)."""
        writer = cls.__new__(cls)
        writer.engine, writer.student_count, writer.start = engine, other.student_count, other.start
        writer.rng = np.random.default_rng(other.next_frame)
        writer.next_frame, writer.session_id, writer.student_ids = other.next_frame, other.session_id, other.student_ids
        return writer

    def _open_session(self) -> tuple[int, list[int]]:
        engine, student_count, start = self.engine, self.student_count, self.start
        with engine.begin() as connection:
            session_id = connection.scalar(
                insert(sessions).values(name=SESSION, source="bench", started_at=start).returning(sessions.c.id)
            )
            rows = [
                {"session_id": session_id, "key": f"tile-{n}", "first_seen": start, "last_seen": start}
                for n in range(1, student_count + 1)
            ]
            statement = insert(students).returning(students.c.id, sort_by_parameter_order=True)
            return session_id, list(connection.scalars(statement, rows))

    def add_frames(self, count: int) -> None:
        for first in range(0, count, CHUNK_FRAMES):
            self._insert(min(CHUNK_FRAMES, count - first))

    @property
    def latest(self) -> datetime:
        return self.start + timedelta(seconds=self.next_frame - 1)

    def _insert(self, count: int) -> None:
        indices = range(self.next_frame, self.next_frame + count)
        times = [self.start + timedelta(seconds=index) for index in indices]
        # A drifting class mood, so the charts have something to draw: Dirichlet draws around a slow-moving mean.
        size = (count, self.student_count)
        mood = 1 + 4 * np.abs(np.sin(np.outer(np.array(indices) / 600, np.arange(1, len(EMOTIONS) + 1))))
        probabilities = self.rng.gamma(np.repeat(mood[:, None, :], self.student_count, axis=1))
        probabilities /= probabilities.sum(axis=2, keepdims=True)
        emotion = probabilities.argmax(axis=2)
        boxes = self.rng.integers(40, 100, size=size)
        frame_rows = [
            {
                "session_id": self.session_id,
                "frame_index": i,
                "ts": ts,
                "faces": self.student_count,
                "processing_ms": 60.0,
            }
            for i, ts in zip(indices, times, strict=True)
        ]
        observation_rows = [
            {
                "session_id": self.session_id,
                "student_id": student_id,
                "frame_index": i,
                "ts": ts,
                "x": 200 * s,
                "y": 100,
                "w": int(boxes[f, s]),
                "h": int(boxes[f, s]),
                "emotion": int(emotion[f, s]),
                **dict(zip(PROBABILITY_COLUMNS, probabilities[f, s].tolist(), strict=True)),
            }
            for f, (i, ts) in enumerate(zip(indices, times, strict=True))
            for s, student_id in enumerate(self.student_ids)
        ]
        with self.engine.begin() as connection:
            connection.execute(insert(frames), frame_rows)
            connection.execute(insert(observations), observation_rows)
        self.next_frame += count


def _capture_writes(url: str, synthetic: SyntheticClass, stop: Any) -> None:
    """A second process going on with `synthetic`'s session: one frame a second, each in its own transaction,
    until `stop` is set."""
    engine = connect(url, create=False)
    writer = SyntheticClass.continuing(engine, synthetic)
    started, written = time.monotonic(), 0
    while not stop.is_set():
        writer.add_frames(1)
        written += 1
        stop.wait(max(0.0, started + written - time.monotonic()))
    engine.dispose()


@dataclass
class Timings:
    """Wall-clock and CPU milliseconds of repeated calls (median and p95 of each). CPU time is this process's
    own (SQLite runs in it), so a machine busy with other work inflates the wall-clock figures but hardly the
    CPU ones."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def run(self, call: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        self.wall_ms.append((time.perf_counter() - wall) * 1000)
        self.cpu_ms.append((time.process_time() - cpu) * 1000)
        return result

    def print_row(self, what: str, target_ms: float | None = None) -> None:
        """One line; the verdict is on the p95 (the median of a single run)."""
        median = statistics.median(self.wall_ms)
        p95 = float(np.percentile(self.wall_ms, 95))
        verdict = "" if target_ms is None else ("  ok" if p95 <= target_ms else "  OVER TARGET")
        cpu, cpu_p95 = statistics.median(self.cpu_ms), float(np.percentile(self.cpu_ms, 95))
        print(f"{what:<44}{len(self.wall_ms):>6}{median:>11.1f}{p95:>9.1f}{cpu:>10.1f}{cpu_p95:>10.1f}{verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=30, help="incremental live ticks timed")
    parser.add_argument("--repeats", type=int, default=5, help="report page builds timed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        engine = upgrade(f"sqlite:///{work}/bench.db")
        # A fixed start keeps runs comparable.
        start = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
        synthetic = SyntheticClass(engine, args.students, start)
        build = Timings()
        build.run(lambda: synthetic.add_frames(args.minutes * 60))
        print(
            f"SQLite, {args.minutes} min x {args.students} students x 1 row/s = "
            f"{synthetic.next_frame * args.students} observations (bulk insert {build.wall_ms[0] / 1000:.1f} s); "
            f"live window {DEFAULT_WINDOW_SECONDS // 60} min; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'what':<44}{'runs':>6}{'median ms':>11}{'p95 ms':>9}{'CPU ms':>10}{'CPU p95':>10}")
        session = find_session(engine, SESSION)
        live = {"id": session.id, "name": session.name}

        def tick(stored: dict[str, Any] | None, window: str = str(DEFAULT_WINDOW_SECONDS)) -> LiveOutputs:
            return live_tick(engine, live, window, stored, datetime.now(UTC))

        def ticks(label: str, count: int, between: Callable[[], None]) -> None:
            """A first refresh, then `count` incremental ones with `between` before each; then their rows."""
            first, later, encoded = Timings(), Timings(), Timings()
            outputs = first.run(lambda: tick(None))
            for _ in range(count):
                between()
                outputs = later.run(lambda stored=outputs.state: tick(stored))
                encoded.run(lambda answer=outputs: to_json_plotly(list(answer)))
            first.print_row(f"live refresh, first{label}", TARGET_FIRST_MS)
            later.print_row(f"live refresh, incremental{label}", TARGET_TICK_MS)
            encoded.print_row("  + JSON of its answer for the browser")

        ticks("", args.ticks, lambda: synthetic.add_frames(TICK_SECONDS))
        # The capture goes on in another process while the page refreshes every TICK_SECONDS of real time.
        # Forked, so the writer takes `synthetic` as it is (its engine is not picklable; the writer opens its own).
        processes = multiprocessing.get_context("fork")
        stop = processes.Event()
        writer = processes.Process(target=_capture_writes, args=(engine.url.render_as_string(), synthetic, stop))
        writer.start()
        try:
            time.sleep(TICK_SECONDS)
            ticks(", capture writing", args.ticks, lambda: time.sleep(TICK_SECONDS))
        finally:
            stop.set()
            writer.join()
        whole = Timings()
        whole.run(lambda: tick(None, window="all"))
        whole.print_row("live refresh, first, whole session", TARGET_FIRST_MS)
        reports, again = Timings(), Timings()
        for _ in range(args.repeats):
            forget_reports()
            reports.run(lambda: session_report(engine, session))
            again.run(lambda: session_report(engine, session))
        reports.print_row("report page, computed", TARGET_REPORT_MS)
        again.print_row("report page, kept (unchanged)", TARGET_REPORT_MS)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
