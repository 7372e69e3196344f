"""The per-session roll-ups (db.schema.SessionRollupRecord): per session, ROLLUP_SECONDS bin and student, the
counts a school view or a live page needs, added to as each frame is written and in the frame's transaction
(db.recorder), so that a roll-up never disagrees with the committed rows.

A frame is written once: its (session, frame number) is unique, so a resent frame (the ingest's
resend-by-frame-number) fails or is acknowledged before anything is added, and is never counted twice.

What the roll-ups give analytics.engagement's score of a bin (db.school_reads.class_lines), and where it
differs from scoring the raw rows:
- every frame of a bin counts the same, where the raw scoring weighs a frame by the time until the next one
  (the same at a steady frame rate; a pause in capture counts less there);
- the expression is 1 minus the frame's own negative-emotion probability, not its mean over the trailing
  score.emotion_window_seconds: a bin's mean of the smoothed values differs by what the window carries over
  its edges;
- a student counts over the frames of the bin they were in; the raw scoring also counts, as 0, the frames of
  the bin after they left the gallery;
- attentive and the negative emotions are those of the configuration in force when the row was written;
  `rebuild` recounts a session's from its rows (after a change, or a merge of students).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select

import config
from config import ScoreConfig
from db.bulk import upsert_rows
from db.schema import PROBABILITY_COLUMNS, observations, session_rollups
from vocabulary.emotions import EMOTIONS
from vocabulary.records import Presence

ROLLUP_SECONDS = 10
# The columns a frame adds to; last_frame and last_presence are replaced by the newer frame's.
SUMMED: tuple[str, ...] = (
    "observations",
    "faces",
    "camera_off",
    "empty",
    "attentive",
    "eyes_open",
    "emotions",
    "emotion_faces",
    "emotion_attentive",
    "emotion_eyes_open",
    "negative",
)
# A roll-up row's key; and its rows by (bin_start, student_id) within one session.
KEY = ("session_id", "bin_start", "student_id")
_Counted = dict[tuple[datetime, int], dict[str, Any]]
# What rebuild reads of each observation: what a recorded row holds that the counts need.
_READ = ("student_id", "frame_index", "ts", "presence", "yaw", "pitch", "eyes_closed", *PROBABILITY_COLUMNS)


@dataclass(frozen=True)
class RollupRule:
    """What makes a row attentive and which emotions are negative (analytics.engagement's definitions)."""

    max_yaw_degrees: float
    max_pitch_degrees: float
    negative_columns: tuple[str, ...]

    @classmethod
    def of(cls, score: ScoreConfig) -> RollupRule:
        negative = tuple(PROBABILITY_COLUMNS[EMOTIONS.index(emotion)] for emotion in score.negative_emotions)
        return cls(score.max_yaw_degrees, score.max_pitch_degrees, negative)

    @classmethod
    def configured(cls) -> RollupRule:
        """The rule of this process's configuration (config.chosen)."""
        return cls.of(config.chosen().engagement.score)


def bin_start(ts: datetime) -> datetime:
    """The ROLLUP_SECONDS bin `ts` falls in, aligned to the epoch as analytics.timeline's bins are."""
    seconds = ts.timestamp()
    return datetime.fromtimestamp(seconds - seconds % ROLLUP_SECONDS, UTC)


def add_frame(connection: Connection, rule: RollupRule, session_id: int, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add the observation rows of one frame or more, in frame order (as db.recorder inserts them, student_id
    set), to their bins."""
    counted = added_rows(rule, session_id, rows)
    if counted:
        upsert_rows(connection, session_rollups, counted, KEY, SUMMED)


def added_rows(rule: RollupRule, session_id: int, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What add_frame upserts: one roll-up row per bin and student of the observation rows, unique by KEY; their
    SUMMED columns are added to a stored row's."""
    return list(_count(rule, session_id, rows).values())


def rebuild(connection: Connection, rule: RollupRule, session_id: int) -> None:
    """Count the session's roll-ups again from its observation rows."""
    connection.execute(delete(session_rollups).where(session_rollups.c.session_id == session_id))
    statement = (
        select(*(observations.c[name] for name in _READ))
        .where(observations.c.session_id == session_id)
        .order_by(observations.c.frame_index, observations.c.id)
    )
    counted: _Counted = {}
    for frame in _frames(dict(row) for row in connection.execute(statement).mappings()):
        for key, row in _count(rule, session_id, frame).items():
            counted[key] = row if key not in counted else _added(counted[key], row)
    if counted:
        upsert_rows(connection, session_rollups, list(counted.values()), KEY, SUMMED)


def _frames(rows: Iterable[Mapping[str, Any]]) -> Iterable[list[Mapping[str, Any]]]:
    frame: list[Mapping[str, Any]] = []
    for row in rows:
        if frame and row["frame_index"] != frame[0]["frame_index"]:
            yield frame
            frame = []
        frame.append(row)
    if frame:
        yield frame


def _count(rule: RollupRule, session_id: int, rows: Iterable[Mapping[str, Any]]) -> _Counted:
    """The frame's rows as roll-up rows, one per student (a student twice in a frame, after a merge, is summed)."""
    counted: _Counted = {}
    for row in rows:
        one = _row_counts(rule, row) | {"session_id": session_id}
        key = (one["bin_start"], one["student_id"])
        counted[key] = one if key not in counted else _added(counted[key], one)
    return counted


def _row_counts(rule: RollupRule, row: Mapping[str, Any]) -> dict[str, Any]:
    # Rows from before the signals existed have no presence: they are faces (db.queries).
    presence = row["presence"] or Presence.FACE.value
    face = presence == Presence.FACE.value
    turned = any(
        value is not None and abs(value) > limit
        for value, limit in ((row["yaw"], rule.max_yaw_degrees), (row["pitch"], rule.max_pitch_degrees))
    )
    attentive = face and not turned
    eyes_open = face and not row["eyes_closed"]
    # Probabilities are stored for all classes or none (db.recorder).
    emotion = row[PROBABILITY_COLUMNS[0]] is not None
    return {
        "bin_start": bin_start(row["ts"]),
        "student_id": row["student_id"],
        "observations": 1,
        "faces": int(face),
        "camera_off": int(presence == Presence.CAMERA_OFF.value),
        "empty": int(presence == Presence.EMPTY.value),
        "attentive": int(attentive),
        "eyes_open": int(eyes_open),
        "emotions": int(emotion),
        "emotion_faces": int(emotion and face),
        "emotion_attentive": int(emotion and attentive),
        "emotion_eyes_open": int(emotion and eyes_open),
        "negative": sum(float(row[column]) for column in rule.negative_columns) if emotion else 0.0,
        "last_frame": row["frame_index"],
        "last_presence": presence,
    }


def _added(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    return newer | {name: older[name] + newer[name] for name in SUMMED}
