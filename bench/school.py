"""How many classrooms one school server holds: synthetic frames of 50 students from N classrooms at 1 frame/s
each, sent over HTTP to a real `python -m dashboard` (its ingest API, dashboard.ingest) on a real PostgreSQL.

`scripts/postgres.sh run -- python -m bench.school [--classrooms 10,25,50,100] [--seconds S] [--students 50]
[--together] [--outage-seconds 120] [--outage-classrooms 10]`
(or `--db URL` of a PostgreSQL server whose user may create databases). No vision: each classroom is a thread that
makes one frame a second, at its own moment of the second (drawn at random: a capture's seconds count from when its
teacher pressed Start; with --together all classrooms make theirs within 0.1 s of each other, a worst case whose
burst of requests waits in a queue), and sends what waits, oldest first, up to 50 frames a request, one request at a
time, on one kept-alive connection, as capture.sender does; the classrooms run in a process of their own, so that
the views' and the flag counter's work in this one never holds up their reading of an answer. For each N: frames
acknowledged per second, frame commit latency (from the frame's making to the server's acknowledgement, so time
waiting behind others counts) p50/p95, and the backlog (frames made but not acknowledged) halfway and at the end; N
holds when the end backlog is at most one frame per classroom more than halfway and at most two per classroom.
During each N, an admin's school view (every running class, dashboard.pages.school: analytics.school's scoring and
the rows and JSON the browser gets) is refreshed at its page's period and a teacher's live page
(dashboard.pages.live.live_tick, classroom 0) at its own, both in this process on the same database, and timed:
their p95 against the targets. Then an outage: `--outage-classrooms` real capture senders (capture.sender, each with
its own spool) while the server is stopped for `--outage-seconds` and started again: frames made, stored, lost and
duplicated. Where a request's time goes, at each N: every /frames answer carries its server stages (Server-Timing,
db.stages: token, parsing, validation, the session's lock, the recorder's parts), so the table after the steps gives
per stage its mean wall and CPU ms, the server's whole handling, the round trip the classroom saw and what lies
between (waiting for one of waitress's threads, the transfer), and each process's CPU per frame (the server's;
PostgreSQL's, every one of its processes); and one laptop back from an outage sends CATCH_UP frames in one request
at three quarters of each step, timed the same way. Last, the same server code timed in this process, each frame
sent alone (token check, JSON parsing and validation, the recorder's stages), the size on disk of a school day of
rows (extrapolated from the bytes per frame the steps wrote, every partition and index counted), and the report of
one 50-minute class on first open (its rows written straight into the tables beside the steps' rows). The classrooms
run on the same machine as the server and the database, and take CPU from them; each step's row gives the load
average at its start and end, the server's and PostgreSQL's CPU per frame, and this benchmark's own (the classrooms'
process; here, the views' refreshes; and the rest, mostly the school view's flag counter process), none of which is the
server's.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import multiprocessing
import multiprocessing.connection
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy
from dash import no_update
from plotly.io.json import to_json_plotly
from sqlalchemy import Connection, Engine, func, insert, select, text, update

import config
from analytics.school import SchoolBoard
from capture.sender import ServerRecorder
from dashboard.pages import school
from dashboard.pages.live import DEFAULT_WINDOW_SECONDS, live_tick
from dashboard.pages.report import session_report
from dashboard.report_cache import forget_reports
from db.migrate import upgrade
from db.queries import UnknownSessionError, find_session
from db.recorder import SessionRecorder
from db.schema import frames, observations, sessions, users
from db.stages import Stages, parse_header
from db.tokens import issue_token, token_owner
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence
from vocabulary.wire import INGEST_PATH, MAX_BATCH, frame_from_json, frame_to_json

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL_VARIABLE = "CLASSPULSE_TEST_POSTGRES_URL"
SERVER_START_S = 120
# Holding: the backlog may not grow by more than this many frames per classroom from halfway to the end.
BACKLOG_GROWTH_PER_ROOM = 1.0
# ... and end with at most this many frames per classroom waiting: a server that keeps up acknowledges a frame
# within a second or two of its making (a slow one can hold a steady backlog of seconds that barely grows).
MAX_BACKLOG_PER_ROOM = 2.0
TARGET_SCHOOL_MS = 500
TARGET_LIVE_MS = 150
# With --together, every classroom makes its frame within this many seconds of the others each second.
TOGETHER_S = 0.1
# A laptop back from an outage sends its spool this many frames a request (capture.sender's batch).
CATCH_UP = MAX_BATCH
# The server's stages (db.stages, dashboard.ingest), in the order a /frames request goes through them.
STAGES = (
    "token",
    "parse",
    "validate",
    "session",
    "resent",
    "rows",
    "connect",
    "lease",
    "frames",
    "students",
    "observations",
    "rollups",
    "commit",
    "write",
)


@dataclass(frozen=True)
class Request:
    """One /frames request as its classroom saw it."""

    round_trip_ms: float
    frames: int
    stages: dict[str, tuple[float, float]]  # per server stage: wall and CPU ms (db.stages)


@dataclass
class Classroom:
    """One teacher's capture: makes a frame a second, sends what waits, records each frame's commit latency."""

    index: int
    token: str
    session: str
    students: int
    port: int
    # When in each second this classroom makes its frame: captures started at different moments are out of phase.
    phase_s: float
    made: int = 0
    acknowledged: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # Per /frames request: its round trip ms, its frames, and the server's stages (db.stages) from Server-Timing.
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timing: dict[str, tuple[float, float]] = field(default_factory=dict)
    _made_at: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connection: http.client.HTTPConnection | None = None

    def run(self, start: float, seconds: float, stop: threading.Event) -> None:
        template = _frame_template(self.students, self.index)
        first = _wall_clock(start + self.phase_s)
        self._post("open", json.dumps({"session": self.session, "source": "bench"}))
        maker = threading.Thread(target=self._make, args=(start, seconds), daemon=True)
        maker.start()
        while not stop.is_set():
            with self._lock:
                waiting = list(range(self.acknowledged, self.made))[:MAX_BATCH]
            if not waiting:
                time.sleep(0.01)
                continue
            frames = ",".join(_frame_json(template, i, first) for i in waiting)
            sent = time.monotonic()
            ok = self._post("frames", f'{{"session": {json.dumps(self.session)}, "frames": [{frames}]}}')
            done = time.monotonic()
            if ok:
                self.requests.append(Request((done - sent) * 1000, len(waiting), self.timing))
                with self._lock:
                    self.latencies_ms.extend((done - self._made_at.pop(i)) * 1000 for i in waiting)
                    self.acknowledged = waiting[-1] + 1
        # The capture ends: the school view no longer lists the class in the next N's run.
        self._post("close", json.dumps({"session": self.session}))

    def backlog(self) -> int:
        with self._lock:
            return self.made - self.acknowledged

    def catch_up(self, at: float) -> list[Request]:
        """A laptop back from an outage: its session opened with one frame, then at `at` (time.monotonic) the
        CATCH_UP frames its spool kept, in one request, as capture.sender sends them; that request."""
        template = _frame_template(self.students, self.index)
        first = _wall_clock(time.monotonic())
        self._post("open", json.dumps({"session": self.session, "source": "bench"}))
        if not self._post(
            "frames", f'{{"session": {json.dumps(self.session)}, "frames": [{_frame_json(template, 0, first)}]}}'
        ):
            return []
        time.sleep(max(0.0, at - time.monotonic()))
        frames = ",".join(_frame_json(template, i, first) for i in range(1, CATCH_UP + 1))
        sent = time.monotonic()
        ok = self._post("frames", f'{{"session": {json.dumps(self.session)}, "frames": [{frames}]}}')
        request = Request((time.monotonic() - sent) * 1000, CATCH_UP, self.timing)
        self._post("close", json.dumps({"session": self.session}))
        return [request] if ok else []

    def _make(self, start: float, seconds: float) -> None:
        for n in range(int(seconds)):
            time.sleep(max(0.0, start + n + self.phase_s - time.monotonic()))
            with self._lock:
                self._made_at[self.made] = time.monotonic()
                self.made += 1

    def _post(self, path: str, body: str) -> bool:
        """Whether the server acknowledged; its Server-Timing stages in self.timing. One kept-alive connection
        per classroom, as capture.sender keeps one for its lesson; a broken one is opened again."""
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            self._connection.request(
                "POST",
                f"{INGEST_PATH}/{path}",
                body=body.encode(),
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
            response = self._connection.getresponse()
            answer = response.read()
            self.timing = parse_header(response.getheader("Server-Timing", ""))
        except (OSError, http.client.HTTPException) as error:
            self.errors.append(str(error))
            self._connection.close()
            self._connection = None
            return False
        if response.status != 200:
            self.errors.append(f"{response.status}: {answer[:200]!r}")
        return response.status == 200


def _synthetic_frame(students: int, seed: int, index: int = 0) -> FrameResult:
    rng = np.random.default_rng(seed)
    found = []
    for student in range(students):
        tile = Box((student % 7) * 274, (student // 7) * 154, 270, 150)
        probabilities = rng.dirichlet(np.ones(len(EMOTIONS)))
        signals = FaceSignals(Presence.FACE, float(rng.normal(0, 15)), float(rng.normal(0, 8)), 0.3, False, 0)
        face = Box(tile.x + 100, tile.y + 30, 70, 70)
        found.append(
            Observation(f"tile-{student + 1}", tile, face, probabilities, int(probabilities.argmax()), signals)
        )
    names = {f"tile-{student + 1}": f"Student {student + 1}" for student in range(students)}
    return FrameResult(index, FIRST_TS + timedelta(seconds=index), found, 140.0, student_names=names)


# The frame template's time; a classroom's frames carry their own (_frame_json), as a real class's do: the school
# view shows how long ago each class's last frame came.
FIRST_TS = datetime.now(UTC).replace(microsecond=0)


def _wall_clock(at: float) -> datetime:
    """The wall-clock time of the time.monotonic() moment `at`."""
    return datetime.now(UTC) + timedelta(seconds=at - time.monotonic())


def _frame_template(students: int, seed: int) -> str:
    """One frame's JSON whose number and time `_frame_json` fills in: the classrooms' own CPU, which shares the
    machine with the server, stays small."""
    return json.dumps(frame_to_json(_synthetic_frame(students, seed)))


def _frame_json(template: str, index: int, first: datetime) -> str:
    """Frame `index` of a capture whose frame 0 was made at `first`."""
    ts = (first + timedelta(seconds=index)).isoformat()
    return template.replace('"frame": 0', f'"frame": {index}', 1).replace(FIRST_TS.isoformat(), ts, 1)


@dataclass(frozen=True)
class StepResult:
    classrooms: int
    frames_per_s: float
    p50_ms: float
    p95_ms: float
    backlog_half: int
    backlog_end: int
    errors: int
    views: dict[str, list[float]]
    load: tuple[float, float]  # 1-minute load average at the step's start and end
    requests: list[Request]
    catch_up: Request | None  # CATCH_UP frames in one request, sent at three quarters of the step
    cpu_per_frame_ms: tuple[float, float]  # the server's, PostgreSQL's (all its processes)
    # This benchmark's own: the classrooms' sending, the views' refreshes, the rest (the flag counter's)
    bench_cpu_per_frame_ms: tuple[float, float, float]

    @property
    def holds(self) -> bool:
        grown = self.backlog_end - self.backlog_half
        return (
            self.errors == 0
            and grown <= BACKLOG_GROWTH_PER_ROOM * self.classrooms
            and self.backlog_end <= MAX_BACKLOG_PER_ROOM * self.classrooms
        )

    def row(self) -> str:
        school, live = self.views["school"], self.views["live"]
        first = f"{school[0]:.0f}" if school else "-"
        lags = " | ".join(f"{_percentile(self.views[lag], 95):.1f}" for lag in ("lag", "age", "flags_lag"))
        return (
            f"| {self.classrooms} | {self.frames_per_s:.1f} | {self.p50_ms:.0f} | "
            f"{self.p95_ms:.0f} | {self.backlog_half} | {self.backlog_end} | {self.errors} | "
            f"{'yes' if self.holds else 'no'} | {first} | {_percentile(school[1:], 95):.0f} ({len(school) - 1}) | "
            f"{lags} | {_percentile(live, 95):.0f} ({len(live)}) | {self.load[0]:.1f} → {self.load[1]:.1f} | "
            f"{self.cpu_per_frame_ms[0]:.1f} / {self.cpu_per_frame_ms[1]:.1f} | "
            f"{' / '.join(f'{ms:.1f}' for ms in self.bench_cpu_per_frame_ms)} |"
        )


def time_views(
    engine: Engine, session_name: str, offline_session: str, start: float, seconds: float
) -> tuple[dict[str, list[float]], float]:
    """Wall ms of each refresh of an admin's school view (every [dashboard] school_refresh_seconds) and of a
    teacher's live page of `session_name` (every live_refresh_seconds, keeping what the browser keeps) from
    `start` for `seconds`; and per school refresh, in seconds for the class most behind: "lag", its numbers
    behind its latest stored frame; "age", its numbers behind the wall clock when shown (the frame period and the
    ingest's delay included; not `offline_session`'s, a laptop whose frames wait in its spool, whose numbers
    are as old as its outage); "flags_lag", its flag count behind its latest stored frame (a class not counted
    yet: since its start). The school view's board is new, as after a server start. Also the CPU seconds its
    flag counter (a process of its own) used."""
    board = SchoolBoard()
    timings: dict[str, list[float]] = {"school": [], "live": [], "lag": [], "age": [], "flags_lag": []}
    next_at = {"school": start + 2.0, "live": start + 2.0}
    shown: Any = None
    while (now := time.monotonic()) < start + seconds:
        view = min(next_at, key=lambda name: next_at[name])
        time.sleep(max(0.0, next_at[view] - now))
        began = time.perf_counter()
        if view == "school":
            classes = board.refresh(engine)
            to_json_plotly(list(school.now_rows(classes)))
            timings[view].append((time.perf_counter() - began) * 1000)
            shown_at = datetime.now(UTC)
            for name, lags in (
                ("lag", [seen.session.latest_frame - seen.scored_at for seen in classes]),
                ("age", [shown_at - seen.scored_at for seen in classes if seen.session.name != offline_session]),
                (
                    "flags_lag",
                    [seen.session.latest_frame - (seen.flags_at or seen.session.started_at) for seen in classes],
                ),
            ):
                timings[name].append(max((lag.total_seconds() for lag in lags), default=0.0))
            next_at[view] += config.chosen().dashboard.school_refresh_seconds
        else:
            next_at[view] += config.chosen().dashboard.live_refresh_seconds
            try:
                info = find_session(engine, session_name)
            except UnknownSessionError:  # its capture's open still waits in the server's queue
                continue
            # As the page's timer asks: the changes to the page the browser shows, once it shows one.
            outputs = live_tick(
                engine,
                {"id": info.id, "name": info.name},
                str(DEFAULT_WINDOW_SECONDS),
                shown,
                datetime.now(UTC),
                patch=True,
            )
            to_json_plotly(list(outputs))
            timings[view].append((time.perf_counter() - began) * 1000)
            if outputs.state is not no_update:  # an unchanged page keeps the token it had
                shown = outputs.state
    pid = board.counter_pid(engine)
    return timings, 0.0 if pid is None else _cpu_seconds(pid)


@dataclass(frozen=True)
class Sent:
    """What the classrooms' own process (send_classrooms) hands back for one step."""

    acknowledged: int
    latencies_ms: list[float]
    requests: list[Request]
    errors: list[str]
    catch_up: list[Request]
    backlog_half: int
    backlog_end: int
    cpu_s: float  # the process's CPU seconds: the load generator's cost, not the server's


def send_classrooms(rooms: list[Classroom], late: Classroom, start: float, seconds: float) -> Sent:
    """Run the classrooms (and the late laptop's catch-up at three quarters) from `start` for `seconds`."""
    began_cpu = time.process_time()
    stop = threading.Event()
    threads = [threading.Thread(target=room.run, args=(start, seconds, stop), daemon=True) for room in rooms]
    for thread in threads:
        thread.start()
    catch_up: list[Request] = []
    back = threading.Thread(target=lambda: catch_up.extend(late.catch_up(start + seconds * 3 / 4)), daemon=True)
    back.start()
    time.sleep(max(0.0, start + seconds / 2 - time.monotonic()))
    backlog_half = sum(room.backlog() for room in rooms)
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    backlog_end = sum(room.backlog() for room in rooms)
    stop.set()
    for thread in [*threads, back]:
        thread.join(timeout=60)
    return Sent(
        sum(room.acknowledged for room in rooms),
        sorted(ms for room in rooms for ms in room.latencies_ms),
        [request for room in rooms for request in room.requests],
        [error for room in rooms for error in room.errors],
        catch_up,
        backlog_half,
        backlog_end,
        time.process_time() - began_cpu,
    )


def _sent_through(
    pipe: multiprocessing.connection.Connection, rooms: list[Classroom], late: Classroom, start: float, seconds: float
) -> None:
    pipe.send(send_classrooms(rooms, late, start, seconds))
    pipe.close()


def run_step(
    engine: Engine, server_pid: int, port: int, classrooms: int, students: int, seconds: float, together: bool = False
) -> StepResult:
    """One N: the classrooms send from a process of their own (forked, so nothing is pickled to it), so that
    neither their sending nor the views' and the flag counter's work here waits for the other's interpreter;
    the views are timed in this process. Each classroom makes its frame at its own moment of each second, drawn
    at random, as captures started by different teachers do; with `together` all within TOGETHER_S of each
    other (a worst case)."""
    step = uuid.uuid4().hex[:6]
    # Each capture's second starts when its teacher pressed Start: at random within the second, the same each run.
    phases = np.random.default_rng(classrooms).uniform(0.0, TOGETHER_S if together else 1.0, classrooms)
    cpu_before = _cpu_seconds(server_pid), _postgres_cpu_seconds(engine)
    rooms = [
        Classroom(
            i,
            _teacher_token(engine, f"bench-{step}-{i}"),
            f"bench-{step}-room-{i}",
            students,
            port,
            phase,
        )
        for i, phase in enumerate(phases)
    ]
    late = Classroom(
        classrooms, _teacher_token(engine, f"bench-{step}-late"), f"bench-{step}-late", students, port, 0.0
    )
    load_before = os.getloadavg()[0]
    start = time.monotonic() + 1.0
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    sender = multiprocessing.get_context("fork").Process(
        target=_sent_through, args=(sending, rooms, late, start, seconds), daemon=True
    )
    sender.start()
    sending.close()
    bench_cpu_before = time.process_time()
    began_views = time.thread_time()
    views, counter_cpu_s = time_views(engine, rooms[0].session, late.session, start, seconds)
    views_cpu_s = time.thread_time() - began_views
    sent: Sent = receiving.recv()
    sender.join(timeout=60)
    stored = sent.acknowledged + sum(request.frames for request in sent.catch_up)
    cpu_ms = [
        (after - before) * 1000 / max(stored, 1)
        for before, after in zip(cpu_before, (_cpu_seconds(server_pid), _postgres_cpu_seconds(engine)), strict=True)
    ]
    # The benchmark's own CPU, none of it the server's: the classrooms' process; here, the views' refreshes, and
    # the rest, with the school view's flag counter (a process of its own, analytics.school).
    per_frame = 1000 / max(stored, 1)
    rest_s = time.process_time() - bench_cpu_before - views_cpu_s + counter_cpu_s
    if sent.errors:
        print(f"  {len(sent.errors)} request(s) failed, first: {sent.errors[0]}", file=sys.stderr)
    return StepResult(
        classrooms,
        sent.acknowledged / seconds,
        _percentile(sent.latencies_ms, 50),
        _percentile(sent.latencies_ms, 95),
        sent.backlog_half,
        sent.backlog_end,
        len(sent.errors),
        {view: views.get(view, []) for view in ("school", "live", "lag", "age", "flags_lag")},
        (load_before, os.getloadavg()[0]),
        sent.requests,
        sent.catch_up[0] if sent.catch_up else None,
        (cpu_ms[0], cpu_ms[1]),
        (sent.cpu_s * per_frame, views_cpu_s * per_frame, rest_s * per_frame),
    )


def breakdown(results: list[StepResult]) -> str:
    """Where a /frames request's time went at each N: per stage (STAGES, dashboard.ingest and db.recorder), its
    mean wall ms per request with the CPU ms of it in brackets; the server's whole handling and the round trip
    the classroom saw (p50 / p95); "queue + HTTP" is the round trip less the server's handling (waiting for one
    of waitress's threads, the request's transfer and parsing); and the catch-up batch's own stages."""
    head = ["classrooms", "requests", "frames a request", "round trip p50 / p95", "queue + HTTP mean / p95"]
    head += ["server mean / p95 (CPU)", *STAGES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        for label, requests in ((str(result.classrooms), result.requests), ("catch-up", [result.catch_up])):
            done = [request for request in requests if request is not None and "server" in request.stages]
            if not done:
                continue
            server = [request.stages["server"][0] for request in done]
            trip = [request.round_trip_ms for request in done]
            queued = [request.round_trip_ms - request.stages["server"][0] for request in done]
            cells = [
                label,
                str(len(done)),
                f"{statistics.mean(request.frames for request in done):.1f}",
                f"{_percentile(trip, 50):.0f} / {_percentile(trip, 95):.0f}",
                f"{statistics.mean(queued):.0f} / {_percentile(queued, 95):.0f}",
                f"{statistics.mean(server):.1f} / {_percentile(server, 95):.0f} "
                f"({statistics.mean(request.stages['server'][1] for request in done):.1f})",
            ]
            for stage in STAGES:
                wall = [request.stages.get(stage, (0.0, 0.0)) for request in done]
                cells.append(f"{statistics.mean(w for w, _ in wall):.1f} ({statistics.mean(c for _, c in wall):.1f})")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds process `pid` used so far, with those of its children that have ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from after the command's name.
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds(engine: Engine) -> float:
    """CPU seconds the PostgreSQL server used so far: its postmaster, its live processes and its ended ones."""
    with engine.connect() as connection:
        backend = connection.scalar(text("SELECT pg_backend_pid()"))
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    total = _cpu_seconds(postmaster)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == postmaster:
            total += sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return total


def _teacher_token(engine: Engine, name: str) -> str:
    """A teacher who cannot sign in (no password hash verifies "!") and a capture token for them."""
    with engine.begin() as connection:
        connection.execute(
            insert(users).values(name=name, role="teacher", password_hash="!", created_at=datetime.now(UTC))
        )
    return issue_token(engine, name)[1]


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, percent))


def school_day_on_disk(engine: Engine, students: int) -> str:
    """A school day's rows on disk, from the bytes per frame (its observations, the frame row, every index) that
    the steps above wrote, and of the roll-ups beside them; a partitioned table's size is its partitions'."""
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(frames))
        size = _on_disk(connection, "observations") + _on_disk(connection, "frames")
        rollups = _on_disk(connection, "session_rollups")
    per_frame, rollups_per_frame = size / max(stored, 1), rollups / max(stored, 1)
    day_frames = 100 * 6 * 50 * 60  # 100 classrooms x 6 periods x 50 min at 1 frame/s
    return (
        f"\non disk: {per_frame / 1024:.1f} KiB per frame of {students} students ({stored} frames stored); a school "
        f"day of 100 classrooms x 6 periods x 50 min: {day_frames * per_frame / 2**30:.1f} GiB; its roll-ups "
        f"{rollups_per_frame / 1024:.2f} KiB per frame, {day_frames * rollups_per_frame / 2**30:.2f} GiB a day"
    )


def _on_disk(connection: Connection, table: str) -> int:
    """Bytes of `table` with its indexes, and of all its partitions' when it has them."""
    size = connection.scalar(
        text("SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(:table)"), {"table": table}
    )
    return int(size or 0)


def first_report(engine: Engine, students: int, minutes: int = 50) -> str:
    """Ms to the session report of one ended class of `minutes` x `students` (bench.dashboard.SyntheticClass,
    written beside the steps' rows) on first open, computed afresh as the router computes it."""
    # Here, not at the top: bench.dashboard imports this module's serve.
    from bench.dashboard import SESSION, TARGET_REPORT_MS, SyntheticClass

    synthetic = SyntheticClass(engine, students, datetime.now(UTC) - timedelta(minutes=minutes))
    synthetic.add_frames(minutes * 60)
    with engine.begin() as connection:
        connection.execute(
            update(sessions).where(sessions.c.id == synthetic.session_id).values(ended_at=synthetic.latest)
        )
    session = find_session(engine, SESSION)
    forget_reports()
    began = time.perf_counter()
    session_report(engine, session)
    took = (time.perf_counter() - began) * 1000
    return (
        f"report of one {minutes}-min class of {students} students ({synthetic.next_frame * students} rows) on first "
        f"open: {took:.0f} ms (target {TARGET_REPORT_MS}; load {os.getloadavg()[0]:.1f})"
    )


def where_the_time_goes(engine: Engine, students: int, count: int = 60) -> dict[str, float]:
    """Median ms per frame of each part of the server's work, the same code timed here in one thread, each frame
    sent alone: its token read from the database (what a request pays when dashboard.ingest.TokenCache does not
    hold it), its JSON parsed and validated, and the recorder's stages (db.stages) writing it."""
    token = _teacher_token(engine, f"bench-parts-{uuid.uuid4().hex[:6]}")
    bodies = [
        json.dumps({"session": "x", "frames": [frame_to_json(_synthetic_frame(students, 7, i))]}) for i in range(count)
    ]
    parts: dict[str, list[float]] = {"token check (not cached)": [], "JSON parse + validation": []}
    with SessionRecorder.open(engine, f"bench-parts-{uuid.uuid4().hex[:6]}", "bench") as recorder:
        for body in bodies:
            started = time.perf_counter()
            token_owner(engine, token)
            checked = time.perf_counter()
            result = frame_from_json(json.loads(body)["frames"][0])
            parsed = time.perf_counter()
            stages = Stages()
            recorder.record_many([result], stages)
            parts["token check (not cached)"].append((checked - started) * 1000)
            parts["JSON parse + validation"].append((parsed - checked) * 1000)
            # The first frame inserts the students, a statement at a time; the later ones are one statement.
            if result.frame_index > 0:
                for stage, ms in stages.wall.items():
                    parts.setdefault(f"recorder: {stage}", []).append(ms)
    return {name: statistics.median(values) for name, values in parts.items()}


def serve(url: str, data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m dashboard` on `url`, on `port` (default: a free one), once it answers."""
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    log_path = data_dir / f"dashboard-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "dashboard", "--db", url, "--port", str(port), "--data-dir", str(data_dir)]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench.school: the dashboard exited: {log_path.read_text()}")
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/")
            return server, port
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("bench.school: the dashboard did not start")


def outage(url: str, engine: Engine, data_dir: Path, classrooms: int, students: int, down_s: float) -> None:
    """`classrooms` real captures' senders (capture.sender, each with its own spool) at 1 frame/s; the server is
    stopped for `down_s` mid-class and started again on its port. Prints frames made, stored, lost, duplicated."""
    server, port = serve(url, data_dir)
    step = uuid.uuid4().hex[:6]
    names = [f"bench-{step}-outage-{i}" for i in range(classrooms)]
    recorders = [
        ServerRecorder.open(
            f"http://127.0.0.1:{port}", _teacher_token(engine, name), name, "bench", data_dir / f"{name}.db", 120.0
        )
        for name in names
    ]
    templates = [_synthetic_frame(students, i) for i in range(classrooms)]
    made = 0
    before_s = after_s = 20.0
    start = time.monotonic()
    restarted_at: float | None = None
    caught_up_s: float | None = None
    while (now := time.monotonic() - start) < before_s + down_s + after_s:
        if server is not None and before_s <= now < before_s + down_s:
            server.terminate()
            server.wait(timeout=30)
            server = None
        if server is None and now >= before_s + down_s:
            server, _ = serve(url, data_dir, port)
            restarted_at = time.monotonic()
        waiting = any(r.spool.waiting(r.client.server_url) for r in recorders)
        if restarted_at is not None and caught_up_s is None and not waiting:
            caught_up_s = time.monotonic() - restarted_at
        for recorder, frame in zip(recorders, templates, strict=True):
            recorder.record(dataclasses.replace(frame, frame_index=made, timestamp=FIRST_TS + timedelta(seconds=made)))
        made += 1
        time.sleep(max(0.0, start + made - time.monotonic()))
    for recorder in recorders:
        recorder.close()
    assert server is not None
    server.terminate()
    server.wait(timeout=30)
    with engine.connect() as connection:
        in_bench = sessions.c.name.in_(names)
        stored = connection.scalar(select(func.count()).select_from(frames.join(sessions)).where(in_bench))
        rows = connection.scalar(select(func.count()).select_from(observations.join(sessions)).where(in_bench))
    expected = made * classrooms
    # frames holds one row per (session, frame number) (a unique constraint), and the numbers run 0..made-1.
    print(
        f"{classrooms} classrooms, server down {down_s:.0f} s: frames made {expected}, stored {stored}, "
        f"lost {expected - stored}; observation rows {rows} (expected {expected * students}, so "
        f"{rows - expected * students} duplicated); the backlog was sent "
        f"{'by the end' if caught_up_s is None else f'within {caught_up_s:.0f} s'} of the restart"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.school", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        default=os.environ.get(POSTGRES_URL_VARIABLE),
        help=f"a PostgreSQL server URL whose user may create databases (default: ${POSTGRES_URL_VARIABLE})",
    )
    parser.add_argument("--classrooms", default="10,25,50,100", help="the N to try, in order (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each N runs (default %(default)s)")
    parser.add_argument("--students", type=int, default=50, help="students per classroom (default %(default)s)")
    parser.add_argument(
        "--together",
        action="store_true",
        help=f"every classroom makes its frame within {TOGETHER_S} s of the others each second (a worst case; "
        "default: each at its own moment, drawn at random, as captures started by different teachers do)",
    )
    parser.add_argument(
        "--outage-seconds", type=float, default=120.0, help="server outage mid-class, s (default %(default)s; 0: none)"
    )
    parser.add_argument(
        "--outage-classrooms", type=int, default=10, help="classrooms through the outage (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if not args.db:
        parser.error("no PostgreSQL: run under `scripts/postgres.sh run -- python -m bench.school`, or give --db")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin = sqlalchemy.create_engine(args.db, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    name = f"bench_school_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy.make_url(args.db).set(database=name).render_as_string(hide_password=False)
    engine = upgrade(url)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            server, port = serve(url, Path(data_dir))
            try:
                print(
                    "| classrooms | frames/s acknowledged | p50 ms | p95 ms | backlog halfway "
                    "| backlog at end | failed requests | holds | school view, first refresh ms | school view, "
                    f"later refreshes p95 ms (count; target {TARGET_SCHOOL_MS}) | school view, its numbers behind the "
                    "latest frame p95 s | its numbers' age when shown p95 s | its flags behind the latest frame p95 s "
                    f"| live page p95 ms (count; target {TARGET_LIVE_MS}) | load average, start → end "
                    "| CPU ms per frame: server / PostgreSQL | this benchmark's CPU ms per frame: classrooms / "
                    "views / flag counter and the rest |"
                )
                print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
                results: list[StepResult] = []
                for classrooms in (int(n) for n in args.classrooms.split(",")):
                    results.append(
                        run_step(engine, server.pid, port, classrooms, args.students, args.seconds, args.together)
                    )
                    print(results[-1].row(), flush=True)
                    if not results[-1].holds:
                        break
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(f"\nwhere a /frames request's time goes, ms per request, mean (CPU):\n{breakdown(results)}")
            print(school_day_on_disk(engine, args.students))
            print(first_report(engine, args.students))
            if args.outage_seconds > 0:
                print()
                outage(url, engine, Path(data_dir), args.outage_classrooms, args.students, args.outage_seconds)
        print("\nserver work per frame, median ms (the same code in one thread of this process):")
        for part, ms in where_the_time_goes(engine, args.students).items():
            print(f"  {part}: {ms:.2f}")
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
