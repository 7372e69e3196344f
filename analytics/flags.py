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


def session_flags(signals: pd.DataFrame, config: FlagConfig) -> list[Flag]:
    """Every flag of every student of frame_signals (rows by student, then time), ordered by start time.

    The rules run on the whole table at once, a student's windows never reaching into another's rows: on a
    long class, one pandas pass per student cost more than the rules themselves."""
    if signals.empty:
        return []
    frames = signals.reset_index(drop=True)
    student_id = frames["student_id"].to_numpy()
    starts_student = np.r_[True, student_id[1:] != student_id[:-1]]
    first_row = np.maximum.accumulate(np.where(starts_student, np.arange(len(frames)), 0))
    flags = []
    for rule, condition, hold, describe, measured in _rules(frames, first_row, config):
        for start, raised, end in episodes(frames["ts"], condition, hold, measured, first_row):
            name = frames["name"].iat[start]
            flags.append(
                Flag(
                    frames["student"].iat[start],
                    None if pd.isna(name) else name,
                    rule,
                    describe(start, raised),
                    frames["ts"].iat[start],
                    frames["ts"].iat[raised],
                    end,
                )
            )
    return sorted(flags, key=lambda flag: (flag.start, flag.student, flag.rule))


def episodes(
    ts: pd.Series,
    condition: np.ndarray,
    hold_seconds: float,
    measured: pd.Series | None = None,
    first_row: np.ndarray | None = None,
) -> Iterator[tuple[int, int, pd.Timestamp | None]]:
    """Runs of `condition` that held for more than hold_seconds (any length when 0): the index of the run's
    first frame, of the frame where it had held long enough, and the time of the first frame after it (None
    when the run reaches the student's last frame). measured: when each frame's value was measured (NaT:
    unknown), if not at the frame's own time: a run has held long enough at the first frame measured more
    than hold_seconds after the run's first frame. first_row: each frame's student's first frame (None: all
    frames are one student's); no run spans two students."""
    condition = np.asarray(condition, bool)
    if not condition.any():
        return
    seconds = _seconds(ts, ts)
    evidence = seconds if measured is None else _seconds(measured, ts)
    frames = len(condition)
    new_student = np.zeros(frames + 1, bool)
    new_student[[0, frames]] = True
    if first_row is not None:
        new_student[:frames] |= first_row == np.arange(frames)
    # A run starts where the condition holds and did not at the student's previous frame, and ends (exclusive)
    # where it stops holding or the next student begins.
    held_before = np.r_[False, condition[:-1]] & ~new_student[:frames]
    held_after = np.r_[condition[1:], False] & ~new_student[1:]
    firsts = np.flatnonzero(condition & ~held_before)
    afters = np.flatnonzero(condition & ~held_after) + 1
    for start, end in zip(firsts.tolist(), afters.tolist(), strict=True):
        held = evidence[start:end] - seconds[start]
        long_enough = np.flatnonzero(held > hold_seconds) if hold_seconds > 0 else np.array([0])
        if len(long_enough):
            yield start, start + int(long_enough[0]), None if new_student[end] else ts.iloc[end]


def _seconds(times: pd.Series, ts: pd.Series) -> np.ndarray:
    """Seconds from the first of `ts` (exact for whole seconds, unlike seconds since the epoch); NaT -> NaN."""
    return (times - ts.iloc[0]).dt.total_seconds().to_numpy()


def _rules(frames: pd.DataFrame, first_row: np.ndarray, config: FlagConfig) -> Iterator[Rule]:
    """Each rule of the module docstring on frame_signals rows; first_row: each row's student's first row."""
    seconds = _seconds(frames["ts"], frames["ts"])
    since_first = seconds - seconds[first_row]
    # Time keys that grow by more than any window from one student to the next, so that a window found by
    # searching them never reaches back into the previous student's rows.
    widest = max(config.looking_away_window_seconds, config.drop_window_seconds)
    student_number = np.cumsum(first_row == np.arange(len(frames))) - 1
    key = seconds + student_number * (seconds.max() - seconds.min() + widest + 1)

    def window_sum(values: np.ndarray, window_seconds: float) -> np.ndarray:
        """The sum of `values` over each row's (t - window, t] of its own student (pandas' rolling window)."""
        running = np.r_[0.0, np.cumsum(values)]
        return running[1:] - running[np.searchsorted(key, key - window_seconds, side="right")]

    absent = (frames["presence"] != "face").to_numpy()

    def absent_reason(start: int, raised: int) -> str:
        kind = frames["presence"].iloc[start : raised + 1].mode().iloc[0]
        return f"no face for more than {config.absent_seconds:g} s ({ABSENCE_KINDS.get(kind, kind)})"

    yield "absent", absent, config.absent_seconds, absent_reason, None

    duration = frames["seconds"].to_numpy(float)
    turned_away = (frames["present"] & ~frames["attentive"]).to_numpy(float)
    away_share = window_sum(turned_away * duration, config.looking_away_window_seconds)
    away_share /= config.looking_away_window_seconds
    looking_away = (since_first >= config.looking_away_window_seconds) & (away_share > config.looking_away_share)
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

    weighted = frames["score"].to_numpy(float) * duration
    recent = window_sum(weighted, config.drop_window_seconds) / window_sum(duration, config.drop_window_seconds)
    # The baseline: the student's mean score up to the start of the recent window.
    last_before = np.searchsorted(key, key - config.drop_window_seconds, side="right") - 1
    has_baseline = (since_first - config.drop_window_seconds >= config.baseline_seconds) & (last_before >= first_row)
    safe = np.maximum(last_before, first_row)
    score_before = np.r_[0.0, np.cumsum(weighted)]
    time_before = np.r_[0.0, np.cumsum(duration)]
    baseline_score = score_before[safe + 1] - score_before[first_row]
    baseline_time = time_before[safe + 1] - time_before[first_row]
    baseline = np.where(has_baseline, baseline_score / np.maximum(baseline_time, 1e-9), np.nan)
    dropped = has_baseline & (recent < baseline * (1 - config.drop_fraction))
    yield (
        "drop",
        dropped,
        0.0,
        lambda start, raised: f"engagement {recent[raised]:.2f} over the last {config.drop_window_seconds:g} s, "
        f"against the student's own {baseline[raised]:.2f} before",
        None,
    )
