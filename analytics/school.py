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
judged over minutes of a class's rows, so a counter thread beside the view (one per database, started by the
first refresh, ended when refreshes stop) counts each running class's once FLAG_EVERY of its frames have come,
the longest waiting first (a class never counted first), at most COUNTER_SHARE of a core; each class says which
frame its flag count is from. It keeps each running class's last two flag spans of scored rows
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
class _Flags:
    counted_at: float  # time.monotonic()
    latest: datetime  # the class's latest frame then
    flags: list[Flag]
    open_flags: int


class SchoolBoard:
    """The running classes' flag counts, kept between refreshes of every admin's school view (module docstring)."""

    def __init__(self) -> None:
        # One refresh at a time; and, apart, the state the refreshes and the counters share.
        self._refreshing = threading.Lock()
        self._lock = threading.Lock()
        self._flags: dict[tuple[str, int], _Flags] = {}
        self._running: dict[tuple[str, int], RunningSession] = {}
        self._asked: dict[str, float] = {}  # per database: when a refresh last asked for its counts
        # Per running class, the counter's kept rows (analytics.live.RecentRows, one class each, dropped with it).
        self._recent: dict[tuple[str, int], RecentRows] = {}
        self._counters: dict[str, threading.Thread] = {}
        # Per running class, its line as the last refresh showed it (_lines; only refreshes use it).
        self._kept_lines: dict[tuple[str, int], pd.Series] = {}

    def refresh(self, engine: Engine) -> list[ClassNow]:
        """Every running class, the newest frame first, with the flag counts the counter has made so far (it is
        started here, and counts for as long as refreshes come); one refresh's work at a time."""
        config = engagement_config()
        where = engine.url.render_as_string(hide_password=False)
        with self._refreshing:
            silent_since = datetime.now(UTC) - SILENCE
            running = {(where, session.id): session for session in running_sessions(engine, silent_since)}
            with self._lock:
                for gone in [key for key in self._running if key[0] == where and key not in running]:
                    del self._running[gone]
                    self._flags.pop(gone, None)
                    self._recent.pop(gone, None)
                    self._kept_lines.pop(gone, None)
                self._running.update(running)
                self._asked[where] = time.monotonic()
                if where not in self._counters:
                    counter = threading.Thread(
                        target=self._count, args=(engine, where), name="school-flag-counter", daemon=True
                    )
                    self._counters[where] = counter
                    counter.start()
            lines = self._lines(engine, where, list(running.values()), config.score.weights)
            counts = latest_counts(engine, {session.id: session.latest_frame for session in running.values()})
            with self._lock:
                return [
                    self._shown(key, session, lines.get(session.id, _NO_LINE), counts.get(session.id, (0, 0)))
                    for key, session in running.items()
                ]

    def _count(self, engine: Engine, where: str) -> None:
        """The flag counter of one database: counts the running classes' flags, the longest waiting first, each
        once FLAG_EVERY of its frames have come, using at most COUNTER_SHARE of a core; ends when no refresh has
        asked for COUNTER_IDLE_S (or on an error of its own, which the thread reports: the next refresh starts
        another)."""
        try:
            self._count_while_asked(engine, where)
        finally:
            with self._lock:
                del self._counters[where]

    def _count_while_asked(self, engine: Engine, where: str) -> None:
        config = engagement_config()
        while True:
            with self._lock:
                if time.monotonic() - self._asked[where] > COUNTER_IDLE_S:
                    return
                due = self._due({key: session for key, session in self._running.items() if key[0] == where})
                session = self._running[due[0]] if due else None
                counted = self._flags.get(due[0]) if due else None
                recent = self._recent.setdefault(due[0], RecentRows(sessions=1)) if due else None
            if session is None or recent is None:
                time.sleep(COUNTER_NAP_S)
                continue
            began = time.perf_counter()
            try:
                held = _held_rows(engine, session, config, recent)
                board = flag_board(engine, session.id, config, [] if counted is None else counted.flags, held)
            except DatabaseError:
                time.sleep(COUNTER_NAP_S)  # the database is down: the next refresh says so
                continue
            flags = [shown.flag for shown in board]
            open_flags = sum(shown.needs_attention for shown in board)
            with self._lock:
                if (where, session.id) in self._running:
                    self._flags[where, session.id] = _Flags(time.monotonic(), session.latest_frame, flags, open_flags)
            time.sleep((time.perf_counter() - began) * (1 / COUNTER_SHARE - 1))

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

    def _due(self, running: dict[tuple[str, int], RunningSession]) -> list[tuple[str, int]]:
        """The classes whose flags are due a count (never counted, or FLAG_EVERY of new frames), longest waiting
        first."""
        waiting: list[tuple[float, tuple[str, int]]] = []
        for key, session in running.items():
            done = self._flags.get(key)
            if done is None:
                waiting.append((float("-inf"), key))
            elif session.latest_frame - done.latest >= FLAG_EVERY:
                waiting.append((done.counted_at, key))
        return [key for _, key in sorted(waiting, key=lambda due: due[0])]

    def _shown(
        self, key: tuple[str, int], session: RunningSession, line: pd.Series, counts: tuple[int, int]
    ) -> ClassNow:
        counted = self._flags.get(key)
        return ClassNow(
            session,
            session.latest_frame,
            counts[0],
            counts[1],
            line,
            None if counted is None else counted.open_flags,
            None if counted is None else counted.latest,
        )


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
