"""The live page's incremental refresh: what the browser keeps between ticks, and one tick's reads.

Each tick reads only the rows newer than the last one seen (less the "now" window, which the mood panel
needs again), so its cost follows the rows added since the previous tick, not the session's length; the
first tick has the database count the shown window. The browser keeps emotion counts per time bin,
trimmed to the shown window, never raw rows.

Engagement and flags (analytics.engagement, analytics.flags) need the longest flag rule's span of history
(`lookback_seconds`, about 3 minutes of rows, ~10 000 for 50 students), which costs more than one tick
may, so they are recomputed once per new time bin (every 5th tick) and kept in between. A pass replaces
the kept class engagement line from the previous pass's bin on; earlier bins were complete then. A flag
on at the previous pass and still on keeps the start it had then, so one that began before the lookback
keeps its "since when"; on opening the page a flag older than the lookback shows the lookback's start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from analytics.engagement import class_bins, frame_signals, student_bins
from analytics.flags import Flag, session_flags
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
from db.queries import (
    acknowledged_flags,
    emotion_tally,
    engagement_rows,
    latest_frame_time,
    observation_rows,
    student_rows,
)
from vocabulary.emotions import EMOTIONS

DEFAULT_WINDOW_SECONDS = 15 * 60
SPARKLINE_SECONDS = 5 * 60


@dataclass(frozen=True)
class LiveState:
    """What the browser keeps between ticks (in a dcc.Store, as JSON).

    window_s: seconds of history kept and shown; None keeps the whole session.
    last_seen: every observation up to this time is counted; None before the first read.
    counts: the class's emotion_counts per bin; student_counts: the same per student, last SPARKLINE_SECONDS only.
    engagement: the class engagement score per bin (index bin, UTC), over the shown window;
    scores: each student's engagement over the NOW_SECONDS before scored_at, by student key;
    flags: the flags on at scored_at, the last frame these three were computed at (None: not yet).
    """

    session_id: int
    window_s: int | None
    last_seen: datetime | None
    counts: pd.DataFrame
    student_counts: pd.DataFrame
    engagement: pd.Series
    scores: dict[str, float]
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
                "bin": [int(moment.timestamp()) for moment in self.engagement.index],
                "score": self.engagement.tolist(),
            },
            "scores": self.scores,
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
            flags=[_flag_from_json(flag) for flag in data["flags"]],
            scored_at=None if data["scored_at"] is None else datetime.fromisoformat(data["scored_at"]),
        )


@dataclass(frozen=True)
class LiveView:
    """One tick's result: the state to keep and what the page shows."""

    state: LiveState
    latest_frame: datetime | None  # the newest frame written, with or without faces
    mood: MoodNow
    students: pd.DataFrame  # analytics.timeline.student_states
    acknowledged: set[str]  # flag_id of each acknowledged flag; the flags themselves are state.flags


def flag_id(student: str, rule: str, start: datetime) -> str:
    """What names one flag (analytics.flags.Flag) to the browser: student key, rule and start (ISO 8601 UTC)."""
    return f"{student}|{rule}|{pd.Timestamp(start).isoformat()}"


def parse_flag_id(text: str) -> tuple[str, str, datetime]:
    """flag_id's (student, rule, start); student keys may hold "|", rules and times do not."""
    student, rule, start = text.rsplit("|", 2)
    return student, rule, datetime.fromisoformat(start)


@cache
def engagement_config() -> EngagementConfig:
    """analytics/engagement.toml, read once per process."""
    return load_config()


def lookback_seconds(config: EngagementConfig) -> float:
    """The signal history one tick scores: enough for every flag rule to see its whole span, plus a bin."""
    flags = config.flags
    spans = (
        flags.absent_seconds,
        flags.looking_away_window_seconds,
        flags.eyes_closed_seconds,
        flags.negative_seconds,
        flags.drop_window_seconds + flags.baseline_seconds,
    )
    return max(spans) + config.score.bin_seconds


def refresh(engine: Engine, state: LiveState) -> LiveView:
    """Read what arrived since `state` and return the updated state with the page's new content."""
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
    engagement, scores, flags, scored_at = _engagement(engine, state, latest_frame)
    if latest is not None and state.window_s is not None:
        engagement = engagement[engagement.index > pd.Timestamp(latest - timedelta(seconds=state.window_s))]
    updated = LiveState(
        state.session_id, state.window_s, last_seen, counts, student_counts, engagement, scores, flags, scored_at
    )
    return LiveView(
        state=updated,
        latest_frame=latest_frame,
        mood=mood_now(rows, now),
        students=student_states(student_rows(engine, state.session_id), rows, now),
        acknowledged={flag_id(*flag) for flag in acknowledged_flags(engine, state.session_id)},
    )


def _engagement(
    engine: Engine, state: LiveState, latest_frame: datetime | None
) -> tuple[pd.Series, dict[str, float], list[Flag], datetime | None]:
    """The class engagement line, each student's current score, the flags on, and the frame they were
    computed at: recomputed when a new bin has begun since the last pass, else kept (module docstring)."""
    config = engagement_config()
    bin_width = f"{config.score.bin_seconds}s"
    kept = state.engagement, state.scores, state.flags, state.scored_at
    if latest_frame is None or (
        state.scored_at is not None
        and pd.Timestamp(latest_frame).floor(bin_width) <= pd.Timestamp(state.scored_at).floor(bin_width)
    ):
        return kept
    history = timedelta(seconds=lookback_seconds(config))
    if state.scored_at is not None:
        since = state.scored_at - history
    else:
        since = None if state.window_s is None else latest_frame - max(timedelta(seconds=state.window_s), history)
    rows, frames = engagement_rows(engine, state.session_id, config.score.negative_emotions, since=since)
    if rows.empty:
        return kept
    signals = frame_signals(rows, frames, config.score)
    line = class_bins(student_bins(signals, config.score.bin_seconds)).set_index("bin")["score"].astype(float)
    if state.scored_at is not None:
        # Bins before the one the previous pass ended in were complete then; this read's first bins are partial.
        first_new = pd.Timestamp(state.scored_at).floor(bin_width)
        line = pd.concat([state.engagement[state.engagement.index < first_new], line[line.index >= first_new]])
    recent = signals[signals["ts"] > pd.Timestamp(latest_frame - timedelta(seconds=NOW_SECONDS))]
    scores = {str(key): float(score) for key, score in recent.groupby("student")["score"].mean().items()}
    before = {(flag.student, flag.rule): flag.start for flag in state.flags}
    flags = []
    for flag in session_flags(signals[signals["ts"] > pd.Timestamp(latest_frame - history)], config.flags):
        if not flag.active:
            continue
        earlier = before.get((flag.student, flag.rule))
        if earlier is not None and state.scored_at is not None and flag.start <= pd.Timestamp(state.scored_at):
            flag = replace(flag, start=min(flag.start, earlier))
        flags.append(flag)
    return line.rename("score"), scores, flags, latest_frame


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
    table["bin"] = table["bin"].map(lambda moment: int(moment.timestamp()))
    return {str(column): table[column].tolist() for column in table.columns}


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
