"""The live class's tables, kept up to date one refresh at a time: emotion counts per bin, the class
engagement line, each student's current score and the flags on.

Each refresh reads only the rows newer than the last one seen (less the "now" window, which the mood panel
needs again), so its cost follows the rows added since the previous refresh, not the session's length; the
first refresh has the database count the shown window. The caller keeps a LiveState between refreshes (the
dashboard keeps it in the browser, as JSON): emotion counts per time bin, trimmed to the shown window, never
raw rows.

Engagement and flags (analytics.engagement, analytics.flags) need the longest flag rule's span of history
(`lookback_seconds`, a few minutes of rows, ~20 000 for 50 students), which costs more than one refresh may,
so `rescore` recomputes them once per new time bin (every 5th refresh at 2 s) and the state keeps them in
between. The rows of that span are kept in memory per session (RecentRows): a pass reads only the frames
written since the last one (reading the span was most of a pass's cost). A pass replaces the kept class
engagement line from the previous pass's bin on; earlier bins were complete then. The flags come from
analytics.live_flags.current_flags, which reads further back for a flag that began before the lookback, so
"since when" is when the condition began in the data, the same after a reload; the previous pass's flags
spare it those reads for flags still on. The kept rows reach back two flag spans (analytics.live_flags.flag_span),
so current_flags takes its first read from them rather than from the database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from analytics.engagement import class_bins, frame_signals, student_bins
from analytics.flags import Flag, history_seconds
from analytics.live_flags import HeldRows, current_flags, flag_span
from analytics.settings import EngagementConfig, load_config
from analytics.timeline import (
    NOW_SECONDS,
    MoodNow,
    counts_since,
    emotion_counts,
    merge_counts,
    mood_now,
    student_states,
)
from db.queries import emotion_tally, engagement_rows, latest_frame_time, observation_rows, student_rows
from vocabulary.emotions import EMOTIONS

SPARKLINE_SECONDS = 5 * 60
ATTENTIVE = "attentive"  # LiveState.states: a face, turned to the screen
# Sessions whose recent rows RecentRows keeps: a school server shows a few classes at once.
KEPT_SESSIONS = 8


@dataclass(frozen=True)
class LiveState:
    """What the caller keeps between refreshes (JSON-safe through to_json / from_json).

    window_s: seconds of history kept and shown; None keeps the whole session.
    last_seen: every observation up to this time is counted; None before the first read.
    counts: the class's emotion_counts per bin; student_counts: the same per student, last SPARKLINE_SECONDS only.
    engagement: the class engagement score per bin (index bin, UTC), over the shown window;
    scores: each student's engagement over the NOW_SECONDS before scored_at, by student key;
    states: each student's state at scored_at, by student key: ATTENTIVE, or else their presence there
    (analytics.engagement: "face" for a face not attentive, "camera_off", "empty", "absent");
    flags: the flags on at scored_at, the last frame these four were computed at (None: not yet).
    """

    session_id: int
    window_s: int | None
    last_seen: datetime | None
    counts: pd.DataFrame
    student_counts: pd.DataFrame
    engagement: pd.Series
    scores: dict[str, float]
    states: dict[str, str]
    flags: list[Flag]
    scored_at: datetime | None

    @classmethod
    def start(cls, session_id: int, window_s: int | None) -> LiveState:
        return cls(
            session_id,
            window_s,
            None,
            emotion_counts(_NO_ROWS),
            emotion_counts(_NO_ROWS, by=("student",)),
            _NO_ENGAGEMENT,
            {},
            {},
            [],
            None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "window_s": self.window_s,
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
            "counts": _counts_to_json(self.counts),
            "student_counts": _counts_to_json(self.student_counts),
            "engagement": {
                "bin": _epoch_seconds(self.engagement.index),
                "score": self.engagement.tolist(),
            },
            "scores": self.scores,
            "states": self.states,
            "flags": [_flag_to_json(flag) for flag in self.flags],
            "scored_at": None if self.scored_at is None else self.scored_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveState:
        last_seen = data["last_seen"]
        return cls(
            session_id=int(data["session_id"]),
            window_s=data["window_s"],
            last_seen=None if last_seen is None else datetime.fromisoformat(last_seen),
            counts=_counts_from_json(data["counts"], ()),
            student_counts=_counts_from_json(data["student_counts"], ("student",)),
            engagement=_engagement_from_json(data["engagement"]),
            scores=data["scores"],
            states=data["states"],
            flags=[_flag_from_json(flag) for flag in data["flags"]],
            scored_at=None if data["scored_at"] is None else datetime.fromisoformat(data["scored_at"]),
        )


@dataclass(frozen=True)
class LiveView:
    """One refresh's result: the state to keep and the tables the page shows."""

    state: LiveState
    latest_frame: datetime | None  # the newest frame written, with or without faces
    mood: MoodNow
    students: pd.DataFrame  # analytics.timeline.student_states


@cache
def engagement_config() -> EngagementConfig:
    """analytics/engagement.toml, read once per process."""
    return load_config()


def lookback_seconds(config: EngagementConfig) -> float:
    """The signal history one pass scores: enough for every flag rule to see its whole span, plus a bin."""
    return history_seconds(config.flags) + config.score.bin_seconds


def refresh(engine: Engine, state: LiveState) -> LiveView:
    """Read what arrived since `state` and return the updated state with the page's new tables."""
    latest_frame = latest_frame_time(engine, state.session_id)
    if state.last_seen is None:
        rows, counts = _first_read(engine, state, latest_frame)
        new_rows, last_seen = rows, latest_frame
    else:
        # Rows not yet counted, plus the last NOW_SECONDS that the mood panel and student cards look at.
        since = state.last_seen - timedelta(seconds=NOW_SECONDS)
        rows = observation_rows(engine, state.session_id, since=since)
        new_rows = rows[rows["ts"] > pd.Timestamp(state.last_seen)]
        counts = merge_counts(state.counts, emotion_counts(new_rows))
        last_seen = new_rows["ts"].max().to_pydatetime() if len(new_rows) else state.last_seen
    latest = latest_frame or state.last_seen
    student_counts = merge_counts(state.student_counts, emotion_counts(new_rows, by=("student",)))
    if latest is not None:
        if state.window_s is not None:
            counts = counts_since(counts, latest - timedelta(seconds=state.window_s))
        student_counts = counts_since(student_counts, latest - timedelta(seconds=SPARKLINE_SECONDS))
    now = latest or datetime.now().astimezone()
    scored = rescore(engine, state, latest_frame)
    engagement = scored.engagement
    if latest is not None and state.window_s is not None:
        engagement = engagement[engagement.index > pd.Timestamp(latest - timedelta(seconds=state.window_s))]
    updated = replace(scored, last_seen=last_seen, counts=counts, student_counts=student_counts, engagement=engagement)
    return LiveView(
        state=updated,
        latest_frame=latest_frame,
        mood=mood_now(rows, now),
        students=student_states(student_rows(engine, state.session_id), rows, now),
    )


def rescore(engine: Engine, state: LiveState, latest_frame: datetime | None) -> LiveState:
    """The incremental scorer: `state` with the class engagement line, each student's current score and
    state, the flags on, and the frame they were computed at, recomputed from the last lookback_seconds of
    rows when a new bin has begun since `state`'s pass; else `state` as it is (module docstring)."""
    config = engagement_config()
    bin_width = f"{config.score.bin_seconds}s"
    if latest_frame is None or (
        state.scored_at is not None
        and pd.Timestamp(latest_frame).floor(bin_width) <= pd.Timestamp(state.scored_at).floor(bin_width)
    ):
        return state
    history = timedelta(seconds=lookback_seconds(config))
    if state.scored_at is not None:
        since = state.scored_at - history
    else:
        since = None if state.window_s is None else latest_frame - max(timedelta(seconds=state.window_s), history)
    # Kept from far enough back for current_flags' first read too, which then reads no rows of its own.
    kept_since = None if since is None else min(since, latest_frame - 2 * flag_span(config))
    kept_rows, kept_frames = RECENT_ROWS.read(engine, state.session_id, config.score.negative_emotions, kept_since)
    rows, frames = kept_rows, kept_frames
    if since is not None and kept_since is not None and kept_since < since:
        start = pd.Timestamp(since)
        rows = rows[rows["ts"] > start].reset_index(drop=True)
        frames = frames[frames["ts"] > start].reset_index(drop=True)
    if rows.empty:
        return state
    signals = frame_signals(rows, frames, config.score)
    line = class_bins(student_bins(signals, config.score.bin_seconds)).set_index("bin")["score"].astype(float)
    if state.scored_at is not None:
        # Bins before the one the previous pass ended in were complete then; this read's first bins are partial.
        first_new = pd.Timestamp(state.scored_at).floor(bin_width)
        line = pd.concat([state.engagement[state.engagement.index < first_new], line[line.index >= first_new]])
    recent = signals[signals["ts"] > pd.Timestamp(latest_frame - timedelta(seconds=NOW_SECONDS))]
    scores = {str(key): float(score) for key, score in recent.groupby("student")["score"].mean().items()}
    last = signals[signals["frame"] == signals["frame"].max()]
    states = dict(zip(last["student"].astype(str), last["presence"].where(~last["attentive"], ATTENTIVE), strict=True))
    flags = current_flags(
        engine, state.session_id, config, known=state.flags, recent=HeldRows(kept_since, kept_rows, kept_frames)
    )
    return replace(
        state, engagement=line.rename("score"), scores=scores, states=states, flags=flags, scored_at=latest_frame
    )


class RecentRows:
    """db.queries.engagement_rows of each session's last scoring span, kept between passes so that the next
    pass reads only the frames written since (a frame and its rows are committed together, so none is
    half-read). The students' names are looked up again at each pass, as a fresh read would give them; a
    session whose students or frame numbers no longer match what was kept (a merge, a purge, another
    session under a reused id) is read afresh, as is a span reaching further back than the kept one."""

    def __init__(self, sessions: int = KEPT_SESSIONS) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int], tuple[datetime | None, pd.DataFrame, pd.DataFrame]] = OrderedDict()

    def read(
        self, engine: Engine, session_id: int, negative_emotions: tuple[str, ...], since: datetime | None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """engagement_rows(engine, session_id, negative_emotions, since)'s rows and frames."""
        key = (engine.url.render_as_string(hide_password=False), session_id)
        with self._lock:
            kept = self._kept.get(key)
        found = None
        if kept is not None and kept[2].size and (kept[0] is None or (since is not None and kept[0] <= since)):
            found = self._continued(engine, session_id, negative_emotions, kept[1], kept[2])
        rows, frames = found or engagement_rows(engine, session_id, negative_emotions, since=since)
        if since is not None:
            start = pd.Timestamp(since)
            rows = rows[rows["ts"] > start].reset_index(drop=True)
            frames = frames[frames["ts"] > start].reset_index(drop=True)
        with self._lock:
            self._kept[key] = (since, rows, frames)
            self._kept.move_to_end(key)
            while len(self._kept) > self._sessions:
                self._kept.popitem(last=False)
        return rows, frames

    def forget(self) -> None:
        """Drop every kept span (the benchmark times passes that read afresh)."""
        with self._lock:
            self._kept.clear()

    @staticmethod
    def _continued(
        engine: Engine, session_id: int, negative_emotions: tuple[str, ...], rows: pd.DataFrame, frames: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The kept rows and frames with those written since; None when they no longer fit the session."""
        people = student_rows(engine, session_id).set_index("student_id")
        last = frames.iloc[-1]
        new_rows, new_frames = engagement_rows(engine, session_id, negative_emotions, since=last["ts"].to_pydatetime())
        if not rows["student_id"].isin(people.index).all() or (
            len(new_frames) and new_frames["frame"].iat[0] <= last["frame"]
        ):
            return None
        rows, frames = _appended(rows, new_rows), _appended(frames, new_frames)
        names = rows["student_id"].map(people["name"])
        return rows.assign(name=names.where(names.notna(), None).astype(object)), frames


def _appended(kept: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`new` under `kept`, column by column: pd.concat of whole frames checks every value of a column that is
    all missing (a class without names), which cost more than reading the new rows."""
    if new.empty:
        return kept
    return pd.DataFrame({column: pd.concat([kept[column], new[column]], ignore_index=True) for column in kept.columns})


RECENT_ROWS = RecentRows()


def _first_read(engine: Engine, state: LiveState, latest_frame: datetime | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of the last SPARKLINE_SECONDS, and the class's emotion counts over the shown window.

    The window (the whole session when asked for) is counted in the database, so opening the page on a
    long class reads a few rows per frame, not one per face; only the sparklines' minutes come row by row.
    Both stop at `latest_frame`: a frame's rows are committed with it, so every row up to it is counted.
    """
    if latest_frame is None:
        return _NO_ROWS, emotion_counts(_NO_ROWS)
    since = None if state.window_s is None else latest_frame - timedelta(seconds=state.window_s)
    tally = emotion_tally(engine, state.session_id, since=since, until=latest_frame)
    rows = observation_rows(engine, state.session_id, since=latest_frame - timedelta(seconds=SPARKLINE_SECONDS))
    return rows[rows["ts"] <= pd.Timestamp(latest_frame)], emotion_counts(tally)


def _flag_to_json(flag: Flag) -> dict[str, Any]:
    return {
        "student": flag.student,
        "name": flag.name,
        "rule": flag.rule,
        "reason": flag.reason,
        "start": flag.start.isoformat(),
        "raised": flag.raised.isoformat(),
    }


def _flag_from_json(data: dict[str, Any]) -> Flag:
    """An active flag (end None: the state keeps only those)."""
    times = {key: pd.Timestamp(data[key]) for key in ("start", "raised")}
    return Flag(data["student"], data["name"], data["rule"], data["reason"], end=None, **times)


def _engagement_from_json(data: dict[str, list[Any]]) -> pd.Series:
    if not data["bin"]:
        return _NO_ENGAGEMENT
    bins = pd.DatetimeIndex(pd.to_datetime(data["bin"], unit="s", utc=True), name="bin")
    return pd.Series(data["score"], index=bins, dtype=float, name="score")


def _counts_to_json(counts: pd.DataFrame) -> dict[str, list[Any]]:
    """Column lists, bins as epoch seconds: compact, and exact for 10 s bins."""
    table = counts.reset_index()
    table["bin"] = _epoch_seconds(pd.DatetimeIndex(table["bin"]))
    return {str(column): table[column].tolist() for column in table.columns}


def _epoch_seconds(times: pd.DatetimeIndex) -> list[int]:
    # Whole arrays: one Timestamp object per bin cost more than the rest of the state's JSON.
    return times.as_unit("s").asi8.tolist()


def _counts_from_json(data: dict[str, list[Any]], by: tuple[str, ...]) -> pd.DataFrame:
    if not data.get("bin"):
        return emotion_counts(_NO_ROWS, by=by)
    table = pd.DataFrame(data)
    table["bin"] = pd.to_datetime(table["bin"], unit="s", utc=True)
    return table.set_index([*by, "bin"])[list(EMOTIONS)].astype("int64")


_NO_ROWS = pd.DataFrame(
    {
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
        "student": pd.Series([], dtype=object),
        "emotion": pd.Series([], dtype="int64"),
    }
)
_NO_ENGAGEMENT = pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="bin"), dtype=float, name="score")
