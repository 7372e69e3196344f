"""Disengagement flags: who needs the teacher's attention, why, and since when.

Each rule turns a student's frames (analytics.engagement.frame_signals) into a condition per frame; a flag
is one run of the condition that lasted long enough. Its `start` is when the condition began in the data:
the run's first frame, or for a rule judged over a window, the first frame of the evidence that raised it;
it depends on the rows only, never on when or how far back they were read (analytics.live_flags relies on
that). `raised` is when the condition had held long enough; the flag clears at the first frame where it no
longer holds (end None: still on at the student's last frame). A student has one flag per cause: runs of
one rule whose evidence overlaps are one flag, and a rule whose cause another flag already names stays
quiet. Thresholds: config/classpulse.toml [flags].

    camera_off     the tile shows the camera-off placeholder for more than absent_seconds
    absent         the seat is empty or the student left the call: no face and no camera-off tile for more
                   than absent_seconds. The detector misses faces turned aside, and their tile then reads
                   "empty" like an empty seat: a stretch without a face that began with the head turned away
                   is looking away (below), and absence only once it has lasted turned_gap_seconds. A
                   student who leaves the call is absent from the moment they left, whatever their tile
                   showed before: a new flag, counting the time without a face before towards absent_seconds
    looking_away   the head turned away (or its face lost while turned, as above) for more than
                   looking_away_share of the last looking_away_window_seconds (judged once that much of the
                   student's time has passed); it starts at the earliest turned frame since which the student
                   was turned more than that share of the time, and ends where `absent` takes the stretch over
    eyes_closed    eyes closed for more than eyes_closed_seconds, by measurements: the landmark models read
                   the eyes of a few faces per frame and the other rows carry their last reading, so the
                   flag is raised only at a reading taken more than eyes_closed_seconds after the first
                   closed one (a carried closed reading alone never stretches a run into a flag)
    negative       over the last negative_seconds the face showed with an emotion at least half the time and
                   its negative-emotion probability (smoothed, analytics.engagement) averaged at least
                   negative_level and at least negative_margin above both the student's own average over the
                   baseline_seconds before that window and the class's median over the window (at least 3
                   students seen), while the student's engagement over the window stayed below
                   negative_max_engagement (the own average needs half of baseline_seconds with an emotion).
                   The flag starts at the window's first frame at that level. A stretch that lasts long enough
                   to become the student's baseline (most of baseline_seconds) clears: their mood then is their
                   usual one, and every rule looks back a bounded time, which keeps starts exact.
                   Never raised without emotions
    drop           the student's engagement over the face time of the last drop_window_seconds (at least half
                   of it) below (1 - drop_fraction) times their own over the face time of the baseline_seconds
                   before (at least half of it); not while another flag of theirs was on within the window
                   (that flag already says why), and never from time without a face (camera_off and absent say
                   that). It starts at the window's first frame below that level
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analytics.engagement import ABSENT
from analytics.settings import FlagConfig
from vocabulary.records import Presence

# The words for each kind of missing face, in a flag's reason.
ABSENCE_KINDS = {Presence.CAMERA_OFF: "camera off", Presence.EMPTY: "seat empty", ABSENT: "not in the gallery"}
# The rules judged on the emotion model's output: a viewer who hides emotions does not see their flags.
EMOTION_RULES = frozenset({"negative"})
# Fewer students than this with a face in a window make no class level: the median of one or two is them.
CLASS_LEVEL_STUDENTS = 3


@dataclass(frozen=True)
class Flag:
    student: str
    name: str | None
    rule: str
    reason: str
    start: pd.Timestamp  # when the condition began in the data
    raised: pd.Timestamp  # when it had held long enough to flag
    end: pd.Timestamp | None  # the first frame without the condition; None while it still holds
    cause: str  # what happened, in a few words for a teacher ("left the call", "camera off")

    @property
    def active(self) -> bool:
        return self.end is None


@dataclass(frozen=True)
class Rule:
    """One flag rule, evaluated on a frame_signals table (rows by student, then time)."""

    name: str
    condition: np.ndarray  # per row: whether the condition holds
    hold_seconds: float | np.ndarray  # how long a run must hold; per row: the value at a run's first row counts
    describe: Callable[[int, int], str]  # the reason, from the rows where the flag starts and is raised
    cause: str | Callable[[int], str]  # Flag.cause, or how to tell it from the row where the flag starts
    measured: pd.Series | None = None  # when each row's value was measured; None: at the row's own time
    onset: Callable[[int], int] | None = None  # a run's first row -> the row its evidence began; None: the same
    # Per row: a new run begins here even where the condition held at the row before (what happened changed).
    breaks: np.ndarray | None = None


@dataclass(frozen=True)
class _Raised:
    """A flag by rows: where its evidence began, where it was raised, and the row after its run."""

    rule: str
    start: int
    raised: int
    stop: int
    reason: str
    cause: str


def session_flags(signals: pd.DataFrame, config: FlagConfig) -> list[Flag]:
    """Every flag of every student of frame_signals (rows by student, then time), ordered by start time.

    The rules run on the whole table at once, a student's windows never reaching into another's rows: on a
    long class, one pandas pass per student cost more than the rules themselves."""
    if signals.empty:
        return []
    frames = signals.reset_index(drop=True)
    raised = _Rules(frames, config).raised()
    flags = []
    last_row = _last_rows(frames)
    students: pd.Series[str] = frames["student"]
    names: pd.Series[str] = frames["name"]  # NaN where the student has no name
    ts: pd.Series[pd.Timestamp] = frames["ts"]
    for flag in raised:
        name = names.iloc[flag.start]
        reaches_end = flag.stop > last_row[flag.start]
        flags.append(
            Flag(
                students.iloc[flag.start],
                None if pd.isna(name) else name,
                flag.rule,
                flag.reason,
                ts.iloc[flag.start],
                ts.iloc[flag.raised],
                None if reaches_end else ts.iloc[flag.stop],
                flag.cause,
            )
        )
    return sorted(flags, key=lambda flag: (flag.start, flag.student, flag.rule))


def history_seconds(config: FlagConfig) -> float:
    """How far before a frame a rule looks to judge it: rows read from T on give every frame after T plus
    this the same conditions as the whole session's rows would."""
    return max(
        config.looking_away_window_seconds,
        config.negative_seconds + config.baseline_seconds,
        config.drop_window_seconds + config.baseline_seconds,
        config.turned_gap_seconds,
    )


def episodes(
    ts: pd.Series,
    condition: np.ndarray,
    hold_seconds: float | np.ndarray,
    measured: pd.Series | None = None,
    first_row: np.ndarray | None = None,
) -> Iterator[tuple[int, int, pd.Timestamp | None]]:
    """Runs of `condition` that held for more than hold_seconds (any length when 0; per row: the value at the
    run's first row): the index of the run's first frame, of the frame where it had held long enough, and
    the time of the first frame after it (None when the run reaches the student's last frame). measured:
    when each frame's value was measured (NaT: unknown), if not at the frame's own time: a run has held long
    enough at the first frame measured more than hold_seconds after the run's first frame. first_row: each
    frame's student's first frame (None: all frames are one student's); no run spans two students."""
    for start, raised, stop, reaches_end in _runs(ts, condition, hold_seconds, measured, first_row, None):
        yield start, raised, None if reaches_end else ts.iloc[stop]


def _runs(
    ts: pd.Series,
    condition: np.ndarray,
    hold_seconds: float | np.ndarray,
    measured: pd.Series | None,
    first_row: np.ndarray | None,
    breaks: np.ndarray | None,
) -> Iterator[tuple[int, int, int, bool]]:
    """episodes by rows: first row, raised row, the row after the run, and whether the run reaches the
    student's last row. breaks: rows where a run begins anew (None: none)."""
    condition = np.asarray(condition, bool)
    if not condition.any():
        return
    seconds = _seconds(ts, ts)
    evidence = seconds if measured is None else _seconds(measured, ts)
    holds = np.broadcast_to(np.asarray(hold_seconds, float), condition.shape)
    frames = len(condition)
    new_student = np.zeros(frames + 1, bool)
    new_student[[0, frames]] = True
    if first_row is not None:
        new_student[:frames] |= first_row == np.arange(frames)
    ends = new_student.copy()  # a run ends before these rows: a new student's, or where what happened changed
    if breaks is not None:
        ends[:frames] |= breaks
    # A run starts where the condition holds and did not at the student's previous frame, and ends (exclusive)
    # where it stops holding or the next student begins.
    held_before = np.r_[False, condition[:-1]] & ~ends[:frames]
    held_after = np.r_[condition[1:], False] & ~ends[1:]
    firsts = np.flatnonzero(condition & ~held_before)
    afters = np.flatnonzero(condition & ~held_after) + 1
    for start, end in zip(firsts.tolist(), afters.tolist(), strict=True):
        hold = holds[start]
        held = evidence[start:end] - seconds[start]
        long_enough = np.flatnonzero(held > hold) if hold > 0 else np.array([0])
        if len(long_enough):
            yield start, start + int(long_enough[0]), end, bool(new_student[end])


def _seconds(times: pd.Series[pd.Timestamp], ts: pd.Series[pd.Timestamp]) -> NDArray[np.floating[Any]]:
    """Seconds from the first of `ts` (exact for whole seconds, unlike seconds since the epoch); NaT -> NaN."""
    return (times - ts.iloc[0]).dt.total_seconds().to_numpy()


def _last_rows(frames: pd.DataFrame) -> np.ndarray:
    """Each row's student's last row."""
    student_id = frames["student_id"].to_numpy()
    ends_student = np.r_[student_id[1:] != student_id[:-1], True]
    last = np.flatnonzero(ends_student)
    return last[np.searchsorted(last, np.arange(len(frames)))]


class _Rules:
    """The rules of the module docstring on one frame_signals table, and the windows they share."""

    def __init__(self, frames: pd.DataFrame, config: FlagConfig) -> None:
        self.frames, self.config = frames, config
        rows = len(frames)
        student_id = frames["student_id"].to_numpy()
        starts_student = np.r_[True, student_id[1:] != student_id[:-1]]
        self.first_row = np.maximum.accumulate(np.where(starts_student, np.arange(rows), 0))
        self.last_row = _last_rows(frames)
        self.seconds = _seconds(frames["ts"], frames["ts"])
        self.since_first = self.seconds - self.seconds[self.first_row]
        self.duration = frames["seconds"].to_numpy(float)
        # Time keys that grow by more than any window from one student to the next, so that a window found by
        # searching them never reaches back into the previous student's rows.
        widest = history_seconds(config)
        student_number = np.cumsum(starts_student) - 1
        span = self.seconds.max() - self.seconds.min()
        self.key = self.seconds + student_number * (span + widest + 1)
        # Compared by code: comparing a long column of strings with an enum member, value by value, is slow.
        self._presence_codes, self._presences = pd.factorize(frames["presence"])
        self.present = frames["present"].to_numpy(bool)
        self._after: dict[float, np.ndarray] = {}

    # --- windows -------------------------------------------------------------------------------------------

    def is_presence(self, *values: str) -> np.ndarray:
        """Per row: whether its presence is one of `values`."""
        codes = [code for code, presence in enumerate(self._presences) if presence in values]
        return np.isin(self._presence_codes, codes)

    def first_after(self, seconds: float) -> np.ndarray:
        """Each row's student's first row later than `seconds` before it (kept: the rules share windows)."""
        if seconds not in self._after:
            self._after[seconds] = np.searchsorted(self.key, self.key - seconds, side="right")
        return self._after[seconds]

    def window_first(self, window_seconds: float, lag_seconds: float = 0.0) -> np.ndarray:
        """Each row's first row of its student's (t - lag - window, t - lag]."""
        return self.first_after(lag_seconds + window_seconds)

    def window_sum(self, values: np.ndarray, window_seconds: float, lag_seconds: float = 0.0) -> np.ndarray:
        """The sum of `values` over each row's (t - lag - window, t - lag] of its own student."""
        running = np.r_[0.0, np.cumsum(values)]
        sums: NDArray[np.float64] = (
            running[self.first_after(lag_seconds)] - running[self.window_first(window_seconds, lag_seconds)]
        )
        return sums

    def window_mean(
        self, values: np.ndarray, weights: np.ndarray, window_seconds: float, lag_seconds: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The weighted mean of `values` over the window (NaN where no weight), and the weight there."""
        weight = self.window_sum(weights, window_seconds, lag_seconds)
        total = self.window_sum(np.nan_to_num(values) * weights, window_seconds, lag_seconds)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, total / weight, np.nan), weight

    # --- the rules -----------------------------------------------------------------------------------------

    def raised(self) -> list[_Raised]:
        """Every rule's flags, each rule seeing the flags of those before it that it defers to."""
        camera_off = self.flags(self.camera_off())
        absent_rule, turned_gap = self.absent()
        absent = self.flags(absent_rule)
        looking_away = self.flags(self.looking_away(turned_gap, self.rows_of(absent, from_raise=True)))
        eyes_closed = self.flags(self.eyes_closed())
        negative = self.flags(self.negative())
        others = camera_off + absent + looking_away + eyes_closed + negative
        drop = self.flags(self.drop(self.rows_of(others, from_raise=False)))
        return others + drop

    def flags(self, rule: Rule) -> list[_Raised]:
        """The rule's runs as flags; runs of one student whose evidence overlaps are one flag (the first's
        start, raise and reason, the last's end)."""
        flags: list[_Raised] = []
        for first, raised, stop, _ in _runs(
            self.frames["ts"], rule.condition, rule.hold_seconds, rule.measured, self.first_row, rule.breaks
        ):
            start = first if rule.onset is None else rule.onset(first)
            previous = flags[-1] if flags else None
            broken = rule.breaks is not None and bool(rule.breaks[first])
            same = previous is not None and self.first_row[previous.start] == self.first_row[start]
            if previous and same and start <= previous.stop and not broken:
                flags[-1] = dataclasses.replace(previous, stop=stop)
                continue
            cause = rule.cause if isinstance(rule.cause, str) else rule.cause(start)
            flags.append(_Raised(rule.name, start, raised, stop, rule.describe(start, raised), cause))
        return flags

    def rows_of(self, flags: list[_Raised], from_raise: bool) -> np.ndarray:
        """Rows covered by the flags: from where each was raised (or its evidence began) to its end."""
        covered = np.zeros(len(self.frames) + 1, int)
        for flag in flags:
            covered[flag.raised if from_raise else flag.start] += 1
            covered[flag.stop] -= 1
        return np.cumsum(covered)[:-1] > 0

    def camera_off(self) -> Rule:
        seconds = self.config.absent_seconds
        return Rule(
            "camera_off",
            self.is_presence(Presence.CAMERA_OFF),
            seconds,
            lambda _start, _raised: f"camera off for more than {seconds:g} s",
            "camera off",
        )

    def absent(self) -> tuple[Rule, np.ndarray]:
        """The absent rule, and the rows read as a face turned away rather than absence.

        A stretch without a face is one flag while what it is stays the same: an empty tile, or the student
        gone from the call. Where it turns from one into the other (a student whose face was lost, then who
        left), a new flag begins, saying what happened from then on; the time without a face before it counts
        towards absent_seconds, so a student who leaves after a minute of empty seat is flagged at once."""
        faceless = self.is_presence(Presence.EMPTY, ABSENT)
        gone = self.is_presence(ABSENT)
        rows = len(faceless)
        same_student = np.r_[False, self.first_row[1:] == self.first_row[:-1]]
        faceless_before = np.r_[False, faceless[:-1]] & same_student
        switch = faceless & faceless_before & (gone != np.r_[False, gone[:-1]])
        stretch_first = np.maximum.accumulate(np.where(faceless & ~faceless_before, np.arange(rows), 0))
        run_first = np.maximum.accumulate(np.where(faceless & (~faceless_before | switch), np.arange(rows), 0))
        # A run began turned when the student's row before it was a face turned away from the camera.
        turned_face = self.present & ~self.frames["attentive"].to_numpy(bool)
        before = run_first - 1
        began_turned = (before >= self.first_row) & turned_face[np.maximum(before, 0)]
        began_turned &= self.is_presence(Presence.EMPTY)[run_first]
        gap = self.config.turned_gap_seconds
        without_face_before = self.seconds[run_first] - self.seconds[stretch_first]
        hold = np.where(began_turned, gap, np.maximum(self.config.absent_seconds - without_face_before, 0.0))
        turned_gap = faceless & began_turned & (self.seconds - self.seconds[run_first] <= gap)

        def reason(start: int, _raised: int) -> str:
            if began_turned[start]:
                return f"no face for more than {gap:g} s since the head turned away (seat looks empty)"
            kind = self.frames["presence"].iloc[start]
            return f"no face for more than {self.config.absent_seconds:g} s ({ABSENCE_KINDS.get(kind, kind)})"

        def cause(start: int) -> str:
            if gone[start]:
                return "left the call"
            return "face lost after turning away" if began_turned[start] else "seat empty"

        return Rule("absent", faceless, hold, reason, cause, breaks=switch), turned_gap

    def looking_away(self, turned_gap: np.ndarray, absent_raised: np.ndarray) -> Rule:
        config = self.config
        window, share = config.looking_away_window_seconds, config.looking_away_share
        turned = (self.present & ~self.frames["attentive"].to_numpy(bool)) | turned_gap
        turned_time = turned * self.duration
        away_share = self.window_sum(turned_time, window) / window
        condition = (self.since_first >= window) & (away_share > share) & ~absent_raised
        window_first = self.window_first(window)
        turned_before = np.r_[0.0, np.cumsum(turned_time)]
        time_before = np.r_[0.0, np.cumsum(self.duration)]
        lost_in_window = self.window_sum(turned_gap * self.duration, window) > 0

        def onset(first: int) -> int:
            """The earliest turned row of the window since which the student was turned more than `share`."""
            candidates = np.arange(window_first[first], first + 1)
            turned_since = turned_before[first + 1] - turned_before[candidates]
            time_since = time_before[first + 1] - time_before[candidates]
            mostly = turned[candidates] & (turned_since > share * time_since)
            return int(candidates[np.argmax(mostly)]) if mostly.any() else first

        def reason(_start: int, raised: int) -> str:
            lost = " (face lost while turned)" if lost_in_window[raised] else ""
            return f"head turned away for {away_share[raised]:.0%} of the last {window:g} s{lost}"

        return Rule("looking_away", condition, 0.0, reason, "looking away", onset=onset)

    def eyes_closed(self) -> Rule:
        seconds = self.config.eyes_closed_seconds
        return Rule(
            "eyes_closed",
            self.frames["eyes_closed"].to_numpy(bool),
            seconds,
            lambda _start, _raised: f"eyes closed for more than {seconds:g} s",
            "eyes closed",
            self.frames["eyes_ts"],
        )

    def negative(self) -> Rule:
        config = self.config
        window, baseline_window = config.negative_seconds, config.baseline_seconds
        negative = self.frames["negative"].to_numpy(float)
        seen = self.present & ~np.isnan(negative)
        weight = seen * self.duration
        recent, seen_time = self.window_mean(negative, weight, window)
        own, own_time = self.window_mean(negative, weight, baseline_window, lag_seconds=window)
        engagement, _ = self.window_mean(self.frames["score"].to_numpy(float), self.duration, window)
        covered = seen_time >= window / 2
        class_level = self._class_level(np.where(covered, recent, np.nan))
        floor = np.fmax(config.negative_level, class_level + config.negative_margin)
        calm = engagement < config.negative_max_engagement
        has_baseline = own_time >= baseline_window / 2

        level = np.fmax(floor, own + config.negative_margin)
        condition = covered & calm & has_baseline & (recent >= level)
        window_first = self.window_first(window)

        def onset(first: int) -> int:
            return self._first_in_window(window_first[first], first, seen & (negative >= level[first]))

        def reason(_start: int, raised: int) -> str:
            level = "" if np.isnan(class_level[raised]) else f" and the class's {class_level[raised]:.2f}"
            return (
                f"negative expression over the last {window:g} s: probability {recent[raised]:.2f}, against "
                f"their usual {own[raised]:.2f}{level}"
            )

        return Rule("negative", condition, 0.0, reason, "looking unhappy", onset=onset)

    def drop(self, flagged: np.ndarray) -> Rule:
        config = self.config
        window, baseline_window = config.drop_window_seconds, config.baseline_seconds
        face_time = self.present * self.duration
        score = self.frames["score"].to_numpy(float)
        recent, recent_time = self.window_mean(score, face_time, window)
        own, own_time = self.window_mean(score, face_time, baseline_window, lag_seconds=window)
        quiet = (recent_time >= window / 2) & ~(self.window_sum(flagged.astype(float), window) > 0)
        has_baseline = own_time >= baseline_window / 2

        condition = quiet & has_baseline & (recent < own * (1 - config.drop_fraction))
        window_first = self.window_first(window)

        def onset(first: int) -> int:
            low = self.present & (score < own[first] * (1 - config.drop_fraction))
            return self._first_in_window(window_first[first], first, low)

        return Rule(
            "drop",
            condition,
            0.0,
            lambda _start, raised: f"engagement {recent[raised]:.2f} over the last {window:g} s, "
            f"against the student's own {own[raised]:.2f} before",
            "engagement dropped",
            onset=onset,
        )

    @staticmethod
    def _first_in_window(window_first: int, row: int, evidence: np.ndarray) -> int:
        """The first row from window_first to `row` where `evidence` holds (window_first if none does): where
        a windowed average's evidence began."""
        found = np.flatnonzero(evidence[window_first : row + 1])
        return window_first + int(found[0]) if len(found) else window_first

    def _class_level(self, recent: np.ndarray) -> np.ndarray:
        """Per row, the median of `recent` over the students with a value at the same frame (NaN where fewer
        than CLASS_LEVEL_STUDENTS have one)."""
        distinct, at = np.unique(self.frames["frame"].to_numpy(), return_inverse=True)
        by_frame = pd.Series(recent).groupby(at)
        level = by_frame.median().where(by_frame.count() >= CLASS_LEVEL_STUDENTS)
        return level.reindex(range(len(distinct))).to_numpy(float)[at]
