"""Engagement from the stored signals: a score in [0, 1] per student per frame, per time bin, and class-wide.

Every analysed frame counts for every student from their first appearance on, so a student missing from a
frame (their tile gone from the gallery) is absent in it. Per student and frame, each component is 0 or 1
except the expression:

    present     the face shows
    attentive   the face shows and the head is within score.max_yaw_degrees / max_pitch_degrees of the camera
                (a face whose pose is unknown counts as attentive)
    eyes_open   the face shows and the eyes are not closed (unknown eyes count as open)
    expression  the face shows, 1 minus the smoothed probability of a negative emotion (score.negative_emotions):
                their summed probability averaged over the trailing score.emotion_window_seconds

    score = sum(weight * component) / sum(weight), with the weights of config/classpulse.toml [score.weights]

A frame without a face scores 0. A session captured without emotions (attention-only) has no expression
component: its weight drops out and the others share the whole. A bin's score is the time-weighted mean
of its frames; the class score of a bin is the mean over the students in the gallery during that bin
(a student who left the call stops counting; one with the camera off or an empty seat counts as 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.settings import ScoreConfig
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Presence

# What stands in a student's frame when no row does: they were not in the gallery at all (not a
# vocabulary.records.Presence, which says what a tile in the gallery shows).
ABSENT = "absent"
# A frame stands for the time until the next one, but a pause in capture longer than this many typical
# frame intervals is not counted as time the class was watched.
MAX_GAP_INTERVALS = 5.0


def frame_signals(
    rows: pd.DataFrame,
    frames: pd.DataFrame,
    config: ScoreConfig,
    students: pd.DataFrame | None = None,
    from_frame: int | None = None,
) -> pd.DataFrame:
    """One row per student per frame from their first appearance on, ordered by student then time.

    rows, frames: what db.queries.engagement_rows reads (frames: frame_rows). Columns: student_id, student, name,
    frame, ts, seconds (the time the frame stands for), presence (face, camera_off, empty or absent), present,
    attentive, eyes_closed (bools), eyes_ts (when the eyes of the row were measured), emotion (the frame's
    class index), negative (smoothed; both NaN without an emotion), score.

    For scoring a few new frames of a longer read (analytics.live): students, indexed by student_id with
    student, name and first_frame, are the students to score (default: those of `rows`; one of `rows` missing
    from it is added); from_frame: only frames from this one on are scored, `rows` then needing only the
    smoothing window before it and `frames` as far back as a frame's time and eyes reading look.
    """
    people = students_of(rows, students)
    frame, ts = frames["frame"].to_numpy(), frames["ts"]
    seconds = frame_seconds(ts).to_numpy()
    # The grid: each student at every frame from their first on, student by student. Built and filled from
    # numpy arrays, and the names attached last: on a long class, pandas merges and copies of object columns
    # cost more than the scoring itself.
    on = frame[None, :] >= people["first_frame"].to_numpy()[:, None]
    if from_frame is not None:
        on &= frame[None, :] >= from_frame
    row, at = np.nonzero(on)
    student_id = people.index.to_numpy()[row]
    observed = smoothed_negative(rows, config.emotion_window_seconds)
    stride = int(max(frame.max(initial=0), observed["frame"].max()) + 1)
    keys = pd.Index(observed["student_id"].to_numpy() * stride + observed["frame"].to_numpy())
    if not keys.is_unique:  # two merged students both in one frame: the student's first row of it counts
        observed, keys = observed[~keys.duplicated()], keys[~keys.duplicated()]
    found = keys.get_indexer(student_id * stride + frame[at])
    missing = found < 0

    def signal(column: str, fill: str | float, dtype: type[object] = float) -> np.ndarray:
        values: np.ndarray = observed[column].to_numpy(dtype=dtype, na_value=fill).take(found)
        values[missing] = fill
        return values

    presence = signal("presence", ABSENT, object)
    present = presence == Presence.FACE
    turned = (np.abs(signal("yaw", np.nan)) > config.max_yaw_degrees) | (
        np.abs(signal("pitch", np.nan)) > config.max_pitch_degrees
    )
    # The landmark models read a few faces' eyes per frame; the other rows carry a reading landmarks_age frames
    # old (NaT when that frame is before `frames`; rows stored without an age count as measured at their frame).
    measured = frame[at] - signal("landmarks_age", 0.0).astype("int64")
    table = pd.DataFrame(
        {
            "student_id": student_id,
            "student": people["student"].to_numpy()[row],
            "name": people["name"].to_numpy()[row],
            "frame": frame[at],
            "ts": ts.iloc[at].reset_index(drop=True),
            "seconds": seconds[at],
            "presence": presence,
            "present": present,
            "attentive": present & ~turned,
            "eyes_closed": present & signal("eyes_closed", False, bool),
            "eyes_ts": pd.Series(measured).map(pd.Series(ts.array, index=frame)),
            "emotion": signal("emotion", np.nan),
            "negative": signal("negative", np.nan),
        }
    )
    table["score"] = _score(table, config)
    if not ts.is_monotonic_increasing:  # frames are read in frame order; times follow it but for clock jumps
        table = table.sort_values(["student_id", "ts"], kind="stable", ignore_index=True)
    return table


def students_of(table: pd.DataFrame, known: pd.DataFrame | None = None) -> pd.DataFrame:
    """The students of `table` (engagement rows or frame_signals), indexed by student_id with student, name and
    first_frame; with `known` (the same columns), those known kept as they are and the others added."""
    if known is not None:
        table = table[~table["student_id"].isin(known.index)]
        if table.empty:  # (grouping no rows at all costs more than scoring a few frames)
            return known
    found = table.groupby("student_id", sort=True).agg(
        student=("student", "first"), name=("name", "first"), first_frame=("frame", "min")
    )
    return found if known is None else pd.concat([known[found.columns], found]).sort_index()


def frame_seconds(ts: pd.Series[pd.Timestamp]) -> pd.Series[float]:
    """The time each frame stands for: until the next frame, capped at MAX_GAP_INTERVALS typical intervals;
    the last frame gets the typical interval (1 s for a single frame)."""
    gaps = ts.diff().dt.total_seconds().shift(-1)
    typical = float(gaps.median()) if gaps.notna().any() else 1.0
    return gaps.fillna(typical).clip(upper=typical * MAX_GAP_INTERVALS)


def smoothed_negative(rows: pd.DataFrame, window_seconds: float) -> pd.DataFrame:
    """rows with `negative` replaced by its mean over the student's trailing window (rows without an emotion
    neither count nor change); NaN stays NaN. One flickering frame does not make a sad face.

    Each mean is summed afresh from the rows of its own window, newest first, so a row's value is the same
    to the last bit wherever the read began (the live page scores only new frames with the window's rows
    before them, and must agree with a whole read); a running sum such as pandas' rolling mean carries
    rounding from the rows before."""
    with_emotion = rows[rows["negative"].notna()]
    if with_emotion.empty:
        return rows
    ordered = with_emotion.sort_values(["student_id", "ts"], kind="stable")
    student = ordered["student_id"].to_numpy()
    ns = ordered["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
    window = int(round(window_seconds * 1000)) * 1_000_000  # whole milliseconds, as before
    values = ordered["negative"].to_numpy(float)
    total, count = values.copy(), np.ones(len(values))
    # Lag by lag: the rows `lag` before each row, while some are still its student's and within its window
    # (rows are by student, then time, so a row's window ends at the first lag that leaves it).
    for lag in range(1, len(values)):
        inside = (student[lag:] == student[:-lag]) & (ns[:-lag] > ns[lag:] - window)
        if not inside.any():
            break
        total[lag:] += np.where(inside, values[:-lag], 0.0)
        count[lag:] += inside
    smoothed = rows.copy()
    smoothed.loc[ordered.index, "negative"] = total / count
    return smoothed


def _score(table: pd.DataFrame, config: ScoreConfig) -> pd.Series:
    weights = config.weights
    present = table["present"].to_numpy(float)
    score = (
        weights.present * present
        + weights.attentive * table["attentive"].to_numpy(float)
        + weights.eyes_open * present * (~table["eyes_closed"]).to_numpy(float)
    )
    total = np.full(len(table), weights.present + weights.attentive + weights.eyes_open)
    # The expression counts only where an emotion was inferred; elsewhere its weight drops out.
    expression = (1 - table["negative"]).to_numpy(float)
    has_expression = ~np.isnan(expression)
    score = score + np.where(has_expression, weights.expression * np.nan_to_num(expression), 0)
    total = total + np.where(has_expression, weights.expression, 0)
    return pd.Series(np.divide(score, total, out=np.zeros(len(table)), where=total > 0), index=table.index)


def student_bins(signals: pd.DataFrame, bin_seconds: int) -> pd.DataFrame:
    """Per student per time bin (bins aligned to multiples of bin_seconds since the epoch, as in
    analytics.timeline): student_id, student, name, bin, score, present, attentive (time-weighted shares)."""
    seconds = signals["seconds"].to_numpy(float)
    weighted = pd.DataFrame(
        {
            "student_id": signals["student_id"],
            "bin": signals["ts"].dt.floor(f"{bin_seconds}s"),
            "seconds": seconds,
            "score": signals["score"].to_numpy(float) * seconds,
            "present": signals["present"].to_numpy(float) * seconds,
            "attentive": signals["attentive"].to_numpy(float) * seconds,
            "in_gallery": (signals["presence"] != ABSENT).to_numpy(int),
        },
        index=signals.index,
    )
    # Numbers only, summed, and each student's key and name looked up once: aggregating object columns per
    # group cost more than the sums (the live page bins a few new bins at every scoring pass).
    grouped = weighted.groupby(["student_id", "bin"], sort=True).sum()
    grouped["in_gallery"] = grouped["in_gallery"] > 0
    for column in ("score", "present", "attentive"):
        grouped[column] = grouped[column] / grouped["seconds"].where(grouped["seconds"] > 0)
    table = grouped.reset_index()
    people = signals.drop_duplicates("student_id").set_index("student_id")
    table.insert(2, "student", table["student_id"].map(people["student"]).astype(object))
    table.insert(3, "name", table["student_id"].map(people["name"]).astype(object))
    return table


def class_bins(per_student: pd.DataFrame) -> pd.DataFrame:
    """Class-wide per bin, from student_bins: bin, students (in the gallery), present, attentive, score (means
    over those students)."""
    columns = ["bin", "students", "present", "attentive", "score"]
    in_gallery = per_student[per_student["in_gallery"]]
    if in_gallery.empty:
        return pd.DataFrame(columns=columns)
    table = in_gallery.groupby("bin", sort=True).agg(
        students=("student_id", "nunique"),
        present=("present", "mean"),
        attentive=("attentive", "mean"),
        score=("score", "mean"),
    )
    return table.reset_index()[columns]


def emotion_shares(signals: pd.DataFrame) -> pd.DataFrame:
    """Per student: the share of their face time in which each emotion was the frame's classification.
    Index student_id, columns EMOTIONS; NaN for a student with no emotion at all (attention-only)."""
    faces = signals[signals["present"] & signals["emotion"].notna()]
    seconds = (
        faces.groupby(["student_id", faces["emotion"].astype(int)])["seconds"]
        .sum()
        .unstack("emotion")
        .reindex(index=signals["student_id"].unique(), columns=range(len(EMOTIONS)))
        .fillna(0)
        .set_axis(list(EMOTIONS), axis=1)
    )
    totals = seconds.sum(axis=1)
    return seconds.div(totals.where(totals > 0), axis=0)
