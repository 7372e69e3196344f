"""The live class's tables, kept up to date one refresh at a time: emotion counts per bin, the class
engagement line, each student's current score and the flags on.

Each refresh reads only the rows newer than the last one seen (less the "now" window, which the mood panel
needs again), so its cost follows the rows added since the previous refresh, not the session's length; the
first refresh has the database count the shown window. The state lives on the server, one per session and
shown window, shared by every browser showing it (LiveHub): however many teachers, tabs and admins have the
page open, a session is read and scored once per new frame, not once per browser. It holds emotion counts
per time bin, trimmed to the shown window, never raw rows beyond the last few minutes.

Engagement and flags (analytics.engagement, analytics.flags) need the longest flag rule's span of history
(`lookback_seconds`, a few minutes of rows, ~20 000 for 50 students), which costs more than one refresh may, so
`rescore` recomputes them once per new time bin (every 5th refresh at 2 s; LiveHub runs it beside the refreshes,
not within one) and the state keeps them in between. The scored signals of that span are kept in memory per
session (RecentRows): a pass reads and scores only the frames written since the last one, with the smoothing
window's rows before them, so each frame's signals are scored once, bit for bit as a read of the whole
session scores them (reading and scoring the span again was most of a pass's cost); the engagement line and
the flags share them. A pass replaces the kept class engagement line from the previous pass's bin on; earlier
bins were complete then. The flags come from analytics.live_flags.current_flags, which reads further back for
a flag that began before the lookback, so "since when" is when the condition began in the data, the same
after a reload; the previous pass's flags (each student's open condition and its start) spare it those reads
for flags still on. The kept signals reach back two flag spans (analytics.live_flags.flag_span), so
current_flags takes its first read from them rather than from the database. A student gone from the call
before the kept span is absent in the states, as a whole read has them.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

import config
from analytics.engagement import ABSENT, class_bins, frame_signals, student_bins, students_of
from analytics.flags import Flag, history_seconds
from analytics.live_flags import HeldRows, current_flags, flag_span
from analytics.settings import EngagementConfig, ScoreConfig, load_config
from analytics.timeline import (
    BIN_SECONDS,
    NOW_SECONDS,
    MoodNow,
    counts_since,
    emotion_counts,
    merge_counts,
    mood_now,
    student_states,
)
from db.errors import DatabaseError
from db.live_reads import recent_emotions, unsure_tally
from db.queries import (
    SessionInfo,
    emotion_tally,
    engagement_rows,
    latest_frame_time,
    observation_rows,
    session_version,
    student_rows,
)
from db.schema import PROBABILITY_COLUMNS
from vocabulary.emotions import EMOTIONS

SPARKLINE_SECONDS = 5 * 60
ATTENTIVE = "attentive"  # LiveState.states: a face, turned to the screen
# Sessions whose recent rows RecentRows keeps: a school server shows a few classes at once.
KEPT_SESSIONS = 8
# A face whose calibrated probability for the emotion it is counted as (its top one) is below this is one the
# model is unsure about: more likely wrong than right. The probabilities mean what they say (model/calibration.py,
# ECE about 0.03), so the share of such faces and the band below are honest.
SURE_PROBABILITY = 0.5
# The two-sided 95 % normal quantile: the band around an expected share.
BAND_Z = 1.96


@dataclass(frozen=True)
class LiveState:
    """What LiveHub keeps between refreshes of one session and window.

    window_s: seconds of history kept and shown; None keeps the whole session.
    last_seen: every observation up to this time is counted; None before the first read.
    counts: the class's emotion_counts per bin; student_counts: the same per student, last SPARKLINE_SECONDS only;
    unsure: per bin of `counts`, how many of its faces the model was unsure about (SURE_PROBABILITY).
    engagement: the class engagement score per bin (index bin, UTC), over the shown window;
    scores: each student's engagement over the NOW_SECONDS before scored_at, by student key;
    states: each student's state at scored_at, by student key: ATTENTIVE, or else their presence there
    (analytics.engagement: "face" for a face not attentive, "camera_off", "empty", "absent");
    flags: the flags on at scored_at, the last frame these four were computed at (None: not yet);
    students: the ids of the students scored then (one gone since was merged into another: scored afresh).
    """

    session_id: int
    window_s: int | None
    last_seen: datetime | None
    counts: pd.DataFrame
    unsure: pd.Series
    student_counts: pd.DataFrame
    engagement: pd.Series
    scores: dict[str, float]
    states: dict[str, str]
    flags: list[Flag]
    scored_at: datetime | None
    students: frozenset[int] = frozenset()

    @classmethod
    def start(cls, session_id: int, window_s: int | None) -> LiveState:
        return cls(
            session_id,
            window_s,
            None,
            emotion_counts(_NO_ROWS),
            _NO_UNSURE,
            emotion_counts(_NO_ROWS, by=("student",)),
            _NO_ENGAGEMENT,
            {},
            {},
            [],
            None,
        )


@dataclass(frozen=True)
class LiveView:
    """One refresh's result: the state to keep and the tables the page shows."""

    state: LiveState
    latest_frame: datetime | None  # the newest frame written, with or without faces
    mood: MoodNow
    confidence: MoodConfidence  # how sure the model was about `mood`
    students: pd.DataFrame  # analytics.timeline.student_states
    # Per student whose card shows an emotion (students' `emotion`): the mean calibrated probability the model
    # gave that emotion over their faces of the last NOW_SECONDS.
    sureness: dict[str, float]


@dataclass(frozen=True)
class MoodConfidence:
    """How sure the model was about the class's mood over the last NOW_SECONDS: per emotion (EMOTIONS order),
    the share of faces expected to show it (the mean of their calibrated probabilities) and the half-width of
    its 95 % band (the faces' own uncertainty: a sum of independent yes/no outcomes, one per face); the share
    of faces the model was unsure about (SURE_PROBABILITY); and how many faces that is."""

    expected: pd.Series
    margin: pd.Series
    unsure: float
    faces: int


@cache
def engagement_config() -> EngagementConfig:
    """The [score] and [flags] tables of the configuration in force (config/classpulse.toml by default)."""
    return load_config()


def lookback_seconds(config: EngagementConfig) -> float:
    """The signal history one pass scores: enough for every flag rule to see its whole span, plus a bin."""
    return history_seconds(config.flags) + config.score.bin_seconds


def refresh(engine: Engine, state: LiveState, score: bool = True) -> LiveView:
    """Read what arrived since `state` and return the updated state with the page's new tables; with `score`,
    rescored too (else with `state`'s engagement, scores, states and flags)."""
    latest_frame = latest_frame_time(engine, state.session_id)
    # Read once for the rows' keys and the cards (recent_emotions reads them again only for a student added
    # since, whose card then shows from the next refresh).
    people = student_rows(engine, state.session_id)
    if state.last_seen is None:
        rows, counts, unsure = _first_read(engine, state, latest_frame, people)
        new_rows, last_seen = rows, latest_frame
    else:
        # Rows not yet counted, plus the last NOW_SECONDS that the mood panel and student cards look at.
        since = state.last_seen - timedelta(seconds=NOW_SECONDS)
        rows = recent_emotions(engine, state.session_id, since, latest_frame, people)
        new_rows = rows[rows["ts"] > pd.Timestamp(state.last_seen)]
        counts = merge_counts(state.counts, emotion_counts(new_rows))
        unsure = state.unsure.add(_binned(_unsure_rows(new_rows)), fill_value=0).astype("int64")
        last_seen = new_rows["ts"].max().to_pydatetime() if len(new_rows) else state.last_seen
    latest = latest_frame or state.last_seen
    student_counts = merge_counts(state.student_counts, emotion_counts(new_rows, by=("student",)))
    if latest is not None:
        if state.window_s is not None:
            counts = counts_since(counts, latest - timedelta(seconds=state.window_s))
            unsure = unsure[unsure.index > pd.Timestamp(latest - timedelta(seconds=state.window_s))]
        student_counts = counts_since(student_counts, latest - timedelta(seconds=SPARKLINE_SECONDS))
    now = latest or datetime.now().astimezone()
    scored = rescore(engine, state, latest_frame) if score else state
    engagement = scored.engagement
    if latest is not None and state.window_s is not None:
        engagement = engagement[engagement.index > pd.Timestamp(latest - timedelta(seconds=state.window_s))]
    updated = replace(
        scored, last_seen=last_seen, counts=counts, unsure=unsure, student_counts=student_counts, engagement=engagement
    )
    students = student_states(people, rows, now)
    return LiveView(
        state=updated,
        latest_frame=latest_frame,
        mood=mood_now(rows, now),
        confidence=mood_confidence(rows, now),
        students=students,
        sureness=sureness(students, rows, now),
    )


def mood_confidence(rows: pd.DataFrame, until: datetime, seconds: int = NOW_SECONDS) -> MoodConfidence:
    """MoodConfidence of the observation rows (db.queries.observation_rows) in the `seconds` up to `until`."""
    probabilities = _recent(rows, until, seconds)[list(PROBABILITY_COLUMNS)].to_numpy(float)
    faces = len(probabilities)
    if not faces:
        none = pd.Series(0.0, index=list(EMOTIONS))
        return MoodConfidence(none, none, 0.0, 0)
    expected = probabilities.mean(axis=0)
    margin = BAND_Z * np.sqrt((probabilities * (1 - probabilities)).sum(axis=0)) / faces
    unsure = float((probabilities.max(axis=1) < SURE_PROBABILITY).mean())
    return MoodConfidence(
        pd.Series(expected, index=list(EMOTIONS)), pd.Series(margin, index=list(EMOTIONS)), unsure, faces
    )


def sureness(
    students: pd.DataFrame, rows: pd.DataFrame, until: datetime, seconds: int = NOW_SECONDS
) -> dict[str, float]:
    """LiveView.sureness: `students` as analytics.timeline.student_states gives them for the same rows and time."""
    shown = students.dropna(subset=["emotion"]).set_index("student")["emotion"].map(EMOTIONS.index)
    recent = _recent(rows, until, seconds)
    recent = recent[recent["student"].isin(shown.index)]
    if recent.empty:
        return {}
    probabilities = recent[list(PROBABILITY_COLUMNS)].to_numpy(float)
    given = probabilities[np.arange(len(recent)), recent["student"].map(shown).to_numpy(int)]
    means = pd.Series(given, index=recent["student"].to_numpy()).groupby(level=0).mean()
    return {str(student): float(mean) for student, mean in means.items()}


def _recent(rows: pd.DataFrame, until: datetime, seconds: int) -> pd.DataFrame:
    end = pd.Timestamp(until)
    return rows[(rows["ts"] > end - timedelta(seconds=seconds)) & (rows["ts"] <= end)]


def _unsure_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The observation rows whose probability for their own emotion is below SURE_PROBABILITY."""
    probabilities = rows[list(PROBABILITY_COLUMNS)].to_numpy(float)
    given = probabilities[np.arange(len(rows)), rows["emotion"].to_numpy(int)]
    unsure: pd.DataFrame = rows[given < SURE_PROBABILITY]
    return unsure


def _binned(rows: pd.DataFrame) -> pd.Series:
    """Observations per BIN_SECONDS bin: rows, or tallies whose `observations` column says how many each is."""
    counted = rows["observations"] if "observations" in rows else pd.Series(1, index=rows.index)
    bins = pd.DatetimeIndex(rows["ts"].dt.floor(f"{BIN_SECONDS}s"), name="bin")
    summed = pd.Series(counted.to_numpy("int64"), index=bins).groupby(level=0).sum()
    return summed.astype("int64").rename("unsure") if len(summed) else _NO_UNSURE


def scoring_due(state: LiveState, latest_frame: datetime | None) -> bool:
    """Whether a new time bin has begun at `latest_frame` since `state` was scored (rescore's condition)."""
    if latest_frame is None:
        return False
    if state.scored_at is None:
        return True
    bin_width = f"{engagement_config().score.bin_seconds}s"
    return bool(pd.Timestamp(latest_frame).floor(bin_width) > pd.Timestamp(state.scored_at).floor(bin_width))


def rescore(engine: Engine, state: LiveState, latest_frame: datetime | None) -> LiveState:
    """The incremental scorer: `state` with the class engagement line, each student's current score and
    state, the flags on, and the frame they were computed at, recomputed from the last lookback_seconds of
    rows when a new bin has begun since `state`'s pass; else `state` as it is (module docstring)."""
    config = engagement_config()
    bin_width = f"{config.score.bin_seconds}s"
    if latest_frame is None or not scoring_due(state, latest_frame):
        return state
    history = timedelta(seconds=lookback_seconds(config))
    since: datetime | None = None  # None: from the session's first row
    if state.scored_at is not None:
        since = state.scored_at - history
    elif state.window_s is not None:
        since = latest_frame - max(timedelta(seconds=state.window_s), history)
    # Kept from far enough back for current_flags' first read too, which then reads no rows of its own.
    kept_since = None if since is None else min(since, latest_frame - 2 * flag_span(config))
    # Read once for the kept rows' names and current_flags' keys.
    people = student_rows(engine, state.session_id)
    if not state.students <= set(people["student_id"]):
        # A merge: the kept bins and flags counted the merged students apart, so everything is scored again.
        unscored = replace(
            state, engagement=_NO_ENGAGEMENT, scores={}, states={}, flags=[], scored_at=None, students=frozenset()
        )
        return rescore(engine, unscored, latest_frame)
    # Scored once for both the engagement line and the flags, the frames before the last pass's kept from it.
    kept_frames, kept_signals = RECENT_ROWS.read(engine, state.session_id, config.score, kept_since, people)
    if kept_signals.empty:
        return state
    signals = kept_signals
    if state.scored_at is None and since is not None and kept_since is not None and kept_since < since:
        # A later pass takes only rows after `since` below (its new bins, its last NOW_SECONDS).
        signals = signals[signals["ts"] > pd.Timestamp(since)]
    if signals.empty:
        return state
    binned = signals
    if state.scored_at is not None:
        # Bins before the one the previous pass ended in were complete then and are kept; only the later ones are
        # binned again (a bin's score is its own frames', so those bins come out as from all the rows).
        first_new = pd.Timestamp(state.scored_at).floor(bin_width)
        binned = signals[signals["ts"] >= first_new]
    line = class_bins(student_bins(binned, config.score.bin_seconds)).set_index("bin")["score"].astype(float)
    if state.scored_at is not None:
        line = pd.concat([state.engagement[state.engagement.index < first_new], line[line.index >= first_new]])
    recent = signals[signals["ts"] > pd.Timestamp(latest_frame - timedelta(seconds=NOW_SECONDS))]
    scores = {str(key): float(score) for key, score in recent.groupby("student")["score"].mean().items()}
    last = signals[signals["frame"] == signals["frame"].max()]
    states = dict(zip(last["student"].astype(str), last["presence"].where(~last["attentive"], ATTENTIVE), strict=True))
    # A student gone from the call before the kept rows has none there: absent, scoring 0, as in a whole read.
    for key in people["student"].astype(str):
        if key not in states:
            states[key], scores[key] = ABSENT, 0.0
    held = HeldRows(kept_since, kept_frames, kept_signals, people)
    flags = current_flags(engine, state.session_id, config, known=state.flags, recent=held)
    return replace(
        state,
        engagement=line.rename("score"),
        scores=scores,
        states=states,
        flags=flags,
        scored_at=latest_frame,
        students=frozenset(people["student_id"].tolist()),
    )


@dataclass(frozen=True)
class _Span:
    """What RecentRows keeps of one session after `since` (None: from its start): its frames, their
    frame_signals with the students they score (student_id index; student, name, first_frame), and the
    engagement_rows of the last smoothing window, which the next frames' smoothing looks back at."""

    since: datetime | None
    frames: pd.DataFrame
    signals: pd.DataFrame
    students: pd.DataFrame
    tail: pd.DataFrame


class RecentRows:
    """The frame_signals of each session's last scoring span, kept between passes so that the next pass reads
    and scores only the frames written since (a frame and its rows are committed together, so none is
    half-read): they are scored with the smoothing window's rows before them (analytics.engagement.
    frame_signals, from_frame), and the students kept go on being scored in every new frame, as absent once
    gone, as a read of the whole session scores them. A frame's time stands until the next frame, capped as
    frame_seconds caps it over the kept frames. The students' names are looked up again at each pass, as a
    fresh read would give them; a session whose students or frame numbers no longer match what was kept (a
    merge, a purge, another session under a reused id) is read and scored afresh, as is a span reaching
    further back than the kept one."""

    def __init__(self, sessions: int = KEPT_SESSIONS) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int], _Span] = OrderedDict()

    def read(
        self,
        engine: Engine,
        session_id: int,
        config: ScoreConfig,
        since: datetime | None,
        people: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The frames of engagement_rows(engine, session_id, config.negative_emotions, since), and the
        frame_signals of its rows (scored from further back where kept, and with the students kept); both
        empty when the span has no rows. people: the session's student_rows when the caller has just read
        them (read here otherwise)."""
        key = (engine.url.render_as_string(hide_password=False), session_id)
        with self._lock:
            kept = self._kept.get(key)
        found = None
        if (
            kept is not None
            and len(kept.frames)
            and (kept.since is None or (since is not None and kept.since <= since))
        ):
            found = self._continued(engine, session_id, config, kept, people)
        if found is None:
            rows, frames = engagement_rows(engine, session_id, config.negative_emotions, since=since, people=people)
            if rows.empty:
                with self._lock:
                    self._kept.pop(key, None)
                return frames.iloc[:0], rows
            signals = frame_signals(rows, frames, config)
            span = _Span(since, frames, signals, students_of(signals), _tail(rows, frames, config))
        else:
            span = found
            if since is not None:
                start = pd.Timestamp(since)
                frames = span.frames[span.frames["ts"] > start].reset_index(drop=True)
                signals = span.signals[span.signals["ts"] > start].reset_index(drop=True)
                span = replace(span, since=since, frames=frames, signals=signals)
        with self._lock:
            self._kept[key] = span
            self._kept.move_to_end(key)
            while len(self._kept) > self._sessions:
                self._kept.popitem(last=False)
        return span.frames, span.signals

    def forget(self) -> None:
        """Drop every kept span (the benchmark times passes that read afresh)."""
        with self._lock:
            self._kept.clear()

    @staticmethod
    def _continued(
        engine: Engine, session_id: int, config: ScoreConfig, kept: _Span, students: pd.DataFrame | None
    ) -> _Span | None:
        """`kept` with the frames written since scored; None when it no longer fits the session."""
        students = student_rows(engine, session_id) if students is None else students
        people = students.set_index("student_id")
        last = kept.frames.iloc[-1]
        new_rows, new_frames = engagement_rows(
            engine, session_id, config.negative_emotions, since=last["ts"].to_pydatetime(), people=students
        )
        if not kept.students.index.isin(people.index).all() or (
            len(new_frames) and new_frames["frame"].iat[0] <= last["frame"]
        ):
            return None
        frames, signals, scored, tail = kept.frames, kept.signals, kept.students, kept.tail
        if len(new_frames):
            frames, rows = _appended(frames, new_frames), _appended(tail, new_rows)
            # The last kept frame is scored again: the time it stands for ends at the next frame, unknown before.
            new = frame_signals(rows, frames, config, scored, from_frame=int(last["frame"]))
            scored = students_of(new, scored)
            signals = pd.concat([signals[signals["frame"] < last["frame"]], new], ignore_index=True)
            # Student by student, then in time, as frame_signals orders them (a stable sort keeps the time order).
            order = (
                np.argsort(signals["student_id"].to_numpy(), kind="stable")
                if frames["ts"].is_monotonic_increasing
                else signals.sort_values(["student_id", "ts"], kind="stable").index.to_numpy()
            )
            signals, tail = signals.take(order).reset_index(drop=True), _tail(rows, frames, config)
        names = people["name"]
        return _Span(
            kept.since,
            frames,
            signals.assign(name=_names(signals["student_id"], names)),
            scored.assign(name=_names(scored.index.to_series(), names)),
            tail.assign(name=_names(tail["student_id"], names)),
        )


def _tail(rows: pd.DataFrame, frames: pd.DataFrame, config: ScoreConfig) -> pd.DataFrame:
    """The rows within the smoothing window of the last frame: what scoring the next frames looks back at."""
    last = frames["ts"].max() - pd.Timedelta(seconds=config.emotion_window_seconds)
    tail: pd.DataFrame = rows[rows["ts"] > last].reset_index(drop=True)
    return tail


def _names(student_id: pd.Series, names: pd.Series) -> np.ndarray:
    """Each student's name now (None where they have none, as a fresh read gives it)."""
    found = student_id.map(names)
    name: np.ndarray = found.to_numpy(object)
    name[found.isna().to_numpy()] = None
    return name


def _appended(kept: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`new` under `kept`, column by column: pd.concat of whole frames checks every value of a column that is
    all missing (a class without names), which cost more than reading the new rows."""
    if new.empty:
        return kept
    return pd.DataFrame({column: pd.concat([kept[column], new[column]], ignore_index=True) for column in kept.columns})


RECENT_ROWS = RecentRows()


@dataclass(frozen=True)
class SharedView:
    """LiveHub's answer: the view, and a token naming it (the same token, the same view)."""

    view: LiveView
    token: str


@dataclass
class _Kept:
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: tuple[Any, ...] | None = None  # db.queries.session_version when `shared` was refreshed
    shared: SharedView | None = None
    scoring: threading.Thread | None = None  # the rescore running in the background, if any
    scored: LiveState | None = None  # what it gave, not yet in `shared`
    wake: threading.Event = field(default_factory=threading.Event)  # set: `scoring` starts without its pause


class LiveHub:
    """One LiveState per session and shown window, shared by every browser that shows it, with the view of
    its last refresh. `view` refreshes it only when the session has changed since (a frame written, a student
    added, renamed or merged: db.queries.session_version), holding that session's lock while it does: a
    browser asking meanwhile (waitress serves each request on a thread of its own) waits for that refresh and
    shares its result. So a session is read and scored once per change, not once per browser, and polls of an
    unchanged session cost one small query.

    The first view of a session is scored at once. Later, `background`: the scoring a new time bin calls for
    (rescore: most of a refresh's cost, once in five refreshes) runs on a thread of its own, and the views
    keep the last scoring until the next refresh after it ends, so no browser waits for it; else it runs
    within the refresh that calls for it. The thread first pauses for `pause_s` (default: half the live
    page's refresh period, config [dashboard] live_refresh_seconds): the refresh that called for it still
    draws and sends its page, and Python runs one thread at a time, so a pass started at once made that
    refresh wait for half of the pass; a pass of a few tens of milliseconds after the pause still ends before
    the next refresh, which shows it."""

    def __init__(self, kept: int = KEPT_SESSIONS * 3, background: bool = True, pause_s: float | None = None) -> None:
        self._kept = kept  # states kept: a few sessions, each in the page's few windows
        self._background = background
        self._pause_s = pause_s
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[Any, ...], _Kept] = OrderedDict()
        # Tokens differ from those of an earlier process, whose browsers may still hold one.
        self._tokens = (f"{secrets.token_hex(4)}-{n}" for n in itertools.count())

    def view(self, engine: Engine, session: SessionInfo, window_s: int | None) -> SharedView:
        """The live view of `session` over the last `window_s` seconds (None: the whole session)."""
        # The start tells a session from another one given a purged one's id.
        key = (engine.url.render_as_string(hide_password=False), session.id, session.started_at, window_s)
        with self._lock:
            kept = self._states.setdefault(key, _Kept())
            self._states.move_to_end(key)
            while len(self._states) > self._kept:
                self._states.popitem(last=False)
        with kept.lock:
            version = session_version(engine, session.id)
            if kept.shared is None or kept.version != version or kept.scored is not None:
                state = LiveState.start(session.id, window_s) if kept.shared is None else kept.shared.view.state
                if kept.scored is not None:
                    scored, kept.scored = kept.scored, None
                    state = replace(
                        state,
                        engagement=scored.engagement,
                        scores=scored.scores,
                        states=scored.states,
                        flags=scored.flags,
                        scored_at=scored.scored_at,
                        students=scored.students,
                    )
                inline = not self._background or state.scored_at is None
                view = refresh(engine, state, score=inline)
                kept.shared, kept.version = SharedView(view, next(self._tokens)), version
                if not inline and kept.scoring is None and scoring_due(view.state, view.latest_frame):
                    kept.wake.clear()
                    kept.scoring = threading.Thread(
                        target=self._score,
                        args=(engine, kept, view.state, view.latest_frame, self._pause()),
                        daemon=True,
                    )
                    kept.scoring.start()
            return kept.shared

    @staticmethod
    def _score(engine: Engine, kept: _Kept, state: LiveState, latest_frame: datetime | None, pause_s: float) -> None:
        kept.wake.wait(pause_s)
        scored = None
        try:
            scored = rescore(engine, state, latest_frame)
        except DatabaseError:
            pass  # the next refresh that calls for it tries again (the page says when the database fails)
        finally:
            with kept.lock:
                kept.scored, kept.scoring = scored, None

    def settle(self) -> None:
        """Wait for the scorings running in the background to end, started now if they pause (their results
        show at the next view)."""
        with self._lock:
            running = [(kept.scoring, kept.wake) for kept in self._states.values() if kept.scoring is not None]
        for thread, wake in running:
            wake.set()
            thread.join()

    def _pause(self) -> float:
        if self._pause_s is None:
            self._pause_s = config.chosen().dashboard.live_refresh_seconds / 2
        return self._pause_s

    def forget(self) -> None:
        """Drop every kept state (the benchmark times first opens)."""
        self.settle()
        with self._lock:
            self._states.clear()


LIVE_HUB = LiveHub()


def _first_read(
    engine: Engine, state: LiveState, latest_frame: datetime | None, people: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The rows of the last SPARKLINE_SECONDS, and the class's emotion counts and unsure faces per bin over the
    shown window.

    The window (the whole session when asked for) is counted in the database, so opening the page on a
    long class reads a few rows per frame, not one per face; only the sparklines' minutes come row by row.
    Both stop at `latest_frame`: a frame's rows are committed with it, so every row up to it is counted.
    """
    if latest_frame is None:
        return _NO_ROWS, emotion_counts(_NO_ROWS), _NO_UNSURE
    since = None if state.window_s is None else latest_frame - timedelta(seconds=state.window_s)
    tally = emotion_tally(engine, state.session_id, since=since, until=latest_frame)
    rows = observation_rows(
        engine, state.session_id, since=latest_frame - timedelta(seconds=SPARKLINE_SECONDS), people=people
    )
    unsure = unsure_tally(engine, state.session_id, SURE_PROBABILITY, since=since, until=latest_frame)
    return rows[rows["ts"] <= pd.Timestamp(latest_frame)], emotion_counts(tally), _binned(unsure)


_NO_ROWS = pd.DataFrame(
    {
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
        "student": pd.Series([], dtype=object),
        "emotion": pd.Series([], dtype="int64"),
        **{column: pd.Series([], dtype=float) for column in PROBABILITY_COLUMNS},
    }
)
_NO_ENGAGEMENT = pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="bin"), dtype=float, name="score")
_NO_UNSURE = pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="bin"), dtype="int64", name="unsure")
