"""The live page's incremental refresh: what the browser keeps between ticks, and one tick's reads.

Each tick reads only the rows newer than the last one seen (less the "now" window, which the mood panel
needs again), so its cost follows the rows added since the previous tick, not the session's length; the
first tick has the database count the shown window. The browser keeps emotion counts per time bin,
trimmed to the shown window, never raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from analytics.timeline import (
    NOW_SECONDS,
    MoodNow,
    counts_since,
    emotion_counts,
    merge_counts,
    mood_now,
    student_states,
)
from db.queries import emotion_tally, latest_frame_time, observation_rows, student_rows
from model.emotions import EMOTIONS

DEFAULT_WINDOW_SECONDS = 15 * 60
SPARKLINE_SECONDS = 5 * 60


@dataclass(frozen=True)
class LiveState:
    """What the browser keeps between ticks (in a dcc.Store, as JSON).

    window_s: seconds of history kept and shown; None keeps the whole session.
    last_seen: every observation up to this time is counted; None before the first read.
    counts: the class's emotion_counts per bin; student_counts: the same per student, last SPARKLINE_SECONDS only.
    """

    session_id: int
    window_s: int | None
    last_seen: datetime | None
    counts: pd.DataFrame
    student_counts: pd.DataFrame

    @classmethod
    def start(cls, session_id: int, window_s: int | None) -> LiveState:
        return cls(session_id, window_s, None, emotion_counts(_NO_ROWS), emotion_counts(_NO_ROWS, by=("student",)))

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "window_s": self.window_s,
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
            "counts": _counts_to_json(self.counts),
            "student_counts": _counts_to_json(self.student_counts),
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
        )


@dataclass(frozen=True)
class LiveView:
    """One tick's result: the state to keep and what the page shows."""

    state: LiveState
    latest_frame: datetime | None  # the newest frame written, with or without faces
    mood: MoodNow
    students: pd.DataFrame  # analytics.timeline.student_states


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
    updated = LiveState(state.session_id, state.window_s, last_seen, counts, student_counts)
    now = latest or datetime.now().astimezone()
    return LiveView(
        state=updated,
        latest_frame=latest_frame,
        mood=mood_now(rows, now),
        students=student_states(student_rows(engine, state.session_id), rows, now),
    )


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
