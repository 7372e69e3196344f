"""Chooses where a detector looks in a frame: the gallery's tiles when there is a grid, sliding windows otherwise.

Detectors such as BlazeFace only find faces that fill a good part of their square input. A wide 16:9 tile
squeezed into a square leaves a small face, so each tile is first looked at through its centre square,
where webcams put the head, and only a tile where that finds nothing is looked at whole. On 400 FER2013
faces in 7x7 galleries: whole tiles only found 89%; the centre squares 98.0%; both views of every tile
98.25% (393), and so did this two-pass order, at half the detector time. A frame without a gallery grid
(a single webcam view, a screen share, a photo) is searched in overlapping square windows at a few sizes.
Faces seen by several views of one tile, or by several windows, are merged by weighted NMS.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from capture.detect import FaceDetector
from capture.detect.boxes import to_detections, weighted_nms
from vocabulary.records import Box, FaceDetections

# Window sides as fractions of the frame's short side: whole-height views for close faces, thirds for
# faces of about a tenth of the frame height.
WINDOW_FRACTIONS = (1.0, 1 / 2, 1 / 3)
WINDOW_OVERLAP = 0.5
# Views of one face overlap a lot; distinct faces (two people in one tile) hardly at all.
MERGE_IOU = 0.3
# Tiles at least this much wider than tall are first looked at through their centre square.
MIN_ASPECT_FOR_CENTRE_VIEW = 1.1
# A face is a photo on a flat fill when the ring from RING_INNER to RING_OUTER face sizes around its centre is
# this share within FLAT_LEVELS grey levels of one level: a UI fill is one colour, video has noise and shading.
RING_INNER = 1.0
RING_OUTER = 1.4
FLAT_SHARE = 0.6
FLAT_LEVELS = 2


def sliding_windows(
    width: int, height: int, fractions: Sequence[float] = WINDOW_FRACTIONS, overlap: float = WINDOW_OVERLAP
) -> list[Box]:
    """Overlapping square windows covering the frame at each size; the last window of a row or column
    is moved flush with the frame edge so nothing is left uncovered."""
    windows = []
    for fraction in fractions:
        side = max(1, round(min(width, height) * fraction))
        step = max(1, round(side * (1 - overlap)))
        for y in _starts(height, side, step):
            windows += [Box(x, y, side, side) for x in _starts(width, side, step)]
    return windows


def centre_view(tile: Box) -> Box:
    """The first region a detector sees of a tile: its centre square when the tile is wide, else the tile."""
    if tile.w < tile.h * MIN_ASPECT_FOR_CENTRE_VIEW:
        return tile
    return Box(tile.x + (tile.w - tile.h) // 2, tile.y, tile.h, tile.h)


def find_faces(
    detector: FaceDetector, image: np.ndarray, grid: Sequence[Box] | None, outside: bool = False
) -> FaceDetections:
    """Faces in a frame: per gallery tile (tiles = tile index) or, without a grid, per window (tiles = -1).

    grid: the frame's tiles (capture/layout.py), None for a frame without; outside: also look for faces
    outside the tiles (a layout that may have missed some).
    """
    height, width = image.shape[:2]
    if not grid:
        found = detector.detect(image, sliding_windows(width, height))
        return _merge(found, np.full(len(found), -1, np.int32), width, height)
    views = [centre_view(tile) for tile in grid]
    found = detector.detect(image, views)
    seen = set(found.tiles.tolist())
    retry = np.array([i for i, tile in enumerate(grid) if i not in seen and views[i] != tile], np.int32)
    if len(retry):
        whole = detector.detect(image, [grid[i] for i in retry])
        found = _concatenate(found, whole, retry[whole.tiles])
    merged = _merge(found, found.tiles, width, height)
    merged = _subset(merged, np.array([not _photo(image, box) for box in merged.boxes], bool))
    if not outside:
        return merged
    # Tiles the layout search missed (a dialog over them, no edge to see) still show their faces: the
    # rest of the frame is searched in windows, and faces there keep tile -1.
    windows = detector.detect(image, sliding_windows(width, height))
    centres = windows.boxes[:, :2] + windows.boxes[:, 2:] / 2
    loose = np.array([not any(_contains(tile, c) for tile in grid) for c in centres], bool)
    if not loose.any():
        return merged
    extra = _merge(_subset(windows, loose), np.full(int(loose.sum()), -1, np.int32), width, height)
    return _concatenate(merged, extra, extra.tiles)


def _concatenate(first: FaceDetections, second: FaceDetections, second_tiles: np.ndarray) -> FaceDetections:
    return FaceDetections(
        boxes=np.concatenate([first.boxes, second.boxes]),
        scores=np.concatenate([first.scores, second.scores]),
        keypoints=np.concatenate([first.keypoints, second.keypoints]),
        tiles=np.concatenate([first.tiles, second_tiles]).astype(np.int32),
    )


def _photo(image: np.ndarray, box: np.ndarray) -> bool:
    """Whether a face sits on one flat colour: a profile photo on a camera-off tile (Meet, Teams draw it in a
    circle), not a person on camera, who has a room, hair and shoulders around the face."""
    x, y, w, h = (int(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    outer = [
        round(cx - RING_OUTER * w),
        round(cy - RING_OUTER * h),
        round(cx + RING_OUTER * w),
        round(cy + RING_OUTER * h),
    ]
    x1, y1 = max(outer[0], 0), max(outer[1], 0)
    x2, y2 = min(outer[2], image.shape[1]), min(outer[3], image.shape[0])
    view = image[y1:y2, x1:x2]
    if view.size == 0:
        return False
    grey = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY) if view.ndim == 3 else view
    yy, xx = np.mgrid[y1:y2, x1:x2]
    ring = (np.abs(xx + 0.5 - cx) > RING_INNER * w) | (np.abs(yy + 0.5 - cy) > RING_INNER * h)
    levels = grey[ring]
    if levels.size == 0:
        return False
    counts = np.bincount(levels, minlength=256)
    mode = int(counts.argmax())
    return counts[max(0, mode - FLAT_LEVELS) : mode + FLAT_LEVELS + 1].sum() >= FLAT_SHARE * levels.size


def _contains(tile: Box, point: np.ndarray) -> bool:
    return tile.x <= point[0] < tile.x + tile.w and tile.y <= point[1] < tile.y + tile.h


def _subset(found: FaceDetections, keep: np.ndarray) -> FaceDetections:
    return FaceDetections(found.boxes[keep], found.scores[keep], found.keypoints[keep], found.tiles[keep])


def _merge(found: FaceDetections, groups: np.ndarray, width: int, height: int) -> FaceDetections:
    """Weighted NMS within each group (a tile, or the whole frame); the group becomes the face's tile."""
    corners = np.concatenate([found.boxes[:, :2], found.boxes[:, :2] + found.boxes[:, 2:]], axis=1)
    corners = corners.astype(np.float32)
    parts = []
    for group in np.unique(groups):
        mine = groups == group
        boxes, keypoints, scores = weighted_nms(corners[mine], found.keypoints[mine], found.scores[mine], MERGE_IOU)
        parts.append((boxes, keypoints, scores, np.full(len(scores), group)))
    if not parts:
        return FaceDetections.empty()
    return to_detections(*(np.concatenate(column) for column in zip(*parts, strict=True)), width, height)


def _starts(length: int, side: int, step: int) -> list[int]:
    if side >= length:
        return [0]
    starts = list(range(0, length - side, step))
    return starts + [length - side]
