"""The flags on now, for the live page: each with the start it has in the whole session's data, and the
teacher's decisions about it (acknowledged, snoozed, muted), all read from the database.

A rule looks at most `history_seconds` back (analytics.flags), so the rows after T give every frame later
than T + that span the conditions the whole session gives it. current_flags reads the last two spans; a flag
whose start falls in the first span (a camera off since long before) may have begun earlier, so its
student's rows are read again from twice as far back, until the start is clear of the span or the read
reaches the session's first frame. A student who left the call has no rows at all in a short read and is
read from just before their last row. So a flag's start, raise and identity (student, rule, start) are
those of the after-class report (analytics.report), the same after a reload, in another tab, and however
often they are recomputed; `known` (the previous call's flags) spares the reads back for flags still on, and
`recent` (rows the caller already holds, analytics.live) spares the first read. Students gone at the same
time are read back together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from analytics.engagement import frame_signals
from analytics.flags import Flag, history_seconds, session_flags
from analytics.settings import EngagementConfig
from db.queries import (
    FlagSilence,
    acknowledged_flags,
    engagement_rows,
    flag_silences_of,
    latest_frame_time,
    student_rows,
)

# The order the live page lists flags in, most urgent first: a student not there at all, then not watching.
RULE_ORDER = ("absent", "camera_off", "eyes_closed", "looking_away", "drop", "negative")


@dataclass(frozen=True)
class ShownFlag:
    """A flag on now, with what the teacher decided about it."""

    flag: Flag
    acknowledged: bool
    silenced_by: FlagSilence | None  # the snooze or mute that hides it now; None: none does

    @property
    def needs_attention(self) -> bool:
        return not self.acknowledged and self.silenced_by is None


def flag_board(
    engine: Engine,
    session_id: int,
    config: EngagementConfig,
    known: Sequence[Flag] = (),
    recent: HeldRows | None = None,
) -> list[ShownFlag]:
    """current_flags (with the caller's known flags and held rows) and the teacher's decisions
    (db.queries.acknowledge_flag, silence_flags): the ones needing attention first, then by RULE_ORDER, then
    the longest-standing first."""
    flags = current_flags(engine, session_id, config, known, recent=recent)
    if not flags:
        return []
    return decided(
        flags,
        acknowledged_flags(engine, session_id),
        flag_silences_of(engine, session_id),
        latest_frame_time(engine, session_id),
    )


def decided(
    flags: Sequence[Flag],
    acknowledged: set[tuple[str, str, datetime]],
    silences: Sequence[FlagSilence],
    at: datetime | None,
) -> list[ShownFlag]:
    """flag_board of `flags`, given the session's acknowledged_flags, flag_silences_of and latest frame `at`.
    The live page scores flags once per time bin (current_flags reads minutes of rows) but applies the
    teacher's decisions at every refresh, so a click shows at the next one."""
    shown = [
        ShownFlag(
            flag,
            (flag.student, flag.rule, flag.start.to_pydatetime()) in acknowledged,
            next((s for s in silences if at is not None and s.covers(flag.student, flag.rule, at)), None),
        )
        for flag in flags
    ]
    return sorted(shown, key=lambda s: (not s.needs_attention, RULE_ORDER.index(s.flag.rule), s.flag.start))


@dataclass(frozen=True)
class _Read:
    since: pd.Timestamp  # rows strictly after this
    students: list[int] | None  # whose rows; None: everyone's
    wanted: set[int] | None  # whose flags to take from it; None: everyone's
    rows_until: pd.Timestamp | None = None  # no rows of theirs later than this (gone students); None: any


@dataclass(frozen=True)
class HeldRows:
    """A session's frames the caller already holds (analytics.live keeps them between passes): every frame
    strictly after `since` (None: the whole session) up to the last frame written, the frame_signals of their
    rows (scored from further back, and with students gone since, as a longer read would), and the session's
    student_rows when the caller read them with the rows (None: not read)."""

    since: datetime | None
    frames: pd.DataFrame
    signals: pd.DataFrame
    people: pd.DataFrame | None = None


def flag_span(config: EngagementConfig) -> timedelta:
    """The rules' span, and the smoothing and eye readings carried from before it (analytics.engagement):
    current_flags reads the last two of these first."""
    return timedelta(
        seconds=history_seconds(config.flags) + config.score.emotion_window_seconds + config.flags.eyes_closed_seconds
    )


def current_flags(
    engine: Engine,
    session_id: int,
    config: EngagementConfig,
    known: Sequence[Flag] = (),
    recent: HeldRows | None = None,
) -> list[Flag]:
    """The flags on at the session's latest frame, each as session_flags over the whole session gives it
    (module docstring), ordered by start. known: the flags of a call made at most a few minutes before
    (history_seconds): a flag still on keeps their start without reading back for it. recent: rows already
    in memory; when they reach back two flag_spans from their last frame (which then counts as the latest),
    the first read is taken from them instead of the database."""
    if recent is not None and len(recent.frames):
        latest = pd.Timestamp(recent.frames["ts"].max())
        if recent.since is not None and pd.Timestamp(recent.since) > latest - 2 * flag_span(config):
            recent = None
    else:
        recent = None
        found_latest = latest_frame_time(engine, session_id)
        if found_latest is None:
            return []
        latest = pd.Timestamp(found_latest)
    if (
        recent is not None
        and recent.people is not None
        and recent.signals["student_id"].drop_duplicates().isin(recent.people["student_id"]).all()
    ):
        people = recent.people
    else:
        people = student_rows(engine, session_id)  # none held, or a student added since the caller's read
    ids = dict(zip(people["student"], people["student_id"].astype(int), strict=True))
    opened = people["first_seen"].min()
    span = flag_span(config)
    earlier = {(flag.student, flag.rule): flag for flag in known if flag.active}
    found: list[Flag] = []
    first = _Read(latest - 2 * span, None, None)
    reads = [first]
    # Students gone at the same time are read together: every rule but `negative` looks at one student's rows
    # only, and a gone student's negative flag cannot be on (no face over its window at the latest frame).
    gone: dict[pd.Timestamp, list[int]] = {}
    left: set[int] = set()
    for key, last in zip(people["student"], people["last_seen"], strict=True):
        if last > first.since:
            continue
        left.add(ids[key])
        # Gone from the call before that read, so absent since: nothing about them changes until they are back.
        if (key, "absent") in earlier:
            found.append(earlier[key, "absent"])
        else:
            gone.setdefault(pd.Timestamp(last), []).append(ids[key])
    for last, students in gone.items():
        reads.append(_Read(last - span, sorted(students), set(students), last))
    while reads:
        read = reads.pop()
        whole = read.since <= opened
        if read is first and recent is not None and (recent.since is None or not whole):
            signals = recent.signals
            if not whole:
                # The rules look back a bounded time, so the signals of a longer read hold for these rows too.
                signals = signals[signals["ts"] > read.since]
        else:
            rows, frames = engagement_rows(
                engine,
                session_id,
                config.score.negative_emotions,
                None if whole else read.since.to_pydatetime(),
                read.students,
                None if read.rows_until is None else read.rows_until.to_pydatetime(),
            )
            signals = rows if rows.empty else frame_signals(rows, frames, config.score)
        if read is first and left:
            # A whole read, or held signals that go on scoring a student after they left (absent), score
            # students gone before the read: their flags are the reads above.
            signals = signals[~signals["student_id"].isin(left)]
        if signals.empty:
            continue
        flags = [flag for flag in session_flags(signals, config.flags) if flag.active]
        unsure: set[int] = set()
        class_wide = False  # a negative flag compares with the whole class: read everyone again for it
        for flag in flags:
            student = ids[flag.student]
            if read.wanted is not None and student not in read.wanted:
                continue
            if whole or flag.start >= read.since + span:
                found.append(flag)
                continue
            previous = earlier.get((flag.student, flag.rule))
            if previous is not None and previous.start <= flag.start:
                found.append(
                    replace(
                        flag, start=previous.start, raised=previous.raised, reason=previous.reason, cause=previous.cause
                    )
                )
                continue
            unsure.add(student)
            class_wide |= flag.rule == "negative"
        if unsure:
            # Whatever else these students have is read again with them.
            found = [flag for flag in found if ids[flag.student] not in unsure]
            further = latest - 2 * (latest - read.since)
            reads.append(_Read(further, None if class_wide else sorted(unsure), unsure, read.rows_until))
    return sorted(found, key=lambda flag: (flag.start, flag.student, flag.rule))
