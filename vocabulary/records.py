"""The typed records that flow one way through the pipeline: frame -> faces -> observations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in frame pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)


@dataclass(frozen=True)
class Frame:
    """One image from a source. `image` is H x W x 3 BGR uint8 and is never persisted."""

    index: int
    timestamp: datetime
    image: np.ndarray


@dataclass(frozen=True)
class FaceDetections:
    """Every face found in one frame, as parallel arrays (one row per face).

    boxes: (N, 4) int x, y, w, h in frame pixels; scores: (N,) detector confidence;
    keypoints: (N, 6, 2) BlazeFace keypoints in frame pixels (eyes, nose, mouth, ears);
    tiles: (N,) index into the frame's tile list, -1 when the frame has no gallery grid.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    tiles: np.ndarray

    @classmethod
    def empty(cls) -> FaceDetections:
        return cls(
            boxes=np.zeros((0, 4), np.int32),
            scores=np.zeros((0,), np.float32),
            keypoints=np.zeros((0, 6, 2), np.float32),
            tiles=np.zeros((0,), np.int32),
        )

    def __len__(self) -> int:
        return len(self.boxes)


class Layout(StrEnum):
    """How a frame's participant tiles are arranged (capture/layout.py tells them apart)."""

    GRID = "grid"  # rows of equal tiles (a gallery view)
    STRIP = "strip"  # one row or column of tiles beside something else (a screen share, a speaker view)
    IRREGULAR = "irregular"  # tiles of several sizes (Teams' large and small tiles, a speaker and thumbnails)
    NONE = "none"  # no tiles: faces are searched over the whole frame (a webcam, a photo)


class Presence(StrEnum):
    """What a student's tile shows in one frame."""

    FACE = "face"
    CAMERA_OFF = "camera_off"  # a flat fill with a name or avatar: present but unseen
    EMPTY = "empty"  # a live camera picture without a face: the student left the seat


@dataclass(frozen=True)
class FaceSignals:
    """The attention signals of one student in one frame (see capture/signals.py for how each is measured).

    yaw, pitch: head pose in degrees (yaw > 0 turned towards the image's right, pitch > 0 up); eye_ratio: the
    eye aspect ratio of the eye nearer the camera; all None without a face, eyes None when the landmarks failed.
    landmarks_age: frames since the eyes and the pose's correction were measured (0: this frame; None: only
    keypoints), as the landmark models visit a few faces per frame; stored, so that the analytics can tell a
    measurement from a carried value.
    """

    presence: Presence
    yaw: float | None = None
    pitch: float | None = None
    eye_ratio: float | None = None
    eyes_closed: bool | None = None
    landmarks_age: int | None = None


@dataclass(frozen=True)
class Observation:
    """What the pipeline concluded about one student in one frame: a face, or a gallery tile without one.

    For a faceless tile (signals.presence is not FACE) `box` is the tile. `probabilities` and `emotion` are
    None when no emotion was inferred (a faceless tile, or capture in attention-only mode).
    """

    student_key: str
    tile: Box | None
    box: Box
    probabilities: np.ndarray | None  # (7,) float, FER2013 order, sums to 1
    emotion: int | None  # argmax of probabilities
    signals: FaceSignals | None = None  # None: not measured (counts as a visible face)

    @property
    def presence(self) -> Presence:
        return self.signals.presence if self.signals is not None else Presence.FACE


@dataclass(frozen=True)
class FrameResult:
    """One analysed frame: what is written to the database in one transaction."""

    frame_index: int
    timestamp: datetime
    observations: list[Observation]
    processing_ms: float
    stage_ms: dict[str, float] = field(default_factory=dict)
    # Display names of this frame's students that have one (read from their tile, or "student <n>").
    student_names: dict[str, str] = field(default_factory=dict)
    layout: Layout = Layout.NONE

    @property
    def faces(self) -> int:
        """Observations with a visible face (the others are faceless gallery tiles)."""
        return sum(o.presence is Presence.FACE for o in self.observations)
