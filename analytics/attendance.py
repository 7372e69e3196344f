"""Attendance, as the participant reports of video-call apps give it: per student when they joined and left,
how long they were present, how long of that with the camera off, and the spells they were away.

Present is in the gallery and in the seat: a face, or a camera-off tile (present but unseen). Away is an empty
seat (the tile shows a camera picture without a face) or no tile at all, between joining and leaving; so
present + away = left - joined for every student.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.engagement import ABSENT
from vocabulary.records import Presence

COLUMNS = [
    "student",
    "name",
    "joined",  # the start of the first frame present
    "left",  # the end of the last frame present (its frame's time plus the time that frame stands for)
    "seconds_present",
    "seconds_camera_off",
    "seconds_away",
    "times_away",
    "away",  # list of (start, end) Timestamps, one per spell away
]
PRESENT = (Presence.FACE.value, Presence.CAMERA_OFF.value)
AWAY = (Presence.EMPTY.value, ABSENT)


def attendance_table(signals: pd.DataFrame | None) -> pd.DataFrame:
    """One row per student in order of first appearance (COLUMNS); `signals`: analytics.engagement.frame_signals.
    A student never present (only ever an empty seat) has no joined or left and no time away."""
    if signals is None or signals.empty:
        return pd.DataFrame(columns=COLUMNS)
    # frame_signals orders rows by student, then time: each student is one slice.
    student_id = signals["student_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, student_id[1:] != student_id[:-1]])
    ends = np.r_[starts[1:], len(student_id)]
    presence = signals["presence"].to_numpy(dtype=object)
    present = np.isin(presence, PRESENT)
    camera_off = presence == Presence.CAMERA_OFF.value
    seconds = signals["seconds"].to_numpy(dtype=float)
    ts = pd.DatetimeIndex(signals["ts"])
    keys, names = signals["student"].to_numpy(dtype=object), signals["name"].to_numpy(dtype=object)
    table: list[tuple[object, ...]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        shown = np.flatnonzero(present[start:end]) + start
        if len(shown) == 0:
            table.append((keys[start], names[start], pd.NaT, pd.NaT, 0.0, 0.0, 0.0, 0, []))
            continue
        first, last = int(shown[0]), int(shown[-1])
        span = slice(first, last + 1)
        away = _spells(~present[span], ts[span], seconds[span])
        table.append(
            (
                keys[start],
                names[start],
                ts[first],
                ts[last] + pd.Timedelta(seconds=seconds[last]),
                float(seconds[span][present[span]].sum()),
                float(seconds[span][camera_off[span]].sum()),
                float(seconds[span][~present[span]].sum()),
                len(away),
                away,
            )
        )
    return pd.DataFrame(table, columns=COLUMNS)


def _spells(away: np.ndarray, ts: pd.DatetimeIndex, seconds: np.ndarray) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The runs of `away` frames, each from its first frame's time to the first present frame's."""
    edges = np.diff(np.r_[0, away.astype(np.int8), 0])
    return [
        (ts[begin], ts[stop - 1] + pd.Timedelta(seconds=seconds[stop - 1]))
        for begin, stop in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    ]
