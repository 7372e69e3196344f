"""Milliseconds for the dashboard's heavy work on a long class: the live page's refresh and the session report.

`python -m bench.dashboard [--minutes M] [--students N] [--ticks T] [--repeats R] [--clients 1,10,20]
[--client-seconds S]`. Builds a SQLite session of
M minutes x N students x 1 observation per second (default 2 h x 50 = 360 000 rows) with bulk inserts through
db.schema, then times the real callbacks: `live_tick` (the dcc.Interval's callback; first refresh, then
incremental ones, each after 2 s more of rows arrive as from a running capture), the same again while another
process writes one frame a second into the file as capture does (one transaction per frame) and the page
refreshes every 2 s of real time, and the report page the router builds: computed from the rows, and again
with the session unchanged (kept by dashboard.report_cache). Each live row also times the refresh's answer
encoded as Dash sends it to the browser ("+ JSON"), and gives its size: the incremental refreshes are the timer's,
so each is sent as what changed since the page before (dashboard.patches). The scoring pass a new 10 s bin calls
for (analytics.live.rescore, which LiveHub runs on a thread of its own beside the refreshes) is timed on its own too,
once after each of `ticks` // 5 bins of new frames.

Then many browsers at once, over real HTTP: `python -m dashboard` (waitress) serves the file while capture
writes a frame a second, and 1, 10 and 20 signed-in clients (each its own account and cookie) poll the live
page's refresh callback every 2 s, as dash-renderer does, each keeping the token of the page it shows. Each
row gives the request's wall time (sent to answer read) over every poll, and the server's memory (resident
now, and its peak) after the row.
Targets (issues 11, 12): live refresh <= 150 ms p95, the live page's first refresh and the report page <= 2 s;
1 client <= 150 ms p95, 20 clients <= 500 ms p95.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import numpy as np
from plotly.io.json import to_json_plotly
from sqlalchemy import Engine, insert, update

from analytics.live import LIVE_HUB, RECENT_ROWS, LiveState, rescore
from bench.school import serve
from dashboard import ids
from dashboard.auth import CSRF_COOKIE, CSRF_FIELD
from dashboard.pages.live import DEFAULT_WINDOW_SECONDS, LiveOutputs, live_tick
from dashboard.pages.report import session_report
from dashboard.report_cache import forget_reports
from db.engine import connect
from db.migrate import upgrade
from db.queries import find_session, frame_count
from db.schema import PROBABILITY_COLUMNS, frames, observations, sessions, students
from db.users import Role, add_user
from vocabulary.emotions import EMOTIONS

SESSION = "bench-long-class"
TICK_SECONDS = 2  # the live page's refresh period; a running capture adds this many frames between ticks
BIN_FRAMES = 10  # a 10 s bin of frames at 1 frame/s: what each timed scoring pass has new
TARGET_TICK_MS = 150
TARGET_FIRST_MS = 2000
TARGET_REPORT_MS = 2000
TARGET_ONE_CLIENT_MS = 150
TARGET_MANY_CLIENTS_MS = 500  # 20 clients (issue 12)
PASSWORD = "bench-password-not-secret"
# Rows per INSERT batch: large enough to amortise the round trips, small enough to keep memory flat.
CHUNK_FRAMES = 600


class SyntheticClass:
    """Writes a class of `students` faces, one frame a second, straight into the tables (no capture pipeline):
    every student in view with their eyes open, their head pose drifting around the screen."""

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
        # Faces mostly turned to the screen, now and then away (|yaw| over 30 degrees about 1 % of the time).
        yaw, pitch = self.rng.normal(0, 12, size=size), self.rng.normal(0, 8, size=size)
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
                "presence": "face",
                "yaw": float(yaw[f, s]),
                "pitch": float(pitch[f, s]),
                "eye_ratio": 0.3,
                "eyes_closed": False,
                "landmarks_age": 0,
                **dict(zip(PROBABILITY_COLUMNS, probabilities[f, s].tolist(), strict=True)),
            }
            for f, (i, ts) in enumerate(zip(indices, times, strict=True))
            for s, student_id in enumerate(self.student_ids)
        ]
        with self.engine.begin() as connection:
            connection.execute(insert(frames), frame_rows)
            connection.execute(insert(observations), observation_rows)
            # As the recorder keeps it: the live flags take a student not seen lately for one who left.
            connection.execute(
                update(students).where(students.c.session_id == self.session_id).values(last_seen=times[-1])
            )
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
        """One line; the verdict is on the p95 (the median of a single run). CPU columns stay blank for calls
        answered by another process (the server, over HTTP)."""
        if not self.wall_ms:  # a server too slow for a second poll in the time given
            print(f"{what:<48}{0:>6}  (none answered in time)")
            return
        median = statistics.median(self.wall_ms)
        p95 = float(np.percentile(self.wall_ms, 95))
        verdict = "" if target_ms is None else ("  ok" if p95 <= target_ms else "  OVER TARGET")
        cpu = " " * 20
        if self.cpu_ms:
            cpu = f"{statistics.median(self.cpu_ms):>10.1f}{float(np.percentile(self.cpu_ms, 95)):>10.1f}"
        print(f"{what:<48}{len(self.wall_ms):>6}{median:>11.1f}{p95:>9.1f}{cpu}{verdict}")


class Browser:
    """One signed-in browser on the live page, over HTTP: its own cookies, the CSRF token dash-renderer sends
    with every callback, and the token of the page it shows (LiveOutputs.state)."""

    def __init__(self, base_url: str, name: str, session: dict[str, Any]) -> None:
        self.base_url, self.session = base_url, session
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.shown: Any = None
        self.sizes: list[int] = []  # bytes of each answer
        self.opener.open(f"{base_url}/login", timeout=60).read()  # hands out the CSRF cookie
        self._post_form("/login", {"name": name, "password": PASSWORD})  # redirects to the purpose notice
        self._post_form("/notice", {"accept": "yes"})

    def _csrf(self) -> str:
        return next(cookie.value or "" for cookie in self.cookies if cookie.name == CSRF_COOKIE)

    def _post_form(self, path: str, fields: dict[str, str]) -> None:
        body = urllib.parse.urlencode({**fields, CSRF_FIELD: self._csrf()}).encode()
        self.opener.open(urllib.request.Request(f"{self.base_url}{path}", data=body), timeout=60).read()

    def poll(self) -> float:
        """One refresh of the live page, as dash-renderer asks for it; its wall milliseconds."""
        outputs = [item.metadata["output"] for item in dataclasses.fields(LiveOutputs)]
        payload = {
            "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": [
                {"id": ids.LIVE_INTERVAL, "property": "n_intervals", "value": 1},
                {"id": ids.LIVE_WINDOW, "property": "value", "value": str(DEFAULT_WINDOW_SECONDS)},
                {"id": ids.LIVE_PREFERENCES, "property": "data", "value": None},
            ],
            "state": [
                {"id": ids.LIVE_SESSION, "property": "data", "value": self.session},
                {"id": ids.LIVE_STATE, "property": "data", "value": self.shown},
            ],
            "changedPropIds": [f"{ids.LIVE_INTERVAL}.n_intervals"],
        }
        request = urllib.request.Request(
            f"{self.base_url}/_dash-update-component",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self._csrf()},
        )
        began = time.perf_counter()
        with self.opener.open(request, timeout=120) as response:
            body = response.read()
        elapsed = (time.perf_counter() - began) * 1000
        self.sizes.append(len(body))
        answer = json.loads(body)["response"] if body else {}
        self.shown = answer.get(ids.LIVE_STATE, {}).get("data", self.shown)
        return elapsed


def time_browsers(url: str, engine: Engine, synthetic: SyntheticClass, counts: list[int], seconds: float) -> None:
    """The rows of many browsers (module docstring): a dashboard server on `url`, and for each count of
    browsers, `seconds` of them polling every TICK_SECONDS while capture writes."""
    session = find_session(engine, SESSION)
    for n in range(max(counts)):
        add_user(engine, f"viewer-{n}", Role.ADMIN, PASSWORD)
    with tempfile.TemporaryDirectory() as data_dir:
        server, port = serve(url, Path(data_dir))
        try:
            first_open = Timings()
            for count in counts:
                browsers = [
                    Browser(f"http://127.0.0.1:{port}", f"viewer-{n}", {"id": session.id, "name": session.name})
                    for n in range(count)
                ]
                polls = Timings()
                with capture_writing(engine, synthetic):
                    _poll_together(browsers, seconds, polls, first_open if not first_open.wall_ms else None)
                if len(first_open.wall_ms) == 1 and count == counts[0]:
                    first_open.print_row("live page over HTTP, first open (new server)", TARGET_FIRST_MS)
                target = TARGET_ONE_CLIENT_MS if count == 1 else TARGET_MANY_CLIENTS_MS if count >= 20 else None
                polls.print_row(f"live page over HTTP, {count} client(s) every {TICK_SECONDS} s", target)
                sizes = [size for browser in browsers for size in browser.sizes[1:]]
                if sizes:
                    print(f"  answer size after the first: median {statistics.median(sizes) / 1000:.1f} kB")
                print(f"  server memory: {_memory(server.pid)}")
        finally:
            server.terminate()
            server.wait()


def _poll_together(browsers: list[Browser], seconds: float, polls: Timings, first: Timings | None) -> None:
    """Each browser polls every TICK_SECONDS for `seconds`, their polls spread evenly over the period; every poll
    after each one's first goes into `polls` (the very first of all into `first`, when given)."""
    lock = threading.Lock()
    start = time.monotonic()

    def browse(index: int, browser: Browser) -> None:
        due = start + TICK_SECONDS * index / len(browsers)
        polled = 0
        while due < start + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            elapsed = browser.poll()
            with lock:
                if polled or first is None:
                    polls.wall_ms.append(elapsed)
                else:
                    first.wall_ms.append(elapsed)
            polled += 1
            # Like dash-renderer: the next poll is due a period after this one was answered.
            due = max(due + TICK_SECONDS, time.monotonic())

    threads = [threading.Thread(target=browse, args=(n, browser)) for n, browser in enumerate(browsers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _memory(pid: int) -> str:
    """A process's resident memory now and its peak, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    mib = {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}
    return f"{mib['VmRSS']:.0f} MiB resident, peak {mib['VmHWM']:.0f} MiB"


@contextlib.contextmanager
def capture_writing(engine: Engine, synthetic: SyntheticClass) -> Iterator[None]:
    """Another process goes on with `synthetic`'s session, one frame a second, while the block runs; `synthetic`
    then goes on after its frames. Forked, so the writer takes `synthetic` as it is (its engine is not
    picklable; the writer opens its own)."""
    processes = multiprocessing.get_context("fork")
    stop = processes.Event()
    writer = processes.Process(target=_capture_writes, args=(engine.url.render_as_string(False), synthetic, stop))
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()
        # Frames are numbered from 0 without gaps: the next one is the count written.
        synthetic.next_frame = frame_count(engine, synthetic.session_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=30, help="incremental live ticks timed")
    parser.add_argument("--repeats", type=int, default=5, help="report page builds timed")
    parser.add_argument("--clients", type=_counts, default=[1, 10, 20], help="browsers at once, e.g. 1,10,20")
    parser.add_argument("--client-seconds", type=_seconds, default=40.0, help="how long each count of browsers polls")
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
        print(f"{'what':<48}{'runs':>6}{'median ms':>11}{'p95 ms':>9}{'CPU ms':>10}{'CPU p95':>10}")
        session = find_session(engine, SESSION)
        live = {"id": session.id, "name": session.name}

        def tick(shown: Any, window: str = str(DEFAULT_WINDOW_SECONDS)) -> LiveOutputs:
            # As the timer asks: sent as the changes to the page the browser shows, once it shows one.
            return live_tick(engine, live, window, shown, datetime.now(UTC), patch=True)

        def ticks(label: str, count: int, between: Callable[[], None]) -> None:
            """A first refresh, then `count` incremental ones with `between` before each; then their rows."""
            LIVE_HUB.forget()  # a first open, as after a server start
            RECENT_ROWS.forget()
            first, later, encoded = Timings(), Timings(), Timings()
            outputs = first.run(lambda: tick(None))
            first_bytes = len(to_json_plotly(list(outputs)))
            sizes = []
            for _ in range(count):
                between()
                outputs = later.run(lambda shown=outputs.state: tick(shown))
                sizes.append(len(encoded.run(lambda answer=outputs: to_json_plotly(list(answer)))))
            first.print_row(f"live refresh, first{label}", TARGET_FIRST_MS)
            later.print_row(f"live refresh, incremental{label}", TARGET_TICK_MS)
            encoded.print_row("  + JSON of its answer for the browser")
            print(
                f"  answer size: first {first_bytes / 1000:.1f} kB, incremental median "
                f"{statistics.median(sizes) / 1000:.1f} kB, largest {max(sizes) / 1000:.1f} kB"
            )

        ticks("", args.ticks, lambda: synthetic.add_frames(TICK_SECONDS))
        RECENT_ROWS.forget()
        scored = rescore(engine, LiveState.start(session.id, DEFAULT_WINDOW_SECONDS), synthetic.latest)
        passes = Timings()
        for _ in range(max(1, args.ticks // 5)):
            synthetic.add_frames(BIN_FRAMES)
            scored = passes.run(lambda state=scored: rescore(engine, state, synthetic.latest))
        passes.print_row("scoring pass, once a bin (on its thread)")
        # The capture goes on in another process while the page refreshes every TICK_SECONDS of real time.
        with capture_writing(engine, synthetic):
            time.sleep(TICK_SECONDS)
            ticks(", capture writing", args.ticks, lambda: time.sleep(TICK_SECONDS))
        LIVE_HUB.forget()
        RECENT_ROWS.forget()
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
        time_browsers(engine.url.render_as_string(False), engine, synthetic, args.clients, args.client_seconds)
        print(f"load average after: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
        engine.dispose()
    return 0


def _seconds(text: str) -> float:
    """--client-seconds: long enough for every browser to poll at least twice (its first poll is timed apart)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 2 * TICK_SECONDS <= seconds <= 24 * 3600:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be from {2 * TICK_SECONDS} s to a day: {text!r}")
    return seconds


def _counts(text: str) -> list[int]:
    """--clients: positive whole numbers, comma-separated."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of whole numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"every count must be 1 or more: {text!r}")
    return counts


if __name__ == "__main__":
    sys.exit(main())
