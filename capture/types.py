"""The typed records that flow one way through the pipeline: frame -> faces -> observations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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


@dataclass(frozen=True)
class Observation:
    """What the pipeline concluded about one face in one frame."""

    student_key: str
    tile: Box | None
    box: Box
    probabilities: np.ndarray  # (7,) float, FER2013 order, sums to 1
    emotion: int  # argmax of probabilities


@dataclass(frozen=True)
class FrameResult:
    """One analysed frame: what is written to the database in one transaction."""

    frame_index: int
    timestamp: datetime
    observations: list[Observation]
    processing_ms: float
    stage_ms: dict[str, float] = field(default_factory=dict)
