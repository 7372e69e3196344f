"""Chooses where a detector looks in a frame: the gallery's tiles when there is a grid, sliding windows otherwise.

Detectors such as BlazeFace only find faces that fill a good part of their square input. A wide 16:9 tile
squeezed into a square leaves a small face, so each tile is first looked at through its centre square,
where webcams put the head, and only a tile where that finds nothing is looked at whole. On 400 FER2013
faces in 7x7 galleries: whole tiles only found 89%; the centre squares 98.0%; both views of every tile
98.25% (393), and so did this two-pass order, at half the detector time. A frame without a gallery grid
(a single webcam view, a screen share, a photo) is searched in overlapping square windows at a few sizes.
Faces seen by several views of one tile, or by several windows, are merged by weighted NMS.

From frame to frame (FaceFinder) the detector looks again only at the views whose pixels changed: a tile
whose picture stayed as it was holds the faces found there last time. The change is the largest move of
the mean of any 8x8-pixel cell of the view since the detector last looked at it (the frame shrunk by area
averaging once, 1-2 ms at 1080p, then compared view by view); sensor and compression noise move a cell's
mean by 1-3 grey levels, a face moving by one pixel by 8 or more. Besides the views that changed, the views
looked at longest ago are looked at again, a few every frame, so that each is seen afresh at least every
`redetect_frames` frames and a change too small to see cannot leave a stale box for long. What follows the
detector (merging, the photo check, identity, signals, emotion) runs on every frame's pixels as before; a
still face's box and keypoints are last look's, which its unchanged pixels would give again.

A view that changed because its faces moved (a student shifting in their seat, a camera that shakes) is
not looked at again either when each of its faces is found again nearby: its grey picture at the look,
matched against the frame around it (normalised cross-correlation, at a scale where the face is
FOLLOW_WIDTH pixels wide), correlates by regions.follow_likeness or more within regions.follow_shift face
widths of where the detector saw it. The faces then keep the look's boxes and keypoints moved by that
shift (the detector's own keypoints would move with the face alike). A face that turns, leaves, or is
covered correlates less and its view is looked at; the turn above still looks at every view within
redetect_frames, so a second face coming into a view whose face stayed is found by then. Only faces the
detector was sure of (regions.follow_score) are followed: a doubtful detection (part of a face at a window's
edge, a pattern in the room) comes and goes as the picture moves, and following it would keep it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from capture.detect import FaceDetector
from capture.detect.boxes import to_detections, weighted_nms
from capture.pixels import grey as grey_of
from config import RegionSettings
from vocabulary.records import Box, FaceDetections

# Window sides as fractions of the frame's short side: whole-height views for close faces, thirds for
# faces of about a tenth of the frame height.
WINDOW_FRACTIONS = (1.0, 1 / 2, 1 / 3)
# Side in frame pixels of the cells whose means tell whether a view changed: small enough that a face
# moving by a pixel moves some cell's mean (a face is 30 px or more), large enough to average noise away.
CHANGE_CELL = 8
# Width in pixels a face is scaled to for following it (see the module docstring): a 1080p 7x7 gallery's faces
# are 50-90 px, so a pixel here is about 2 of theirs, and the match is refined to a tenth of it.
FOLLOW_WIDTH = 32
# The rest is the configuration's [capture.regions] (config/classpulse.toml says why each has its value).
DEFAULT = RegionSettings()


def sliding_windows(
    width: int, height: int, fractions: Sequence[float] = WINDOW_FRACTIONS, overlap: float = DEFAULT.window_overlap
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


def centre_view(tile: Box, min_aspect: float = DEFAULT.centre_view_aspect) -> Box:
    """The first region a detector sees of a tile: its centre square when the tile is at least `min_aspect`
    times wider than tall, else the tile."""
    if tile.w < tile.h * min_aspect:
        return tile
    return Box(tile.x + (tile.w - tile.h) // 2, tile.y, tile.h, tile.h)


def find_faces(
    detector: FaceDetector,
    image: np.ndarray,
    grid: Sequence[Box] | None,
    outside: bool = False,
    whole: Collection[int] = (),
    skip: Collection[int] = (),
    settings: RegionSettings = DEFAULT,
) -> FaceDetections:
    """Faces in a frame: per gallery tile (tiles = tile index) or, without a grid, per window (tiles = -1).

    grid: the frame's tiles (capture/layout.py), None for a frame without; outside: also look for faces
    outside the tiles (a layout that may have missed some); whole: indices of tiles to see whole at once
    (FaceFinder: those whose centre square showed no face last frame); skip: indices of tiles not to look
    at (camera-off tiles: a flat fill shows no face, and a profile photo on one is none).
    """
    return _find(detector, image, grid, outside, whole, skip, settings, _photo)[0]


class FaceFinder:
    """find_faces for a stream of frames: every view the detector looks at in one call, and only the views
    whose pixels changed and whose faces cannot be followed (see the module docstring; `looked` counts the
    views looked at in the last frame).

    A tile whose centre square shows no face (a face at the side, a turned head) is seen whole too, which
    would take a second call; the tiles that needed it last frame are seen whole in the first call instead.
    """

    def __init__(self, detector: FaceDetector, settings: RegionSettings = DEFAULT) -> None:
        self.detector = ChangedViews(
            detector,
            settings.redetect_change,
            settings.redetect_frames,
            settings.follow_shift,
            settings.follow_likeness,
            settings.follow_score,
        )
        self.settings = settings
        self._grid: list[Box] = []
        self._whole: set[int] = set()
        # The photo check's answer per face box, with the cells around the face it was made on.
        self._photos: dict[Box, tuple[np.ndarray, bool]] = {}
        self._photos_now: dict[Box, tuple[np.ndarray, bool]] = {}

    @property
    def looked(self) -> int:
        return self.detector.looked

    @property
    def followed(self) -> int:
        """The views that changed in the last frame whose faces were followed instead of looked at again."""
        return self.detector.followed

    def find(
        self, image: np.ndarray, grid: Sequence[Box] | None, outside: bool = False, skip: Collection[int] = ()
    ) -> FaceDetections:
        tiles = list(grid or [])
        whole = self._whole if tiles == self._grid else set()
        self.detector.next_frame(image)
        self._photos_now = {}
        found, self._whole = _find(self.detector, image, grid, outside, whole, skip, self.settings, self._photo)
        self._grid = tiles
        self._photos = self._photos_now
        return found

    def _photo(self, image: np.ndarray, box: np.ndarray, settings: RegionSettings) -> bool:
        """_photo, answered again only when the face's box or the pixels around it changed (as the views are),
        and not for a face followed (a still face keeps its box from a view not looked at again, a followed one
        moves with its picture: so most faces of a frame ask again)."""
        face = Box(*(int(v) for v in box))
        x1, y1, x2, y2 = _around(*_ring(face, settings), image.shape)
        cells = self.detector.cells(Box(x1, y1, x2 - x1, y2 - y1))
        known = self._photos.get(face)
        # A face followed since last frame (found again by its own picture, close by) keeps last frame's answer.
        before = self._photos.get(self.detector.moved_from.get(face, face))
        if known is not None and not self.detector.differ(known[0], cells):
            answer = known[1]
        elif before is not None and face in self.detector.moved_from:
            answer = before[1]
        else:
            answer = _photo(image, box, settings)
        self._photos_now[face] = (cells, answer)
        return answer


@dataclass(frozen=True)
class _Look:
    """What the detector saw in one view: its cells' means then, the frame number, the faces (tiles = 0), and
    each face's grey picture at FOLLOW_WIDTH wide with its scale (None when following is off). `cells` is the
    view's as last seen, the faces where they were followed to since."""

    cells: np.ndarray
    frame: int
    faces: FaceDetections
    found: FaceDetections
    pictures: list[tuple[np.ndarray, float]] | None


class ChangedViews:
    """A detector that looks again only at the views whose pixels changed by more than `change` grey levels
    since it last looked and whose faces it cannot follow (follow_*: capture.regions'), and at the
    ceil(views / `refresh_frames`) looked at longest ago (the module docstring says why); the others keep the
    faces found at that look, followed ones moved. One frame at a time: next_frame first.
    """

    def __init__(
        self,
        detector: FaceDetector,
        change: int,
        refresh_frames: int,
        follow_shift: float,
        follow_likeness: float,
        follow_score: float,
    ) -> None:
        self.detector = detector
        self.change = change
        self.refresh_frames = refresh_frames
        self.follow_shift, self.follow_likeness, self.follow_score = follow_shift, follow_likeness, follow_score
        self.looked = 0
        self.followed = 0
        # This frame's followed faces' boxes -> their boxes last frame.
        self.moved_from: dict[Box, Box] = {}
        self._frame = 0
        self._cells: np.ndarray = np.zeros((0, 0, 3), np.uint8)
        self._looks: dict[Box, _Look] = {}
        self._asked: set[Box] = set()

    def next_frame(self, image: np.ndarray) -> None:
        """Starts a frame: its cells, and the looks of views not asked for last frame forgotten."""
        self._frame += 1
        self.looked = self.followed = 0
        self.moved_from = {}
        height, width = image.shape[:2]
        size = (max(1, -(-width // CHANGE_CELL)), max(1, -(-height // CHANGE_CELL)))
        self._cells = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        self._looks = {view: look for view, look in self._looks.items() if view in self._asked}
        self._asked = set()

    def detect(self, image: np.ndarray, regions: list[Box]) -> FaceDetections:
        self._asked.update(regions)
        cells = [self.cells(region) for region in regions]
        changed = [i for i, region in enumerate(regions) if self._changed(region, cells[i])]
        held = [i for i in range(len(regions)) if i not in changed]
        held.sort(key=lambda i: self._looks[regions[i]].frame)
        due = held[: -(-len(regions) // self.refresh_frames)]
        for i in changed:
            look = self._looks.get(regions[i])
            followed = None if look is None else self._follow(image, look)
            if look is None or followed is None:
                due.append(i)
            else:
                self._looks[regions[i]] = _Look(cells[i], look.frame, followed, look.found, look.pictures)
                self.followed += 1
                for now, before in zip(followed.boxes, look.faces.boxes, strict=True):
                    self.moved_from[Box(*(int(v) for v in now))] = Box(*(int(v) for v in before))
        if due:
            found = self.detector.detect(image, [regions[i] for i in due])
            for k, i in enumerate(due):
                faces = _subset(found, found.tiles == k)
                faces = FaceDetections(faces.boxes, faces.scores, faces.keypoints, np.zeros(len(faces), np.int32))
                pictures = [_picture(image, box) for box in faces.boxes] if self.follow_shift > 0 else None
                self._looks[regions[i]] = _Look(cells[i], self._frame, faces, faces, pictures)
            self.looked += len(due)
        per_view = [self._looks[region].faces for region in regions]
        if not any(len(faces) for faces in per_view):
            return FaceDetections.empty()
        return FaceDetections(
            boxes=np.concatenate([faces.boxes for faces in per_view]),
            scores=np.concatenate([faces.scores for faces in per_view]),
            keypoints=np.concatenate([faces.keypoints for faces in per_view]),
            tiles=np.concatenate([np.full(len(faces), i, np.int32) for i, faces in enumerate(per_view)]),
        )

    def cells(self, region: Box) -> np.ndarray:
        """This frame's cells that the region covers, copied: they are kept as a look's reference."""
        x1, y1 = max(region.x, 0) // CHANGE_CELL, max(region.y, 0) // CHANGE_CELL
        x2, y2 = -(-(region.x + region.w) // CHANGE_CELL), -(-(region.y + region.h) // CHANGE_CELL)
        return self._cells[y1:y2, x1:x2].copy()

    def differ(self, before: np.ndarray, now: np.ndarray) -> bool:
        """Whether a region's cells changed by more than `change` grey levels (or the region did)."""
        if before.shape != now.shape:
            return True
        # A view wholly outside the frame has no cells, and nothing in it can change.
        return now.size > 0 and bool(cv2.absdiff(before, now).max() > self.change)

    def _follow(self, image: np.ndarray, look: _Look) -> FaceDetections | None:
        """The look's faces moved to where each is found again in `image` (see the module docstring), or None
        when the view holds no face or one of them is not found again."""
        if look.pictures is None or not len(look.found) or look.found.scores.min() < self.follow_score:
            return None
        shifts = []
        for box, (picture, scale) in zip(look.found.boxes, look.pictures, strict=True):
            shift = _found_again(image, box, picture, scale, self.follow_shift, self.follow_likeness)
            if shift is None:
                return None
            shifts.append(shift)
        moves = np.array(shifts, np.float32)
        boxes = look.found.boxes.copy()
        boxes[:, :2] += np.rint(moves).astype(boxes.dtype)
        return FaceDetections(boxes, look.found.scores, look.found.keypoints + moves[:, None, :], look.found.tiles)

    def _changed(self, region: Box, cells: np.ndarray) -> bool:
        look = self._looks.get(region)
        return look is None or self.differ(look.cells, cells)


def _find(
    detector: FaceDetector,
    image: np.ndarray,
    grid: Sequence[Box] | None,
    outside: bool,
    whole: Collection[int],
    skip: Collection[int],
    settings: RegionSettings,
    photo: Callable[[np.ndarray, np.ndarray, RegionSettings], bool],
) -> tuple[FaceDetections, set[int]]:
    """find_faces, and the tiles whose centre square showed no face; photo: the photo check (_photo)."""
    height, width = image.shape[:2]
    merge_iou = settings.merge_iou
    if not grid:
        found = detector.detect(image, sliding_windows(width, height, overlap=settings.window_overlap))
        return _merge(found, np.full(len(found), -1, np.int32), width, height, merge_iou), set()
    skipped = set(skip)
    looked = [i for i in range(len(grid)) if i not in skipped]
    views = {i: centre_view(grid[i], settings.centre_view_aspect) for i in looked}
    wide = [i for i in sorted(whole) if i in views and views[i] != grid[i]]
    windows = sliding_windows(width, height, overlap=settings.window_overlap) if outside else []
    regions = [*views.values(), *(grid[i] for i in wide), *windows]
    found = detector.detect(image, regions)
    # Region index -> tile index (-1 for windows) and which view it was.
    owner = np.array([*looked, *wide, *([-1] * len(windows))], np.int32)
    centre = np.arange(len(regions)) < len(looked)
    in_window = found.tiles >= len(looked) + len(wide)
    tile_of = owner[found.tiles] if len(found) else np.zeros(0, np.int32)
    seen = set(tile_of[centre[found.tiles]].tolist()) if len(found) else set()
    missed = {i for i, view in views.items() if i not in seen and view != grid[i]}
    # A whole view counts only for a tile whose centre square showed no face: the two-pass order's result.
    keep = ~in_window & (centre[found.tiles] | np.isin(tile_of, list(missed)))
    on_tiles = _subset(found, keep)
    on_tiles = FaceDetections(on_tiles.boxes, on_tiles.scores, on_tiles.keypoints, tile_of[keep])
    retry = np.array(sorted(missed - set(wide)), np.int32)
    if len(retry):
        again = detector.detect(image, [grid[i] for i in retry])
        on_tiles = _concatenate(on_tiles, again, retry[again.tiles])
    merged = _merge(on_tiles, on_tiles.tiles, width, height, merge_iou)
    merged = _subset(merged, np.array([not photo(image, box, settings) for box in merged.boxes], bool))
    if not outside:
        return merged, missed
    # Tiles the layout search missed (a dialog over them, no edge to see) still show their faces: the
    # rest of the frame is searched in windows, and faces there keep tile -1.
    loose_windows = _subset(found, in_window)
    centres = loose_windows.boxes[:, :2] + loose_windows.boxes[:, 2:] / 2
    loose = np.array([not any(_contains(tile, c) for tile in grid) for c in centres], bool)
    if not loose.any():
        return merged, missed
    extra = _merge(_subset(loose_windows, loose), np.full(int(loose.sum()), -1, np.int32), width, height, merge_iou)
    return _concatenate(merged, extra, extra.tiles), missed


def _picture(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
    """The face's grey picture scaled to FOLLOW_WIDTH wide, and the scale (picture pixels per frame pixel)."""
    x, y, w, h = (int(v) for v in box)
    x1, y1 = max(x, 0), max(y, 0)
    crop = image[y1 : max(y + h, y1 + 1), x1 : max(x + w, x1 + 1)]
    scale = FOLLOW_WIDTH / max(w, 1)
    size = (max(crop.shape[1] * scale, 1), max(crop.shape[0] * scale, 1))
    grey = grey_of(crop)
    return cv2.resize(grey, (round(size[0]), round(size[1])), interpolation=cv2.INTER_AREA), scale


def _found_again(
    image: np.ndarray, box: np.ndarray, picture: np.ndarray, scale: float, reach: float, likeness: float
) -> tuple[float, float] | None:
    """How far (dx, dy frame pixels) the face that showed `picture` in `box` moved: where the picture
    correlates best with the frame within `reach` face widths, if by `likeness` or more; else None."""
    x, y, w, h = (int(v) for v in box)
    margin = max(1, math.ceil(reach * w))
    x1, y1 = max(x - margin, 0), max(y - margin, 0)
    x2, y2 = min(x + w + margin, image.shape[1]), min(y + h + margin, image.shape[0])
    if x1 != x - margin or y1 != y - margin or x2 != x + w + margin or y2 != y + h + margin:
        return None  # at the frame's edge: the picture cut short there would not match as it is
    around = image[y1:y2, x1:x2]
    grey = grey_of(around)
    size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
    search = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    if search.shape[0] < picture.shape[0] or search.shape[1] < picture.shape[1]:
        return None
    scores = cv2.matchTemplate(search, picture, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if best < likeness:
        return None
    # The peak refined between its neighbours (a parabola through three scores), a tenth of a pixel or so.
    fx, fy = bx + _vertex(scores[by], bx), by + _vertex(scores[:, bx], by)
    # The picture's own place in the search: the margin.
    return fx / scale - margin, fy / scale - margin


def _vertex(line: np.ndarray, at: int) -> float:
    """Offset (-0.5 to 0.5) from `at` of the top of the parabola through line's scores at and beside it; 0 at
    the line's ends."""
    if not 0 < at < len(line) - 1:
        return 0.0
    left, middle, right = (float(v) for v in line[at - 1 : at + 2])
    curve = left - 2 * middle + right
    return 0.0 if curve >= 0 else float(np.clip(0.5 * (left - right) / curve, -0.5, 0.5))


def _concatenate(first: FaceDetections, second: FaceDetections, second_tiles: np.ndarray) -> FaceDetections:
    return FaceDetections(
        boxes=np.concatenate([first.boxes, second.boxes]),
        scores=np.concatenate([first.scores, second.scores]),
        keypoints=np.concatenate([first.keypoints, second.keypoints]),
        tiles=np.concatenate([first.tiles, second_tiles]).astype(np.int32),
    )


def _photo(image: np.ndarray, box: np.ndarray, settings: RegionSettings) -> bool:
    """Whether a face sits on one flat colour: a profile photo on a camera-off tile (Meet, Teams draw it in a
    circle), not a person on camera, who has a room, hair and shoulders around the face. Flat: the ring
    between the face box and `photo_ring` face sizes around its centre is mostly (`photo_flat_share`) within
    `photo_flat_levels` grey levels of one level; a UI fill is one colour, video has noise and shading."""
    x, y, w, h = (int(v) for v in box)
    outer = _around(*_ring(Box(x, y, w, h), settings), image.shape)
    inner = _around(x + w / 2, y + h / 2, w, h, image.shape)
    view = image[outer[1] : outer[3], outer[0] : outer[2]]
    if view.size == 0:
        return False
    grey = grey_of(view)
    # The ring's levels: the outer square's histogram less the inner square's (a histogram each, not a mask).
    counts = np.bincount(grey.ravel(), minlength=256)
    inside = grey[inner[1] - outer[1] : inner[3] - outer[1], inner[0] - outer[0] : inner[2] - outer[0]]
    counts -= np.bincount(inside.ravel(), minlength=256)
    total = int(counts.sum())
    if total == 0:
        return False
    mode = int(counts.argmax())
    levels = settings.photo_flat_levels
    return bool(counts[max(0, mode - levels) : mode + levels + 1].sum() >= settings.photo_flat_share * total)


def _ring(face: Box, settings: RegionSettings) -> tuple[float, float, float, float]:
    """Centre and half sizes of the square around a face that the photo check looks at."""
    ring = settings.photo_ring
    return face.x + face.w / 2, face.y + face.h / 2, ring * face.w, ring * face.h


def _around(cx: float, cy: float, half_w: float, half_h: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """x1, y1, x2, y2 of the pixels whose centres lie within half_w, half_h of (cx, cy), clipped to the frame."""
    x1, y1 = max(0, math.ceil(cx - half_w - 0.5)), max(0, math.ceil(cy - half_h - 0.5))
    x2, y2 = min(shape[1], math.floor(cx + half_w - 0.5) + 1), min(shape[0], math.floor(cy + half_h - 0.5) + 1)
    return x1, y1, max(x1, x2), max(y1, y2)


def _contains(tile: Box, point: np.ndarray) -> bool:
    return bool(tile.x <= point[0] < tile.x + tile.w and tile.y <= point[1] < tile.y + tile.h)


def _subset(found: FaceDetections, keep: np.ndarray) -> FaceDetections:
    return FaceDetections(found.boxes[keep], found.scores[keep], found.keypoints[keep], found.tiles[keep])


def _merge(found: FaceDetections, groups: np.ndarray, width: int, height: int, merge_iou: float) -> FaceDetections:
    """Weighted NMS within each group (a tile, or the whole frame); the group becomes the face's tile."""
    corners = np.concatenate([found.boxes[:, :2], found.boxes[:, :2] + found.boxes[:, 2:]], axis=1)
    corners = corners.astype(np.float32)
    parts = []
    for group, count in zip(*np.unique(groups, return_counts=True), strict=True):
        mine = groups == group
        if count == 1:
            # Most tiles hold one face: merging it with nothing gives it back as it is, at a tenth of the cost.
            parts.append((corners[mine], found.keypoints[mine], found.scores[mine], groups[mine]))
            continue
        boxes, keypoints, scores = weighted_nms(corners[mine], found.keypoints[mine], found.scores[mine], merge_iou)
        parts.append((boxes, keypoints, scores, np.full(len(scores), group)))
    if not parts:
        return FaceDetections.empty()
    boxes, keypoints, scores, tiles = (np.concatenate(column) for column in zip(*parts, strict=True))
    return to_detections(boxes, keypoints, scores, tiles, width, height)


def _starts(length: int, side: int, step: int) -> list[int]:
    if side >= length:
        return [0]
    starts = list(range(0, length - side, step))
    return starts + [length - side]
