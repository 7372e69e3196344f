"""Observation rows -> the tables behind the dashboard: emotion counts and shares per time bin, the
class's mood right now and each student's current state.

Pure pandas over the DataFrames of `db.queries`; no SQL and no plotting. An observation counts for the
emotion the model ranked first (its `emotion` column), so a share reads as "this fraction of faces looked happy".
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from vocabulary.emotions import EMOTIONS

BIN_SECONDS = 10
NOW_SECONDS = 10


def emotion_counts(rows: pd.DataFrame, bin_seconds: int = BIN_SECONDS, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Observations per time bin (and per `by` column, e.g. "student") and emotion.

    `rows`: observation rows, or rows already counted in the database (db.queries.emotion_tally), whose
    `observations` column says how many observations each stands for.
    Index: the `by` columns then `bin` (the bin's start, UTC; bins are aligned to multiples of `bin_seconds`
    since the epoch, so counts made from different reads line up and can be added). Columns: EMOTIONS, ints.
    Only bins holding at least one observation appear.
    """
    keys = [*by, "bin"]
    binned = rows.assign(bin=rows["ts"].dt.floor(f"{bin_seconds}s"), observations=rows.get("observations", 1))
    # Counted by class index, named after: naming each of a long session's rows first costs more.
    counts = binned.groupby([*keys, "emotion"])["observations"].sum().unstack("emotion")
    return _typed_counts(counts.reindex(columns=range(len(EMOTIONS))), keys)


def merge_counts(earlier: pd.DataFrame, later: pd.DataFrame) -> pd.DataFrame:
    """The sum of two emotion_counts tables; a bin present in both (the one a read cut through) is added up."""
    merged = earlier.add(later, fill_value=0).sort_index()
    return _typed_counts(merged, list(earlier.index.names))


def counts_since(counts: pd.DataFrame, start: datetime) -> pd.DataFrame:
    """The rows of an emotion_counts table whose bin starts after `start`.

    The bin holding `start` is dropped rather than kept half-counted: a read of the rows after `start`
    fills every bin this keeps.
    """
    return counts[counts.index.get_level_values("bin") > pd.Timestamp(start)]


def emotion_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Each row of an emotion_counts table as fractions of its total (rows sum to 1)."""
    return counts.div(counts.sum(axis=1), axis=0)


def dominant_emotions(counts: pd.DataFrame) -> pd.Series:
    """The most frequent emotion of each row of an emotion_counts table (first in EMOTIONS order on a tie)."""
    return counts.idxmax(axis=1) if len(counts) else pd.Series(dtype=object, index=counts.index)


@dataclass(frozen=True)
class MoodNow:
    """The class's mood over the last few seconds."""

    shares: pd.Series  # index EMOTIONS, sums to 1; all zero when nobody was seen
    faces: int  # observations in the window
    students: int  # distinct students in the window


def mood_now(rows: pd.DataFrame, until: datetime, seconds: int = NOW_SECONDS) -> MoodNow:
    """Emotion shares of the observations in the `seconds` up to `until`."""
    recent = _within(rows, until, seconds)
    counts = recent["emotion"].map(EMOTIONS.__getitem__).value_counts().reindex(list(EMOTIONS), fill_value=0)
    shares = counts / counts.sum() if len(recent) else counts.astype(float)
    return MoodNow(shares=shares, faces=len(recent), students=recent["student"].nunique())


def student_states(
    students: pd.DataFrame, rows: pd.DataFrame, until: datetime, seconds: int = NOW_SECONDS
) -> pd.DataFrame:
    """Every student (db.queries.student_rows order) with `emotion`: their most frequent emotion in the
    `seconds` up to `until`, the latest one winning a tie; None when they were not seen in that time.

    Columns: student, name, first_seen, last_seen, emotion.
    """
    recent = _within(rows, until, seconds)
    # Counted in numpy, not by a pandas groupby: the live page asks at every refresh, for a few hundred rows,
    # where pandas' fixed cost per step was most of the work.
    keys, codes = np.unique(recent["student"].to_numpy(object), return_inverse=True)
    kinds = len(EMOTIONS)
    pairs = codes * kinds + recent["emotion"].to_numpy("int64")
    seen = np.bincount(pairs, minlength=len(keys) * kinds).reshape(len(keys), kinds)
    never = np.iinfo(np.int64).min
    latest_at = np.full(len(keys) * kinds, never)
    np.maximum.at(latest_at, pairs, recent["ts"].to_numpy("datetime64[ns]").view("int64"))
    latest = latest_at.reshape(len(keys), kinds)
    # Most seen, then seen latest; on a tie of both (a student twice in a frame, after a merge) the later class.
    best = (seen == seen.max(axis=1, keepdims=True)) & (seen > 0)
    best &= latest == np.where(best, latest, never).max(axis=1, keepdims=True)
    chosen = kinds - 1 - np.argmax(best[:, ::-1], axis=1)
    tally = dict(zip(keys.tolist(), (EMOTIONS[index] for index in chosen.tolist()), strict=True))
    current = [tally.get(student) for student in students["student"]]
    return students[["student", "name", "first_seen", "last_seen"]].assign(
        emotion=pd.Series(current, dtype=object, index=students.index)
    )


def _within(rows: pd.DataFrame, until: datetime, seconds: int) -> pd.DataFrame:
    end = pd.Timestamp(until)
    return rows[(rows["ts"] > end - timedelta(seconds=seconds)) & (rows["ts"] <= end)]


def _typed_counts(counts: pd.DataFrame, keys: Sequence[Hashable]) -> pd.DataFrame:
    """Integer counts with a fixed column order, including for an empty table (which groupby leaves untyped)."""
    if counts.empty:
        levels = [pd.Index([], dtype=object, name=key) for key in keys[:-1]]
        bins = pd.DatetimeIndex([], tz="UTC", name="bin")
        index = pd.MultiIndex.from_product([*levels, bins]) if levels else bins
        return pd.DataFrame(0, index=index, columns=list(EMOTIONS), dtype="int64")
    counts = counts.fillna(0).astype("int64")
    counts.columns = pd.Index(list(EMOTIONS))
    return counts


# A student's state in a time bin, for the report's heatmap and the per-student timeline: their face showing
# (coloured by engagement), or one of the states without a score.
STATES = ("face", "camera_off", "empty", "absent")
STATE_COLUMNS = ["student_id", "student", "name", "bin", "state", "score", "attentive"]


def state_bins(signals: pd.DataFrame, bin_seconds: int = BIN_SECONDS) -> pd.DataFrame:
    """Per student per time bin, from analytics.engagement.frame_signals: student_id, student, name, bin,
    state (of STATES: the one that held longest in the bin), score (engagement over the bin's face time; NaN
    without any), attentive (the attentive share of that face time). Bins before a student's first appearance
    are left out."""
    seconds = signals["seconds"].to_numpy(dtype=float)
    presence = signals["presence"].to_numpy(dtype=object)
    present = signals["present"].to_numpy(dtype=bool)
    # Numbers only, summed in one pass: grouping the presence text itself cost more than the rest together.
    sums = pd.DataFrame(
        {
            "student_id": signals["student_id"].to_numpy(),
            "bin": signals["ts"].dt.floor(f"{bin_seconds}s").array,
            **{state: seconds * (presence == state) for state in STATES},
            "face_score": seconds * present * signals["score"].to_numpy(dtype=float),
            "attentive_seconds": seconds * signals["attentive"].to_numpy(dtype=bool),
        }
    )
    table = sums.groupby(["student_id", "bin"], sort=True).sum()
    # Ties go to the first of STATES: a bin half face, half camera off reads as face.
    state = np.asarray(STATES, dtype=object)[table[list(STATES)].to_numpy().argmax(axis=1)]
    face_time = table["face"].where(table["face"] > 0)
    people = signals.drop_duplicates("student_id").set_index("student_id")
    table = table.reset_index()
    return pd.DataFrame(
        {
            "student_id": table["student_id"],
            "student": table["student_id"].map(people["student"]),
            "name": table["student_id"].map(people["name"]),
            "bin": table["bin"],
            "state": state,
            "score": (table["face_score"] / face_time.to_numpy()).to_numpy(),
            "attentive": (table["attentive_seconds"] / face_time.to_numpy()).to_numpy(),
        }
    )[STATE_COLUMNS]
