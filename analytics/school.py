"""The admin's school view: every class running now, and trends across sessions per teacher or class over weeks.

A running class's line is its class engagement per 10 s bin over the last TREND_SECONDS, scored in the
database from the per-session roll-ups that the recorder keeps as frames arrive (db.rollups,
db.school_reads.class_lines): one read per refresh for every class, of the bins since the last refresh (the
earlier ones are kept), a row per class and bin, never a raw row, so every class's numbers are from its latest
frame at every refresh however many classes run. The roll-ups'
score differs from the report's, which scores the raw rows, only where db.rollups says (the expression's
trailing smoothing, frames weighed equally, a student who left mid-bin).

Its open-flag counts are a state kept per running class, never counted by a refresh: a refresh reads no raw
row. The flags (analytics.live_flags.flag_board's, the live page's own, with the teacher's decisions) are
judged over minutes of a class's rows, so a counter beside the view (a process per database, started by the
first refresh, ended when refreshes stop; a thread of the server's process shared its interpreter with the
pages and the ingest, and slowed every page it overlapped) counts each running class's once FLAG_EVERY of its
frames have come, the longest waiting first (a class never counted first), at most COUNTER_SHARE of a core;
each class says which frame its flag count is from. It keeps each running class's last two flag spans of scored rows
(analytics.live.RecentRows, as the live page does) and its last flags, so a count reads and scores only the
frames written since the last one, and flags still on need no reads back. The 10 s roll-ups cannot give the
same answer: a flag's start and raise fall mid-bin (a camera off for absent_seconds is not a number of whole
bins), eyes_closed needs the moments of the eye readings, negative the smoothed probability against the
student's baseline and the class median, drop the per-frame engagement, and the teacher's decisions are kept
by the flag's exact start.

Trends read one row per session: its stored average engagement (db.schema.SessionRecord.mean_engagement, kept
when a session ends) and its counts summed from the roll-ups (db.school_reads.session_totals), which an ended
session keeps in memory here. A session without a stored average counts in the others' columns, not in the
engagement's. A session's class is its class (db.classes, `capture --class`), or for a session recorded without
one its name less a date at its end (class_name); a class is a teacher's, so per class means per class and
teacher.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics.flags import Flag
from analytics.live import RecentRows, engagement_config
from analytics.live_flags import HeldRows, flag_board, flag_span
from analytics.settings import EngagementConfig, Weights
from db.engine import connect
from db.errors import DatabaseError
from db.queries import student_rows
from db.rollups import ROLLUP_SECONDS
from db.school_reads import (
    RunningSession,
    class_lines,
    latest_counts,
    running_sessions,
    session_totals,
    sessions_between,
)

TREND_SECONDS = 5 * 60  # the trend line of a running class
# A session without an end whose last frame is older than this is not running: its capture was killed.
SILENCE = timedelta(minutes=10)
NOW_SECONDS = 60  # "engagement now": the class score over the last minute
# The flag counter's share of a core at most (it sleeps after each count for as long as that keeps it): the
# school server's ingest runs in the same process and must keep up with every classroom first.
COUNTER_SHARE = 0.5
COUNTER_NAP_S = 0.2  # the counter's wait when no count is due
# A counter ends once no refresh has asked for its counts this long (the school view is closed everywhere).
COUNTER_IDLE_S = 60.0
# A class's flags are counted again once its frames have gone this far past the last count: a count reads
# minutes of rows, and a flag takes 10 s to minutes to be raised (analytics/flags.py).
FLAG_EVERY = timedelta(seconds=30)
# What a trend is grouped by: the session's teacher, or its class (class_name).
Grouping = Literal["teacher", "class"]
# A date (and time) at the end of a session name: "maths-7b 2026-12-03", "maths-7b_20261203-0900".
_DATED = re.compile(r"[\s_-]*\d{4}-?\d{2}-?\d{2}(?:[\sT_-]*\d{1,2}[:h.]?\d{2})?\s*$")


@dataclass(frozen=True)
class ClassNow:
    """A running class as the school view shows it.

    scored_at: the latest frame its numbers are from, where in_call counts the students in the gallery and
    on_camera those whose face showed; line: the class engagement per roll-up bin (db.school_reads.class_lines)
    over the TREND_SECONDS up to scored_at; open_flags: the flags needing attention (not acknowledged, snoozed
    or muted) at flags_at; None before the first count.
    """

    session: RunningSession
    scored_at: datetime
    in_call: int
    on_camera: int
    line: pd.Series
    open_flags: int | None
    flags_at: datetime | None

    @property
    def engagement(self) -> float | None:
        """The mean class score of the bins of the NOW_SECONDS up to scored_at."""
        return _mean(self._scores[self._bins > pd.Timestamp(self.scored_at - _NOW).value])

    @property
    def change(self) -> float | None:
        """engagement now less the mean of the line's first NOW_SECONDS; None while the line is shorter than
        twice that."""
        if self.line.empty or self.line.index[-1] - self.line.index[0] < 2 * _NOW:
            return None
        now, first = self.engagement, _mean(self._scores[self._bins < self._bins[0] + pd.Timedelta(_NOW).value])
        return None if now is None or first is None else now - first

    # In numpy: a school view asks these of a hundred classes at every refresh, and pandas' masks cost 100 times more.
    @property
    def _bins(self) -> np.ndarray:
        return bin_starts_ns(self.line)

    @property
    def _scores(self) -> np.ndarray:
        return self.line.to_numpy(float)


_NOW = timedelta(seconds=NOW_SECONDS)
_NO_LINE = pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="bin"), dtype=float, name="score")


@dataclass(frozen=True)
class _Count:
    """A running class's flags as the counter last counted them."""

    latest: datetime  # the class's latest frame then
    open_flags: int


class SchoolBoard:
    """The running classes' lines and flag counts, kept between refreshes of every admin's school view (module
    docstring); one refresh's work at a time."""

    def __init__(self) -> None:
        self._refreshing = threading.Lock()
        self._counts: dict[tuple[str, int], _Count] = {}
        self._counters: dict[str, _Counter] = {}  # per database
        # Per running class, its line as the last refresh showed it (_lines).
        self._kept_lines: dict[tuple[str, int], pd.Series] = {}

    def refresh(self, engine: Engine) -> list[ClassNow]:
        """Every running class, the newest frame first, with the flag counts the counter has made so far (it is
        started here, and counts for as long as refreshes come)."""
        config = engagement_config()
        where = engine.url.render_as_string(hide_password=False)
        with self._refreshing:
            silent_since = datetime.now(UTC) - SILENCE
            running = {(where, session.id): session for session in running_sessions(engine, silent_since)}
            for kept in (self._counts, self._kept_lines):
                for gone in [key for key in kept if key[0] == where and key not in running]:
                    del kept[gone]
            counter = self._counters.get(where)
            if counter is None or not counter.alive:
                counter = self._counters[where] = _Counter(where, config)
            counter.ask(list(running.values()))
            for session_id, count in counter.counted():
                if (where, session_id) in running:
                    self._counts[where, session_id] = count
            lines = self._lines(engine, where, list(running.values()), config.score.weights)
            counts = latest_counts(engine, {session.id: session.latest_frame for session in running.values()})
            return [
                self._shown(key, session, lines.get(session.id, _NO_LINE), counts.get(session.id, (0, 0)))
                for key, session in running.items()
            ]

    def counter_pid(self, engine: Engine) -> int | None:
        """The process id of `engine`'s flag counter while it runs (a benchmark counts its CPU)."""
        counter = self._counters.get(engine.url.render_as_string(hide_password=False))
        return counter.pid if counter is not None and counter.alive else None

    def _lines(
        self, engine: Engine, where: str, running: list[RunningSession], weights: Weights
    ) -> dict[int, pd.Series]:
        """Each class's line: its bins from the first whole one of the TREND_SECONDS up to its latest frame. A
        class's bins before the last one kept from the previous refresh were complete then and are kept; only
        its bins from that one on are read (a class's frames come in order), so a refresh reads a few bins per
        class, not the TREND_SECONDS' (a merge's recount, db.rollups.rebuild, reaches kept bins as they leave
        the line)."""
        if not running:
            return {}
        kept = {session.id: self._kept_lines.get((where, session.id), _NO_LINE) for session in running}
        read_from = {
            session.id: (kept[session.id].index[-1] if len(kept[session.id]) else _line_start(session.latest_frame))
            for session in running
        }
        table = class_lines(engine, {session: at.to_pydatetime() for session, at in read_from.items()}, weights)
        # In numpy, the rows in order of session and bin: pandas' per-class steps cost a hundred classes more
        # than the read.
        ids, bins, scores = table["session_id"].to_numpy(), _ns(table["bin"]), table["score"].to_numpy(float)
        lines: dict[int, pd.Series] = {}
        for session in running:
            old = kept[session.id]
            old_bins, old_scores = bin_starts_ns(old), old.to_numpy(float)
            earlier = old_bins < read_from[session.id].value
            rows = slice(*np.searchsorted(ids, [session.id, session.id + 1]))
            line_bins = np.concatenate([old_bins[earlier], bins[rows]])
            shown = line_bins >= _line_start(session.latest_frame).value
            line = pd.Series(
                np.concatenate([old_scores[earlier], scores[rows]])[shown],
                index=pd.DatetimeIndex(line_bins[shown].view("datetime64[ns]"), name="bin").tz_localize("UTC"),
                name="score",
            )
            self._kept_lines[where, session.id] = lines[session.id] = line
        return lines

    def _shown(
        self, key: tuple[str, int], session: RunningSession, line: pd.Series, counts: tuple[int, int]
    ) -> ClassNow:
        counted = self._counts.get(key)
        return ClassNow(
            session,
            session.latest_frame,
            counts[0],
            counts[1],
            line,
            None if counted is None else counted.open_flags,
            None if counted is None else counted.latest,
        )


class _Counter:
    """The flag counter of one database, in a process of its own (spawned: the server's process has threads),
    so that its pandas work never holds the interpreter that serves the pages and the ingest: the refreshes
    send it the running classes and collect its counts."""

    def __init__(self, where: str, config: EngagementConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self._asks: multiprocessing.Queue[list[RunningSession]] = context.Queue()
        self._counts: multiprocessing.Queue[tuple[int, _Count]] = context.Queue()
        self._process = context.Process(
            target=count_flags, args=(where, config, self._asks, self._counts), name="school-flag-counter", daemon=True
        )
        self._process.start()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def ask(self, running: list[RunningSession]) -> None:
        self._asks.put(running)

    def counted(self) -> list[tuple[int, _Count]]:
        """The counts made since the last call: (session id, count)."""
        made = []
        with contextlib.suppress(queue.Empty):
            while True:
                made.append(self._counts.get_nowait())
        return made


@dataclass(frozen=True)
class _Flags:
    counted_at: float  # time.monotonic()
    latest: datetime  # the class's latest frame then
    flags: list[Flag]


def count_flags(
    where: str,
    config: EngagementConfig,
    asks: multiprocessing.Queue[list[RunningSession]],
    counts: multiprocessing.Queue[tuple[int, _Count]],
) -> None:
    """The counter process's work (_Counter): counts the running classes' flags (the newest list a refresh sent),
    the longest waiting first, each once FLAG_EVERY of its frames have come, using at most COUNTER_SHARE of a
    core, and sends each count back; ends when no refresh has asked for COUNTER_IDLE_S (or on an error of its
    own, which the process reports: the next refresh starts another)."""
    engine = connect(where, create=False)
    running: dict[int, RunningSession] = {}
    flags: dict[int, _Flags] = {}
    recent: dict[int, RecentRows] = {}  # per running class, its last two flag spans of scored rows
    asked = time.monotonic()
    due: list[int] = []
    while time.monotonic() - asked <= COUNTER_IDLE_S:
        if (newest := _newest(asks, wait=0.0 if due else COUNTER_NAP_S)) is not None:
            running, asked = {session.id: session for session in newest}, time.monotonic()
            for kept in (flags, recent):
                for gone in [session_id for session_id in kept if session_id not in running]:
                    del kept[gone]
        due = _due(running, flags)
        if not due:
            continue
        session = running[due[0]]
        counted = flags.get(session.id)
        began = time.perf_counter()
        try:
            held = _held_rows(engine, session, config, recent.setdefault(session.id, RecentRows(sessions=1)))
            board = flag_board(engine, session.id, config, [] if counted is None else counted.flags, held)
        except DatabaseError:
            time.sleep(COUNTER_NAP_S)  # the database is down: the next refresh says so
            continue
        flags[session.id] = _Flags(time.monotonic(), session.latest_frame, [shown.flag for shown in board])
        counts.put((session.id, _Count(session.latest_frame, sum(shown.needs_attention for shown in board))))
        time.sleep((time.perf_counter() - began) * (1 / COUNTER_SHARE - 1))
    engine.dispose()


def _newest(asks: multiprocessing.Queue[list[RunningSession]], wait: float) -> list[RunningSession] | None:
    """The last of the lists the refreshes sent, waiting up to `wait` for one; None: none came."""
    newest = None
    with contextlib.suppress(queue.Empty):
        newest = asks.get(timeout=wait) if wait > 0 else asks.get_nowait()
        while True:
            newest = asks.get_nowait()
    return newest


def _due(running: dict[int, RunningSession], flags: dict[int, _Flags]) -> list[int]:
    """The classes whose flags are due a count (never counted, or FLAG_EVERY of new frames), longest waiting
    first."""
    waiting: list[tuple[float, int]] = []
    for session_id, session in running.items():
        done = flags.get(session_id)
        if done is None:
            waiting.append((float("-inf"), session_id))
        elif session.latest_frame - done.latest >= FLAG_EVERY:
            waiting.append((done.counted_at, session_id))
    return [session_id for _, session_id in sorted(waiting, key=lambda due: due[0])]


def _held_rows(
    engine: Engine, session: RunningSession, config: EngagementConfig, recent: RecentRows
) -> HeldRows | None:
    """The last two flag spans of the session's scored rows, from what `recent` keeps of it: only the frames
    written since its last count are read and scored (as the live page's pass does), where flag_board alone
    reads and scores the whole two spans (12 min of rows) at every count."""
    people = student_rows(engine, session.id)
    since = session.latest_frame - 2 * flag_span(config)
    frames, signals = recent.read(engine, session.id, config.score, since, people)
    return HeldRows(since, frames, signals, people) if len(frames) else None


def bin_starts_ns(line: pd.Series) -> np.ndarray:
    """A line's bins' starts in ns since the epoch (UTC)."""
    return _ns(line.index)


def _ns(times: pd.Index | pd.Series) -> np.ndarray:
    return np.asarray(times, dtype="datetime64[ns]").view("int64")


def _line_start(latest: datetime) -> pd.Timestamp:
    """The first bin of a trend line ending at `latest`: the first whole bin of the TREND_SECONDS before it."""
    return pd.Timestamp(latest - timedelta(seconds=TREND_SECONDS)).ceil(f"{ROLLUP_SECONDS}s")


SCHOOL_BOARD = SchoolBoard()


def class_name(session_name: str) -> str:
    """The class a session is of, until sessions have a class of their own: its name less a date (and time) at
    its end ("maths-7b 2026-12-03" → "maths-7b"); a name that is only a date stays whole."""
    stripped = _DATED.sub("", session_name)
    return stripped or session_name


class SessionTotals:
    """db.school_reads.session_totals, kept for ended sessions (their rows no longer change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, int, datetime], pd.Series] = {}

    def read(self, engine: Engine, listed: pd.DataFrame) -> pd.DataFrame:
        """session_totals of the sessions of `listed` (db.school_reads.sessions_between), indexed by session_id."""
        where = engine.url.render_as_string(hide_password=False)
        ended = listed[listed["ended_at"].notna()]
        keys: dict[int, tuple[str, int, datetime]] = {
            int(session): (where, int(session), pd.Timestamp(at).to_pydatetime())
            for session, at in zip(ended["id"], ended["ended_at"], strict=True)
        }
        with self._lock:
            kept = {session: self._kept[key] for session, key in keys.items() if key in self._kept}
        missing = [int(session) for session in listed["id"] if int(session) not in kept]
        fresh = session_totals(engine, missing).set_index("session_id")
        with self._lock:
            for session in fresh.index:
                if int(session) in keys:
                    self._kept[keys[int(session)]] = fresh.loc[session]
        return pd.concat([fresh, pd.DataFrame(list(kept.values()), index=pd.Index(list(kept), name="session_id"))])


SESSION_TOTALS = SessionTotals()


def session_trends(engine: Engine, since: datetime, until: datetime) -> pd.DataFrame:
    """One row per session started in [since, until): session, class (class_name without one), teacher,
    started_at, week (its Monday, UTC), engagement (the stored average; NaN where none is stored), attendance
    (students in the call per frame, on average), camera_off (share of those student-frames with the camera
    off), frames, rows, camera_off_rows."""
    listed = sessions_between(engine, since, until)
    totals = SESSION_TOTALS.read(engine, listed).reindex(listed["id"]).reset_index(drop=True)
    frames = totals["frames"].astype("int64")
    rows = totals["rows"].astype("int64")
    started = listed["started_at"]
    return pd.DataFrame(
        {
            "session": listed["name"],
            "class": listed["class"].fillna(listed["name"].map(class_name)),
            "teacher": listed["teacher"],
            "started_at": started,
            "week": (started.dt.tz_convert("UTC").dt.normalize() - pd.to_timedelta(started.dt.weekday, unit="D")),
            "engagement": listed["mean_engagement"],
            "attendance": rows / frames.where(frames > 0),
            "camera_off": totals["camera_off_rows"] / rows.where(rows > 0),
            "frames": frames,
            "rows": rows,
            "camera_off_rows": totals["camera_off_rows"].astype("int64"),
        }
    )


def trends(per_session: pd.DataFrame, by: Grouping) -> pd.DataFrame:
    """session_trends grouped per week and teacher (or class and its teacher), newest week first: week, teacher
    (or class, teacher), sessions, scored (sessions with a stored engagement), engagement (their mean),
    attendance (students in the call per frame over all the sessions' frames), camera_off (share of all their
    student-frames)."""
    keys = grouping_columns(by)
    columns = ["week", *keys, "sessions", "scored", "engagement", "attendance", "camera_off"]
    if per_session.empty:
        return pd.DataFrame(columns=columns)
    keyed = per_session.assign(teacher=per_session["teacher"].fillna("(no teacher)"))
    grouped = keyed.groupby(["week", *keys], sort=True).agg(
        sessions=("session", "count"),
        scored=("engagement", "count"),
        engagement=("engagement", "mean"),
        frames=("frames", "sum"),
        rows=("rows", "sum"),
        camera_off_rows=("camera_off_rows", "sum"),
    )
    grouped["attendance"] = grouped["rows"] / grouped["frames"].where(grouped["frames"] > 0)
    grouped["camera_off"] = grouped["camera_off_rows"] / grouped["rows"].where(grouped["rows"] > 0)
    table = grouped.reset_index()[columns]
    return table.sort_values(["week", *keys], ascending=[False, *(True for _ in keys)], ignore_index=True)


def grouping_columns(by: Grouping) -> list[str]:
    """The columns a trend per `by` is grouped by, after the week."""
    return ["class", "teacher"] if by == "class" else ["teacher"]


def trends_file(table: pd.DataFrame) -> pd.DataFrame:
    """trends as the CSV download holds it: the week as its ISO date."""
    return table.assign(week=pd.to_datetime(table["week"]).dt.strftime("%Y-%m-%d"))


def _mean(values: np.ndarray) -> float | None:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if len(kept) else None
