"""Disengagement flags: who needs the teacher's attention, why, and since when.

Each rule turns a student's frames (analytics.engagement.frame_signals) into a condition per frame; a flag
is one run of the condition that lasted long enough. It starts when the condition began, is raised once
the condition has held for the rule's time, and clears at the first frame where the condition no longer
holds (end None: still on at the last frame). Thresholds are in analytics/engagement.toml ([flags]):

    absent         no face (camera off, seat empty, or gone from the gallery) for more than absent_seconds
    looking_away   the head turned away for more than looking_away_share of the last
                   looking_away_window_seconds (judged once that much of the student's time has passed)
    eyes_closed    eyes closed for more than eyes_closed_seconds, by measurements: the landmark models read
                   the eyes of a few faces per frame and the other rows carry their last reading, so the
                   flag is raised only at a reading taken more than eyes_closed_seconds after the first
                   closed one (a carried closed reading alone never stretches a run into a flag)
    negative       the smoothed probability of a negative emotion at or above negative_level for more
                   than negative_seconds (never raised without emotions)
    drop           the score over the last drop_window_seconds below (1 - drop_fraction) times the student's
                   own mean score before that window, once baseline_seconds of it exist
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.settings import FlagConfig

# A rule: its name, its condition per frame, how long it must hold (s), its reason(start, raised), and when
# each frame's value was measured (None: at the frame itself).
Rule = tuple[str, np.ndarray, float, Callable[[int, int], str], pd.Series | None]
ABSENCE_KINDS = {"camera_off": "camera off", "empty": "seat empty", "absent": "not in the gallery"}


@dataclass(frozen=True)
class Flag:
    student: str
    name: str | None
    rule: str
    reason: str
    start: pd.Timestamp  # when the condition began
    raised: pd.Timestamp  # when it had held long enough to flag
    end: pd.Timestamp | None  # the first frame without the condition; None while it still holds

    @property
    def active(self) -> bool:
        return self.end is None


def student_flags(frames: pd.DataFrame, config: FlagConfig) -> list[Flag]:
    """Every flag of one student, in order of start; frames: that student's rows of frame_signals, by time."""
    ts = frames["ts"].reset_index(drop=True)
    student, name = frames["student"].iloc[0], frames["name"].iloc[0]
    name = None if pd.isna(name) else name
    flags = []
    for rule, condition, hold, describe, measured in _rules(frames.reset_index(drop=True), config):
        for start, raised, end in episodes(ts, condition, hold, measured):
            flags.append(Flag(student, name, rule, describe(start, raised), ts[start], ts[raised], end))
    return sorted(flags, key=lambda flag: (flag.start, flag.rule))


def session_flags(signals: pd.DataFrame, config: FlagConfig) -> list[Flag]:
    """Every flag of every student of frame_signals, ordered by start time."""
    flags = [flag for _, frames in signals.groupby("student_id", sort=True) for flag in student_flags(frames, config)]
    return sorted(flags, key=lambda flag: (flag.start, flag.student, flag.rule))


def episodes(
    ts: pd.Series, condition: np.ndarray, hold_seconds: float, measured: pd.Series | None = None
) -> Iterator[tuple[int, int, pd.Timestamp | None]]:
    """Runs of `condition` that held for more than hold_seconds (any length when 0): the index of the run's
    first frame, of the frame where it had held long enough, and the time of the first frame after it (None
    when the run reaches the last frame). measured: when each frame's value was measured (NaT: unknown),
    if not at the frame's own time: a run has held long enough at the first frame measured more than
    hold_seconds after the run's first frame."""
    held_on = np.concatenate(([False], np.asarray(condition, bool), [False]))
    if not held_on.any():
        return
    seconds = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()
    evidence = seconds if measured is None else (measured - ts.iloc[0]).dt.total_seconds().to_numpy()
    # Where the condition switches on and off: the runs' first frames and the frames just after them.
    switches = np.flatnonzero(held_on[1:] != held_on[:-1])
    for start, end in zip(switches[::2].tolist(), switches[1::2].tolist(), strict=True):
        held = evidence[start:end] - seconds[start]
        long_enough = np.flatnonzero(held > hold_seconds) if hold_seconds > 0 else np.array([0])
        if len(long_enough):
            yield start, start + int(long_enough[0]), ts.iloc[end] if end < len(condition) else None


def _rules(frames: pd.DataFrame, config: FlagConfig) -> Iterator[Rule]:
    """Each rule of the module docstring on one student's frames."""
    seconds = (frames["ts"] - frames["ts"].iloc[0]).dt.total_seconds()

    absent = (frames["presence"] != "face").to_numpy()

    def absent_reason(start: int, raised: int) -> str:
        kind = frames["presence"].iloc[start : raised + 1].mode().iloc[0]
        return f"no face for more than {config.absent_seconds:g} s ({ABSENCE_KINDS.get(kind, kind)})"

    yield "absent", absent, config.absent_seconds, absent_reason, None

    window = f"{int(round(config.looking_away_window_seconds * 1000))}ms"
    by_time = frames.set_index("ts")
    away_seconds = ((by_time["present"] & ~by_time["attentive"]) * by_time["seconds"]).rolling(window).sum()
    away_share = away_seconds.to_numpy() / config.looking_away_window_seconds
    judged = (seconds >= config.looking_away_window_seconds).to_numpy()
    looking_away = judged & (away_share > config.looking_away_share)
    yield (
        "looking_away",
        looking_away,
        0.0,
        lambda start, raised: f"head turned away for {away_share[raised]:.0%} of the last "
        f"{config.looking_away_window_seconds:g} s",
        None,
    )

    closed = frames["eyes_closed"].to_numpy(bool)
    yield (
        "eyes_closed",
        closed,
        config.eyes_closed_seconds,
        lambda _start, _raised: f"eyes closed for more than {config.eyes_closed_seconds:g} s",
        frames["eyes_ts"],
    )

    negative = (frames["negative"] >= config.negative_level).to_numpy()
    yield (
        "negative",
        negative,
        config.negative_seconds,
        lambda _start, _raised: (
            f"negative expression (p >= {config.negative_level:g}) for more than {config.negative_seconds:g} s"
        ),
        None,
    )

    drop_window = f"{int(round(config.drop_window_seconds * 1000))}ms"
    weighted = by_time["score"] * by_time["seconds"]
    recent = (weighted.rolling(drop_window).sum() / by_time["seconds"].rolling(drop_window).sum()).to_numpy()
    # The baseline: the student's mean score up to the start of the recent window.
    before = seconds.to_numpy() - config.drop_window_seconds
    cumulative_score, cumulative_time = np.cumsum(weighted.to_numpy()), np.cumsum(by_time["seconds"].to_numpy())
    last_before = np.searchsorted(seconds.to_numpy(), before, side="right") - 1
    has_baseline = (before >= config.baseline_seconds) & (last_before >= 0)
    safe = np.clip(last_before, 0, None)
    baseline = np.where(has_baseline, cumulative_score[safe] / np.maximum(cumulative_time[safe], 1e-9), np.nan)
    dropped = has_baseline & (recent < baseline * (1 - config.drop_fraction))
    yield (
        "drop",
        dropped,
        0.0,
        lambda start, raised: f"engagement {recent[raised]:.2f} over the last {config.drop_window_seconds:g} s, "
        f"against the student's own {baseline[raised]:.2f} before",
        None,
    )
