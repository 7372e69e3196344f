"""The after-class report of one session, as CSV files in a folder:

students.csv  per student: first and last face, time present (face showing), camera off, attentive, mean
              engagement (over the time their face showed), emotion shares (empty for an attention-only
              session), flags raised and their reasons
attendance.csv per student: joined, left, time present, camera off, time away, times away and when
              (analytics.attendance)
class.csv     the class summary per time bin: students in the gallery, present and attentive shares,
              class engagement score
flags.csv     every flag: student, rule, reason, start, raised, end (empty while still on)

Times are ISO 8601 in UTC to the second with a Z (2025-03-04T09:00:00Z).

`session_tables` computes them (the dashboard's report page shows the same tables), `engagement_drops`
finds the moments the class score fell most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd
from sqlalchemy import Engine

from analytics.attendance import attendance_table
from analytics.csv_file import spreadsheet_safe, write_csv
from analytics.engagement import class_bins, emotion_shares, frame_signals, student_bins
from analytics.export import ExportError, iso_utc
from analytics.flags import Flag, session_flags
from analytics.settings import EngagementConfig
from analytics.timeline import BIN_SECONDS, STATE_COLUMNS, emotion_counts, state_bins
from db.queries import SessionInfo, engagement_rows, find_session, store_mean_engagement, student_emotions
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Presence

DECIMALS = 3
CSV_FORMAT = {"index": False, "float_format": f"%.{DECIMALS}f"}
# A drop is measured from the highest class score in this span before a bin to that bin.
DROP_SPAN_SECONDS = 60
# A student's own timeline has at most about this many bins: wider bins on a long class keep it readable.
STUDENT_TIMELINE_BINS = 240


@dataclass(frozen=True)
class ReportFiles:
    students: int  # rows written to each file
    attendance: int
    bins: int
    flags: int


@dataclass(frozen=True)
class SessionTables:
    """A session's tables, all from one read of its rows; student_bins and class_bins are None for a session
    without rows."""

    flags: list[Flag]
    students: pd.DataFrame  # student_table
    student_bins: pd.DataFrame | None  # analytics.engagement.student_bins
    class_bins: pd.DataFrame | None  # analytics.engagement.class_bins
    emotion_counts: pd.DataFrame  # analytics.timeline.emotion_counts of every face with an emotion
    attendance: pd.DataFrame  # analytics.attendance.attendance_table
    states: pd.DataFrame | None  # analytics.timeline.state_bins


def session_tables(engine: Engine, session_id: int, config: EngagementConfig) -> SessionTables:
    """Score the whole session and raise its flags (raises db.errors.DatabaseError)."""
    rows, frames = engagement_rows(engine, session_id, config.score.negative_emotions)
    signals = frame_signals(rows, frames, config.score) if len(rows) else None
    flags = session_flags(signals, config.flags) if signals is not None else []
    per_student = student_bins(signals, config.score.bin_seconds) if signals is not None else None
    per_bin = class_bins(per_student) if per_student is not None else None
    labelled = rows[rows["emotion"].notna() & (rows["presence"] == Presence.FACE)]
    return SessionTables(
        flags,
        student_table(signals, flags),
        per_student,
        per_bin,
        emotion_counts(labelled.astype({"emotion": "int64"})),
        attendance_table(signals),
        state_bins(signals, config.score.bin_seconds) if signals is not None else None,
    )


@dataclass(frozen=True)
class StudentTimeline:
    """One student's session, bin by bin, for the report's per-student view."""

    bin_seconds: int
    states: pd.DataFrame  # analytics.timeline.state_bins of the student alone
    # Per bin with a classified face: bin, emotion (the name of the one shown most), share (of the bin's
    # faces), confidence (the mean probability the model gave it on those faces: how sure it was).
    emotions: pd.DataFrame
    flags: list[Flag]  # the student's flags of the whole session


def student_timeline(
    engine: Engine, session_id: int, student_id: int, flags: list[Flag], config: EngagementConfig
) -> StudentTimeline:
    """The timeline of the student with id `student_id`, read alone (a few thousand rows on a long class);
    `flags`: the session's (SessionTables.flags), of which theirs are kept."""
    rows, frames = engagement_rows(engine, session_id, config.score.negative_emotions, student_ids=[student_id])
    span = (frames["ts"].max() - frames["ts"].min()).total_seconds() if len(frames) else 0.0
    bin_seconds = BIN_SECONDS * max(1, math.ceil(span / STUDENT_TIMELINE_BINS / BIN_SECONDS))
    if not len(rows):
        return StudentTimeline(bin_seconds, pd.DataFrame(columns=STATE_COLUMNS), _no_emotions(), [])
    signals = frame_signals(rows, frames, config.score)
    key = signals["student"].iloc[0]
    faces = student_emotions(engine, session_id, student_id)
    return StudentTimeline(
        bin_seconds,
        state_bins(signals, bin_seconds),
        _dominant_per_bin(faces, bin_seconds),
        [flag for flag in flags if flag.student == key],
    )


def _dominant_per_bin(faces: pd.DataFrame, bin_seconds: int) -> pd.DataFrame:
    if faces.empty:
        return _no_emotions()
    binned = faces.assign(bin=faces["ts"].dt.floor(f"{bin_seconds}s"))
    per_emotion = binned.groupby(["bin", "emotion"]).agg(faces=("frame", "size"), confidence=("confidence", "mean"))
    totals = per_emotion.groupby(level="bin")["faces"].transform("sum")
    leading = per_emotion.assign(share=per_emotion["faces"] / totals).sort_values(
        "faces", ascending=False, kind="stable"
    )
    leading = leading.reset_index().drop_duplicates("bin").sort_values("bin")
    return pd.DataFrame(
        {
            "bin": leading["bin"].to_numpy(),
            "emotion": [EMOTIONS[index] for index in leading["emotion"]],
            "share": leading["share"].to_numpy(),
            "confidence": leading["confidence"].to_numpy(),
        }
    )


def _no_emotions() -> pd.DataFrame:
    return pd.DataFrame(columns=["bin", "emotion", "share", "confidence"])


def mean_engagement(tables: SessionTables) -> float | None:
    """The session's class engagement score averaged over its time bins (None without any)."""
    if tables.class_bins is None or tables.class_bins.empty:
        return None
    return float(tables.class_bins["score"].astype(float).mean())


def score_session(engine: Engine, session: SessionInfo, config: EngagementConfig) -> SessionTables:
    """session_tables, and for an ended session its mean_engagement kept in the database for the sessions
    list (db.queries.store_mean_engagement)."""
    tables = session_tables(engine, session.id, config)
    if session.ended_at is not None:
        store_mean_engagement(engine, session.id, mean_engagement(tables))
    return tables


def engagement_drops(per_bin: pd.DataFrame | None, top: int = 3, span_seconds: int = DROP_SPAN_SECONDS) -> pd.DataFrame:
    """The `top` largest falls of the class score (class_bins): for each bin, from the highest score in the
    `span_seconds` before it down to it; the largest first, none within span_seconds of a larger one.
    Columns: start (the bin of the higher score), end, before, after, drop; empty when it never fell."""
    columns = ["start", "end", "before", "after", "drop"]
    if per_bin is None or per_bin.empty:
        return pd.DataFrame(columns=columns)
    score = per_bin.set_index("bin")["score"].astype(float)
    # Previous bins within the span (not this one): a time-based window that closes before the bin.
    highest = score.rolling(f"{span_seconds}s", closed="left").max()
    candidates = pd.DataFrame({"before": highest, "after": score, "drop": highest - score})
    candidates = candidates[candidates["drop"] > 0].sort_values("drop", ascending=False, kind="stable")
    chosen: list[tuple[pd.Timestamp, pd.Timestamp, float, float, float]] = []
    # pandas-stubs type row labels as Hashable (iterrows) or int | str (idxmax); these are the bins' Timestamps.
    for label, row in candidates.iterrows():
        end = cast(pd.Timestamp, label)
        if len(chosen) == top:
            break
        if any(abs((end - earlier[1]).total_seconds()) < span_seconds for earlier in chosen):
            continue
        window = score[(score.index >= end - pd.Timedelta(seconds=span_seconds)) & (score.index < end)]
        chosen.append((cast(pd.Timestamp, window.idxmax()), end, row["before"], row["after"], row["drop"]))
    return pd.DataFrame(chosen, columns=columns)


def write_report(engine: Engine, session_name: str, out: Path, config: EngagementConfig) -> ReportFiles:
    """Write the session's report into folder `out` (created if needed).

    Raises db.errors.DatabaseError for an unknown session or unreadable database, ExportError when the
    folder can't be written.
    """
    tables = session_tables(engine, find_session(engine, session_name).id, config)
    students = students_file(tables.students)
    attendance = attendance_file(tables.attendance)
    class_table = _class_table(tables.class_bins)
    flag_table = pd.DataFrame(
        [
            (f.student, f.name, f.rule, f.reason, iso_utc(f.start), iso_utc(f.raised), iso_utc(f.end))
            for f in tables.flags
        ],
        columns=["student", "name", "rule", "reason", "start", "raised", "end"],
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "students.csv": students,
            "attendance.csv": attendance,
            "class.csv": class_table,
            "flags.csv": flag_table,
        }
        for file, table in files.items():
            write_csv(table, out / file, **CSV_FORMAT)
    except OSError as exc:
        raise ExportError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    return ReportFiles(len(students), len(attendance), len(class_table), len(flag_table))


def student_table(signals: pd.DataFrame | None, flags: list[Flag]) -> pd.DataFrame:
    """One row per student in order of first appearance (see the module docstring)."""
    shares = [f"share_{emotion}" for emotion in EMOTIONS]
    columns = [
        "student",
        "name",
        "first_seen",
        "last_seen",
        "seconds_present",
        "seconds_camera_off",
        "seconds_attentive",
        "attentive_share",
        "engagement",
        "dominant",
        *shares,
        "flags",
        "flag_reasons",
    ]
    if signals is None:
        return pd.DataFrame(columns=columns)
    timed = signals.assign(
        present_s=signals["seconds"] * signals["present"],
        camera_off_s=signals["seconds"] * (signals["presence"] == Presence.CAMERA_OFF),
        attentive_s=signals["seconds"] * signals["attentive"],
        # Over the time their face showed: time away or with the camera off is its own state, not a score of 0.
        weighted_score=signals["seconds"] * signals["score"] * signals["present"],
        face_ts=signals["ts"].where(signals["present"]),
    )
    table = timed.groupby("student_id", sort=True).agg(
        student=("student", "first"),
        name=("name", "first"),
        first_seen=("face_ts", "min"),
        last_seen=("face_ts", "max"),
        seconds_present=("present_s", "sum"),
        seconds_camera_off=("camera_off_s", "sum"),
        seconds_attentive=("attentive_s", "sum"),
        weighted_score=("weighted_score", "sum"),
    )
    table["attentive_share"] = table["seconds_attentive"] / table["seconds_present"].where(table["seconds_present"] > 0)
    table["engagement"] = table["weighted_score"] / table["seconds_present"].where(table["seconds_present"] > 0)
    table[shares] = emotion_shares(signals).reindex(table.index).to_numpy()
    # The emotion they showed most of their face time; None without any (attention-only, never present).
    leading = table[shares].fillna(-1).to_numpy().argmax(axis=1)
    has_emotion = table[shares].notna().any(axis=1)
    table["dominant"] = [EMOTIONS[i] if has else None for i, has in zip(leading, has_emotion, strict=True)]
    by_student: dict[str, list[Flag]] = {}
    for flag in flags:
        by_student.setdefault(flag.student, []).append(flag)
    table["flags"] = table["student"].map(lambda key: len(by_student.get(key, [])))
    table["flag_reasons"] = table["student"].map(
        lambda key: "; ".join(f"{iso_utc(f.start)} {f.rule}: {f.reason}" for f in by_student.get(key, []))
    )
    return table.reset_index(drop=True)[columns]


def students_file(students: pd.DataFrame) -> pd.DataFrame:
    """student_table as students.csv holds it (the dashboard's download too): times in ISO 8601 UTC, names and
    reasons made spreadsheet-safe (analytics.csv_file)."""
    return spreadsheet_safe(
        students.assign(first_seen=students["first_seen"].map(iso_utc), last_seen=students["last_seen"].map(iso_utc))
    )


def attendance_file(attendance: pd.DataFrame) -> pd.DataFrame:
    """attendance_table as attendance.csv holds it (the dashboard's download too): times in ISO 8601 UTC, the
    spells away as "start/end" intervals separated by spaces."""
    return spreadsheet_safe(
        attendance.assign(
            joined=attendance["joined"].map(iso_utc),
            left=attendance["left"].map(iso_utc),
            away=attendance["away"].map(lambda spells: " ".join(f"{iso_utc(a)}/{iso_utc(b)}" for a, b in spells)),
        )
    )


def _class_table(per_bin: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["bin", "students", "present", "attentive", "engagement"]
    if per_bin is None or per_bin.empty:
        return pd.DataFrame(columns=columns)
    return per_bin.rename(columns={"score": "engagement"}).assign(bin=per_bin["bin"].map(iso_utc))[columns]
