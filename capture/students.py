"""Gives every face a stable student key from frame to frame.

In a gallery a student is the tile their face sits in. Video-call apps keep the participants' order when
the grid grows or shrinks (a 3x3 grid becoming 4x4 moves tiles but keeps reading order), so a tile's
position in reading order is the student's key, `tile-<n>`. (Joins and leaves in the middle of the order,
and names read from the tiles, are the identity issue's work.) Without a grid (a webcam, a screen share)
faces are tracked by their centres: a face continues the nearest track that was close to it last time,
else it opens a new `track-<n>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capture.types import Box, FaceDetections

# A face continues a track when its centre moved less than this many face widths since the track was last seen.
MAX_TRACK_STEP = 1.0
# A track unseen for this many frames is closed; a face there later opens a new one.
TRACK_PATIENCE = 30


@dataclass
class _Track:
    key: str
    center: np.ndarray
    width: float
    last_frame: int


@dataclass
class StudentTracker:
    """Assigns keys; keeps the centroid tracks between frames."""

    _tracks: list[_Track] = field(default_factory=list)
    _opened: int = 0
    _frame: int = 0

    def assign(self, tiles: list[Box] | None, detections: FaceDetections) -> list[str]:
        self._frame += 1
        if tiles is not None:
            return [f"tile-{tile + 1}" for tile in detections.tiles]
        return self._follow(detections.boxes)

    def _follow(self, boxes: np.ndarray) -> list[str]:
        self._tracks = [t for t in self._tracks if self._frame - t.last_frame <= TRACK_PATIENCE]
        centers = boxes[:, :2] + boxes[:, 2:] / 2 if len(boxes) else np.zeros((0, 2))
        pairs = sorted(
            (float(np.linalg.norm(center - track.center)) / track.width, face, ti)
            for face, center in enumerate(centers)
            for ti, track in enumerate(self._tracks)
        )
        keys: list[str | None] = [None] * len(boxes)
        taken: set[int] = set()
        for step, face, ti in pairs:  # nearest pairs first: a greedy matching is enough for a few faces
            if step > MAX_TRACK_STEP or keys[face] is not None or ti in taken:
                continue
            keys[face] = self._tracks[ti].key
            taken.add(ti)
            self._update(self._tracks[ti], centers[face], boxes[face])
        for face, key in enumerate(keys):
            if key is None:
                self._opened += 1
                track = _Track(f"track-{self._opened}", centers[face], float(max(boxes[face][2], 1)), self._frame)
                self._tracks.append(track)
                keys[face] = track.key
        return keys  # type: ignore[return-value]

    def _update(self, track: _Track, center: np.ndarray, box: np.ndarray) -> None:
        track.center, track.width, track.last_frame = center, float(max(box[2], 1)), self._frame
