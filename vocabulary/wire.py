"""A FrameResult as JSON, the form in which capture sends it to the school's server (capture.sender ->
dashboard.ingest): only the numbers and names the recorder writes, never an image.

The server trusts nothing in it: `frame_from_json` checks every field's type, range and size and names the first
one that is wrong, so that a bad frame is refused with one clear line before anything is written.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import numpy as np

from vocabulary.emotions import EMOTIONS
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

# Where the school's server takes frames (dashboard.ingest), under its base URL.
INGEST_PATH = "/api/ingest"
# Frames per request: a capture catching up after an outage sends its backlog in batches this size.
MAX_BATCH = 50
# A 7x7 gallery has 49 tiles; a tracker over a large screen may see more, but never hundreds.
MAX_OBSERVATIONS = 500
MAX_FRAME_INDEX = 2**31 - 1  # the frames table's 32-bit column
MAX_AGE = MAX_FRAME_INDEX
MAX_KEY_LENGTH = 64  # students.key
MAX_NAME_LENGTH = 200  # students.display_name
MAX_CLASS_LENGTH = 200  # classes.name
MAX_COORDINATE = 100_000  # pixels: far beyond any screen, well inside the 32-bit columns
MAX_PROCESSING_MS = 3_600_000.0
MAX_EYE_RATIO = 10.0
MAX_ANGLE = 180.0
# A softmax sums to 1 up to rounding; more than this off is not a probability vector.
PROBABILITY_SUM_TOLERANCE = 0.01
EARLIEST_YEAR, LATEST_YEAR = 2000, 2200

_OBSERVATION_FIELDS = frozenset(
    {"student", "tile", "box", "probabilities", "emotion", "presence", "yaw", "pitch", "eye_ratio", "eyes_closed",
     "landmarks_age"}
)  # fmt: skip
_FRAME_FIELDS = frozenset({"frame", "ts", "processing_ms", "names", "observations"})
# What no key or name may hold: control characters and unpaired surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\ud800-\udfff]")


class WireError(ValueError):
    """A payload that is not a valid frame; the message names the field and what is wrong with it."""


def frame_to_json(result: FrameResult) -> dict[str, Any]:
    return {
        "frame": result.frame_index,
        "ts": result.timestamp.isoformat(),
        "processing_ms": _finite_or_none(result.processing_ms) or 0.0,
        "names": dict(result.student_names),
        "observations": [_observation_to_json(o) for o in result.observations],
    }


def _observation_to_json(o: Observation) -> dict[str, Any]:
    signals = o.signals or FaceSignals(Presence.FACE)
    return {
        "student": o.student_key,
        "tile": None if o.tile is None else _box_to_json(o.tile),
        "box": _box_to_json(o.box),
        "probabilities": None if o.probabilities is None else [float(p) for p in o.probabilities],
        "emotion": None if o.emotion is None else int(o.emotion),
        "presence": signals.presence.value,
        # A signal that could not be measured may come out as NaN; JSON has no NaN, and the database reads it as
        # "not measured" either way.
        "yaw": _finite_or_none(signals.yaw),
        "pitch": _finite_or_none(signals.pitch),
        "eye_ratio": _finite_or_none(signals.eye_ratio),
        "eyes_closed": None if signals.eyes_closed is None else bool(signals.eyes_closed),
        "landmarks_age": None if signals.landmarks_age is None else int(signals.landmarks_age),
    }


def _box_to_json(box: Box) -> list[int]:
    return [int(box.x), int(box.y), int(box.w), int(box.h)]


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def class_name(value: object, where: str = "class") -> str:
    """A class's name (`capture --class`, the session-open message's "class"), without surrounding spaces;
    WireError for a blank, too long or unprintable one."""
    return _text(value, where, MAX_CLASS_LENGTH).strip()


def frame_from_json(data: object, where: str = "frame") -> FrameResult:
    """The FrameResult `data` describes; WireError, naming the field (`where` first), for anything out of place."""
    frame = _object(data, where, _FRAME_FIELDS, required=_FRAME_FIELDS)
    index = _integer(frame["frame"], f"{where}.frame", 0, MAX_FRAME_INDEX)
    where = f"frame {index}"
    raw_observations = frame["observations"]
    if not isinstance(raw_observations, list):
        raise WireError(f"{where}: observations must be a list")
    if len(raw_observations) > MAX_OBSERVATIONS:
        raise WireError(f"{where}: {len(raw_observations)} observations, at most {MAX_OBSERVATIONS} are accepted")
    observations = [_observation(o, f"{where}: observation {i}") for i, o in enumerate(raw_observations)]
    keys = [o.student_key for o in observations]
    if len(set(keys)) != len(keys):
        raise WireError(f"{where}: a student appears twice in one frame")
    return FrameResult(
        frame_index=index,
        timestamp=_timestamp(frame["ts"], f"{where}: ts"),
        observations=observations,
        processing_ms=_number(frame["processing_ms"], f"{where}: processing_ms", 0.0, MAX_PROCESSING_MS),
        student_names=_names(frame["names"], f"{where}: names"),
    )


def _observation(data: object, where: str) -> Observation:
    o = _object(data, where, _OBSERVATION_FIELDS, required=_OBSERVATION_FIELDS)
    probabilities = _probabilities(o["probabilities"], f"{where}: probabilities")
    emotion = _optional(o["emotion"], lambda v: _integer(v, f"{where}: emotion", 0, len(EMOTIONS) - 1))
    if (probabilities is None) != (emotion is None):
        raise WireError(f"{where}: probabilities and emotion must be given together, or both be null")
    presence = o["presence"]
    if presence not in {p.value for p in Presence}:
        raise WireError(f"{where}: presence must be one of {', '.join(p.value for p in Presence)}")
    eyes_closed = o["eyes_closed"]
    if eyes_closed is not None and not isinstance(eyes_closed, bool):
        raise WireError(f"{where}: eyes_closed must be true, false or null")
    signals = FaceSignals(
        presence=Presence(presence),
        yaw=_optional_number(o["yaw"], where, "yaw", -MAX_ANGLE, MAX_ANGLE),
        pitch=_optional_number(o["pitch"], where, "pitch", -MAX_ANGLE, MAX_ANGLE),
        eye_ratio=_optional_number(o["eye_ratio"], where, "eye_ratio", 0.0, MAX_EYE_RATIO),
        eyes_closed=eyes_closed,
        landmarks_age=_optional(
            o["landmarks_age"], lambda v: _integer(v, f"{where}: landmarks_age", 0, MAX_FRAME_INDEX)
        ),
    )
    return Observation(
        student_key=_text(o["student"], f"{where}: student", MAX_KEY_LENGTH),
        tile=None if o["tile"] is None else _box(o["tile"], where, "tile"),
        box=_box(o["box"], where, "box"),
        probabilities=probabilities,
        emotion=emotion,
        signals=signals,
    )


def _object(data: object, where: str, allowed: frozenset[str], required: frozenset[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WireError(f"{where} must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise WireError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(required - set(data))
    if missing:
        raise WireError(f"{where}: missing field {missing[0]!r}")
    return data


def _optional(value: object, read: Any) -> Any:
    return None if value is None else read(value)


def _optional_number(value: object, where: str, name: str, low: float, high: float) -> float | None:
    # The message is formatted only for a value that is wrong.
    if type(value) is float and low <= value <= high:  # NaN fails the comparison
        return value
    return None if value is None else _number(value, f"{where}: {name}", low, high)


def _integer(value: object, where: str, low: int, high: int) -> int:
    # bool is an int in Python, not in the payload's meaning.
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"{where} must be a whole number")
    if not low <= value <= high:
        raise WireError(f"{where} must be from {low} to {high}, not {value}")
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise WireError(f"{where} must be a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise WireError(f"{where} must be from {low:g} to {high:g}, not {value}")
    return float(value)


def _text(value: object, where: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WireError(f"{where} must be a non-blank string")
    if len(value) > max_length:
        raise WireError(f"{where} must have at most {max_length} characters")
    if _UNPRINTABLE.search(value):
        raise WireError(f"{where} must not hold control characters or unpaired surrogates")
    return value


def _box(value: object, where: str, name: str) -> Box:
    if type(value) is list and len(value) == 4 and all(type(v) is int for v in value):
        x, y, w, h = value
        if min(x, y) >= -MAX_COORDINATE and max(x, y, w, h) <= MAX_COORDINATE and min(w, h) >= 0:
            return Box(x, y, w, h)
    where = f"{where}: {name}"
    if not isinstance(value, list) or len(value) != 4:
        raise WireError(f"{where} must be a list of 4 whole numbers [x, y, w, h]")
    x, y = (_integer(v, where, -MAX_COORDINATE, MAX_COORDINATE) for v in value[:2])
    w, h = (_integer(v, where, 0, MAX_COORDINATE) for v in value[2:])
    return Box(x, y, w, h)


def _probabilities(value: object, where: str) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != len(EMOTIONS):
        raise WireError(f"{where} must be a list of {len(EMOTIONS)} numbers ({', '.join(EMOTIONS)}) or null")
    # Floats, all finite (a NaN or an infinity makes the sum so) and in range: then none is checked one by one.
    plain = all(type(p) is float for p in value) and math.isfinite(sum(value))
    if not (plain and min(value) >= 0.0 and max(value) <= 1.0):
        value = [_number(p, where, 0.0, 1.0) for p in value]
    probabilities = value
    if abs(sum(probabilities) - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise WireError(f"{where} must sum to 1, not {sum(probabilities):.4f}")
    return np.array(probabilities, dtype=np.float64)


def _timestamp(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise WireError(f"{where} must be an ISO 8601 time with its UTC offset")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise WireError(f"{where}: {value[:40]!r} is not an ISO 8601 time") from None
    if ts.utcoffset() is None:
        raise WireError(f"{where}: {value[:40]!r} has no UTC offset")
    if not EARLIEST_YEAR <= ts.year <= LATEST_YEAR:
        raise WireError(f"{where}: {value[:40]!r} is not a plausible time")
    return ts


def _names(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise WireError(f"{where} must be a JSON object of student key to name")
    if len(value) > MAX_OBSERVATIONS:
        raise WireError(f"{where}: {len(value)} names, at most {MAX_OBSERVATIONS} are accepted")
    return {
        _text(key, f"{where}: key", MAX_KEY_LENGTH): _text(name, f"{where}: name of {key!r}", MAX_NAME_LENGTH)
        for key, name in value.items()
    }
