"""The admin's school view: every class running now, and trends across sessions per teacher or class over weeks.

A running class is scored exactly as its teacher's live page and its report score it (analytics.engagement):
its class engagement per time bin over the last TREND_SECONDS. A bin is complete once a frame of a later bin
is written (frames come in order), and later frames never change it, so each class keeps its complete bins
and a scoring pass scores only the rest: the rows from the first incomplete bin on, read by the (session_id,
ts) index (db.queries.engagement_rows) from emotion_window_seconds earlier, so that the smoothing of their
expressions is complete and their bins are the report's. Its flags (analytics.live_flags.flag_board) need
minutes of rows: they are counted every FLAG_EVERY of the class's frames, with its last flags, so that flags
still on need no reads back.

Each pass costs tens of milliseconds of pandas however few its rows, too much for every class of a school at
every refresh, so a refresh does the passes that waited longest (a class never scored or counted first) until
REFRESH_BUDGET_S is spent, at least one: a refresh stays bounded however many classes run, and each class
says which frame its numbers and its flag count are from. With many classes those lag; per-session roll-ups
kept as frames arrive would end that, and are not built yet (docs/scaling.md).

Trends read one row per session: its stored average engagement (db.schema.SessionRecord.mean_engagement, kept
when a session ends) and its counts (db.school_reads.session_totals), which an ended session keeps in memory
here. A session without a stored average counts in the others' columns, not in the engagement's.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd
from sqlalchemy import Engine

from analytics.engagement import class_bins, frame_signals, student_bins
from analytics.flags import Flag
from analytics.live import engagement_config
from analytics.live_flags import flag_board
from analytics.settings import EngagementConfig
from db.queries import engagement_rows
from db.school_reads import RunningSession, running_sessions, session_totals, sessions_between
from vocabulary.records import Presence

TREND_SECONDS = 5 * 60  # the trend line of a running class
# A session without an end whose last frame is older than this is not running: its capture was killed.
SILENCE = timedelta(minutes=10)
NOW_SECONDS = 60  # "engagement now": the class score over the last minute
REFRESH_BUDGET_S = 0.3  # wall time a refresh may spend on scoring passes and flag counts, after its first
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

    scored_at: the latest frame of its last scoring pass (None: not scored yet), where in_call counts the
    students in the gallery and on_camera those whose face showed; line: the class engagement per time bin
    (analytics.engagement.class_bins) over the TREND_SECONDS up to scored_at; open_flags: the flags needing
    attention (not acknowledged, snoozed or muted) at flags_at; None before the first count.
    """

    session: RunningSession
    scored_at: datetime | None
    in_call: int
    on_camera: int
    line: pd.Series
    open_flags: int | None
    flags_at: datetime | None

    @property
    def engagement(self) -> float | None:
        """The mean class score of the bins of the NOW_SECONDS up to scored_at."""
        if self.scored_at is None:
            return None
        return _mean(self.line[self.line.index > pd.Timestamp(self.scored_at - _NOW)])

    @property
    def change(self) -> float | None:
        """engagement now less the mean of the line's first NOW_SECONDS; None while the line is shorter than
        twice that."""
        if self.line.empty or self.line.index[-1] - self.line.index[0] < 2 * _NOW:
            return None
        now, first = self.engagement, _mean(self.line[self.line.index < self.line.index[0] + _NOW])
        return None if now is None or first is None else now - first


_NOW = timedelta(seconds=NOW_SECONDS)
_NO_LINE = pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="bin"), dtype=float, name="score")


@dataclass(frozen=True)
class _Scored:
    """A class's last scoring: the frame it reached, the students at it, and its line (complete bins and the
    one in progress)."""

    latest: datetime
    in_call: int
    on_camera: int
    line: pd.Series
    done_at: float = 0.0  # time.monotonic() of the pass


@dataclass(frozen=True)
class _Flags:
    counted_at: float  # time.monotonic()
    latest: datetime  # the class's latest frame then
    flags: list[Flag]
    open_flags: int


def class_now(
    engine: Engine, session: RunningSession, config: EngagementConfig, kept: _Scored | None = None
) -> _Scored:
    """ClassNow's in_call, on_camera and line for `session`, keeping the complete bins of `kept` (the class's
    last scoring) and scoring the rows of the others."""
    score = config.score
    width = f"{score.bin_seconds}s"
    start = pd.Timestamp(session.latest_frame - timedelta(seconds=TREND_SECONDS)).ceil(width)
    complete = _NO_LINE
    if kept is not None and kept.latest <= session.latest_frame:
        complete = kept.line[(kept.line.index >= start) & (kept.line.index < pd.Timestamp(kept.latest).floor(width))]
    first = start if complete.empty else complete.index[-1] + pd.Timedelta(width)
    since = first.to_pydatetime() - timedelta(seconds=score.emotion_window_seconds)
    rows, frames = engagement_rows(engine, session.id, score.negative_emotions, since=since)
    if rows.empty:
        return _Scored(session.latest_frame, 0, 0, complete)
    bins = class_bins(student_bins(frame_signals(rows, frames, score), score.bin_seconds))
    line = bins.set_index("bin")["score"].astype(float)
    last = rows[rows["frame"] == rows["frame"].max()]
    on_camera = int((last["presence"] == Presence.FACE.value).sum())
    whole = pd.concat([complete, line[line.index >= first]]) if not complete.empty else line[line.index >= first]
    return _Scored(session.latest_frame, len(last), on_camera, whole.rename("score"))


class SchoolBoard:
    """The running classes, kept between refreshes of every admin's school view (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scored: dict[tuple[str, int], _Scored] = {}
        self._flags: dict[tuple[str, int], _Flags] = {}

    def refresh(self, engine: Engine) -> list[ClassNow]:
        """Every running class, the newest frame first; one refresh's work at a time (another admin's refresh
        meanwhile waits, then finds the passes done)."""
        config = engagement_config()
        where = engine.url.render_as_string(hide_password=False)
        with self._lock:
            began = time.monotonic()
            silent_since = datetime.now(UTC) - SILENCE
            running = {(where, session.id): session for session in running_sessions(engine, silent_since)}
            for table in (self._scored, self._flags):
                for gone in [key for key in table if key[0] == where and key not in running]:
                    del table[gone]
            for done, (key, count) in enumerate(self._due(running)):
                if done and time.monotonic() - began > REFRESH_BUDGET_S:
                    break
                session = running[key]
                if count:
                    counted = self._flags.get(key)
                    board = flag_board(engine, session.id, config, [] if counted is None else counted.flags)
                    flags = [shown.flag for shown in board]
                    open_flags = sum(shown.needs_attention for shown in board)
                    self._flags[key] = _Flags(time.monotonic(), session.latest_frame, flags, open_flags)
                else:
                    scored = replace(
                        class_now(engine, session, config, self._scored.get(key)), done_at=time.monotonic()
                    )
                    self._scored[key] = scored
            return [self._shown(key, session) for key, session in running.items()]

    def _due(self, running: dict[tuple[str, int], RunningSession]) -> list[tuple[tuple[str, int], bool]]:
        """The passes a class's new frames call for, (class, whether it is a flag count), longest waiting
        first: scoring for any new frame, a flag count for FLAG_EVERY of them."""
        waiting: list[tuple[float, tuple[str, int], bool]] = []
        for key, session in running.items():
            for count, done in ((False, self._scored.get(key)), (True, self._flags.get(key))):
                if done is None:
                    waiting.append((float("-inf"), key, count))
                elif isinstance(done, _Scored) and done.latest != session.latest_frame:
                    waiting.append((done.done_at, key, count))
                elif isinstance(done, _Flags) and session.latest_frame - done.latest >= FLAG_EVERY:
                    waiting.append((done.counted_at, key, count))
        return [(key, count) for _, key, count in sorted(waiting, key=lambda due: due[0])]

    def _shown(self, key: tuple[str, int], session: RunningSession) -> ClassNow:
        scored, counted = self._scored.get(key), self._flags.get(key)
        return ClassNow(
            session,
            None if scored is None else scored.latest,
            0 if scored is None else scored.in_call,
            0 if scored is None else scored.on_camera,
            _NO_LINE if scored is None else scored.line,
            None if counted is None else counted.open_flags,
            None if counted is None else counted.latest,
        )


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
    """One row per session started in [since, until): session, class, teacher, started_at, week (its Monday,
    UTC), engagement (the stored average; NaN where none is stored), attendance (students in the call per frame,
    on average), camera_off (share of those student-frames with the camera off), frames, rows, camera_off_rows."""
    listed = sessions_between(engine, since, until)
    totals = SESSION_TOTALS.read(engine, listed).reindex(listed["id"]).reset_index(drop=True)
    frames = totals["frames"].astype("int64")
    rows = totals["rows"].astype("int64")
    started = listed["started_at"]
    return pd.DataFrame(
        {
            "session": listed["name"],
            "class": listed["name"].map(class_name),
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
    """session_trends grouped per week and teacher (or class), newest week first: week, teacher|class,
    sessions, scored (sessions with a stored engagement), engagement (their mean), attendance (students in
    the call per frame over all the sessions' frames), camera_off (share of all their student-frames)."""
    columns = ["week", by, "sessions", "scored", "engagement", "attendance", "camera_off"]
    if per_session.empty:
        return pd.DataFrame(columns=columns)
    keyed = per_session.assign(**{by: per_session[by].fillna("(no teacher)")})
    grouped = keyed.groupby(["week", by], sort=True).agg(
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
    return table.sort_values(["week", by], ascending=[False, True], ignore_index=True)


def trends_file(table: pd.DataFrame) -> pd.DataFrame:
    """trends as the CSV download holds it: the week as its ISO date."""
    return table.assign(week=pd.to_datetime(table["week"]).dt.strftime("%Y-%m-%d"))


def _mean(values: pd.Series) -> float | None:
    return None if values.empty or values.isna().all() else float(values.mean())
