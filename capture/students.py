"""Gives every face, and every faceless gallery tile, a stable student key from frame to frame.

In a gallery each tile is one student. Tiles reshuffle when students join, leave or switch their camera,
so a tile is matched to the students seen before by, in this order of trust: the name on its label (read
by capture/names.py), then the face's appearance (a 16x16 grey patch, normalised: cheap, and it tells the
faces of one class apart), then its place (the same tile box, or for a faceless tile the same place in
reading order). A tile matching nobody is a new student, keyed `tile-<n>` after the place it
was first seen in. A camera-off tile that carries a known name is that student, present but unseen.

Without a grid (a webcam, a screen share) faces are tracked by their centres: a face continues the
nearest track that was close to it last time, else it opens a new `track-<n>`, shown as "student <n>".
"""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from capture.types import Box, FaceDetections

# A face continues a track when its centre moved less than this many face widths since the track was last seen.
MAX_TRACK_STEP = 1.0
# A track unseen for this many frames is closed; a face there later opens a new one.
TRACK_PATIENCE = 30
# Side of the grey patch a face's appearance is reduced to.
APPEARANCE_SIZE = 16
# Two faces can be one student's when their patches' correlation is at least this. Measured on 49-face
# galleries re-laid out at other sizes: the same face 0.62-1.0 (5th percentile 0.79), a student's most
# alike classmate up to 0.80; but a face's best match is its own in 147 of 147 cases. So the floor is low,
# and matching best pairs first (below) does the telling apart.
APPEARANCE_MATCH = 0.6
# A tile whose name differs from a student's is still theirs when the faces are this alike (an OCR
# misread): above any two classmates measured.
APPEARANCE_SURE = 0.85
# A student's appearance follows slow changes (light, pose) by this much of each new sighting.
APPEARANCE_UPDATE = 0.2
# Names at least this similar (difflib ratio) are one name read slightly differently.
NAME_MATCH = 0.85
# Match costs: a worse tier of evidence always loses to a better one; within a tier appearance decides,
# then the distance moved (in frame diagonals) breaks ties.
TIER_COST = 10.0
POSITION_WEIGHT = 0.5


@dataclass
class _Track:
    key: str
    center: np.ndarray
    width: float
    last_frame: int


@dataclass
class _Student:
    """A gallery student: what they were last seen as."""

    key: str
    name: str  # "" until a name is read
    appearance: np.ndarray | None  # unit vector; None until their face was seen
    tile: Box
    rank: int  # the tile's place in reading order


@dataclass(frozen=True)
class _Tile:
    """What one tile of this frame shows."""

    box: Box
    rank: int
    name: str
    appearance: np.ndarray | None


@dataclass
class StudentTracker:
    """Assigns keys; keeps the gallery students and the centroid tracks between frames."""

    _tracks: list[_Track] = field(default_factory=list)
    _opened: int = 0
    _frame: int = 0
    _students: list[_Student] = field(default_factory=list)
    _tile_keys: list[str] = field(default_factory=list)  # this frame's key per tile
    _names: dict[str, str] = field(default_factory=dict)  # display name per key

    def assign(
        self,
        tiles: list[Box] | None,
        detections: FaceDetections,
        image: np.ndarray | None = None,
        names: list[str] | None = None,
    ) -> list[str]:
        """The student key of every face. tiles: the gallery in reading order, None without a grid;
        image: the frame (BGR), for the faces' appearance; names: one per tile, "" where none was read."""
        self._frame += 1
        if tiles is None:
            self._tile_keys = []
            return self._follow(detections.boxes)
        seen = [self._tile(i, box, detections, image, names) for i, box in enumerate(tiles)]
        self._tile_keys = self._match(seen, tiles)
        return [self._tile_keys[int(tile)] for tile in detections.tiles]

    def tile_key(self, tile: int) -> str:
        """The key of the student in gallery tile `tile` (reading order) in the last frame, face or not."""
        return self._tile_keys[tile]

    def display_names(self) -> dict[str, str]:
        """The name to show for each student of the last frame that has one: the name read from their
        tile, or "student <n>" for a track."""
        keys = self._tile_keys or [track.key for track in self._tracks if track.last_frame == self._frame]
        return {key: self._names[key] for key in keys if key in self._names}

    def _tile(
        self, rank: int, box: Box, detections: FaceDetections, image: np.ndarray | None, names: list[str] | None
    ) -> _Tile:
        faces = np.flatnonzero(detections.tiles == rank)
        appearance = None
        if image is not None and len(faces):
            best = faces[int(np.argmax(detections.scores[faces]))]
            appearance = face_appearance(image, detections.boxes[best])
        return _Tile(box, rank, names[rank] if names else "", appearance)

    def _match(self, seen: list[_Tile], boxes: list[Box]) -> list[str]:
        matched = self._match_unique_names(seen)
        taken = set(matched.values())
        diagonal = float(np.hypot(*_extent(boxes)))
        pairs = sorted(
            (cost, t, s)
            for t, tile in enumerate(seen)
            if t not in matched
            for s, student in enumerate(self._students)
            if s not in taken and (cost := _cost(tile, student, diagonal)) is not None
        )
        for _, t, s in pairs:  # cheapest first: with names and faces to go on, greedy is as good as optimal
            if t not in matched and s not in taken:
                matched[t] = s
                taken.add(s)
        keys = []
        for t, tile in enumerate(seen):
            student = self._students[matched[t]] if t in matched else self._new_student(tile)
            self._update(student, tile)
            keys.append(student.key)
        return keys

    def _match_unique_names(self, seen: list[_Tile]) -> dict[int, int]:
        """Tile -> student for names that one tile and one student carry: the usual case, in one pass."""
        students = Counter(student.name.casefold() for student in self._students if student.name)
        tiles = Counter(tile.name.casefold() for tile in seen if tile.name)
        unique = {name for name, count in tiles.items() if count == 1 and students[name] == 1}
        by_name = {student.name.casefold(): s for s, student in enumerate(self._students) if student.name}
        return {t: by_name[tile.name.casefold()] for t, tile in enumerate(seen) if tile.name.casefold() in unique}

    def _new_student(self, tile: _Tile) -> _Student:
        taken = {s.key for s in self._students}
        number = tile.rank + 1
        if f"tile-{number}" in taken:
            number = 1 + max(int(key.rsplit("-", 1)[1]) for key in taken)
        student = _Student(f"tile-{number}", "", None, tile.box, tile.rank)
        self._students.append(student)
        return student

    def _update(self, student: _Student, tile: _Tile) -> None:
        if tile.name and not student.name:
            student.name = self._names[student.key] = tile.name
        if tile.appearance is not None:
            if student.appearance is None:
                student.appearance = tile.appearance
            else:
                mixed = (1 - APPEARANCE_UPDATE) * student.appearance + APPEARANCE_UPDATE * tile.appearance
                student.appearance = mixed / max(float(np.linalg.norm(mixed)), 1e-6)
        student.tile, student.rank = tile.box, tile.rank

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
            self._update_track(self._tracks[ti], centers[face], boxes[face])
        for face, key in enumerate(keys):
            if key is None:
                self._opened += 1
                track = _Track(f"track-{self._opened}", centers[face], float(max(boxes[face][2], 1)), self._frame)
                self._tracks.append(track)
                self._names[track.key] = f"student {self._opened}"
                keys[face] = track.key
        return keys  # type: ignore[return-value]

    def _update_track(self, track: _Track, center: np.ndarray, box: np.ndarray) -> None:
        track.center, track.width, track.last_frame = center, float(max(box[2], 1)), self._frame


def face_appearance(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The face's grey patch, zero mean and unit length (so a dot product is a correlation); None when
    the box holds no pixels."""
    x, y, w, h = (int(v) for v in box)
    crop = image[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)]
    if crop.size == 0:
        return None
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    # Equalised: a camera's exposure or a tile's scaling changes the levels, not the face.
    size = (APPEARANCE_SIZE, APPEARANCE_SIZE)
    patch = cv2.resize(cv2.equalizeHist(grey), size, interpolation=cv2.INTER_AREA).astype(np.float32)
    patch = patch.ravel() - patch.mean()
    norm = float(np.linalg.norm(patch))
    return patch / norm if norm > 0 else None


def _cost(tile: _Tile, student: _Student, diagonal: float) -> float | None:
    """How well the tile fits the student (lower is better), or None when it cannot be them."""
    moved = float(np.hypot(*np.subtract(tile.box.center, student.tile.center))) / max(diagonal, 1.0)
    both_faces = tile.appearance is not None and student.appearance is not None
    likeness = float(tile.appearance @ student.appearance) if both_faces else None  # type: ignore[operator]
    if tile.name and student.name:
        if tile.name.casefold() == student.name.casefold():
            tier = 0
        elif _name_likeness(tile.name.casefold(), student.name.casefold()) >= NAME_MATCH:
            tier = 1
        elif likeness is not None and likeness >= APPEARANCE_SURE:
            tier = 2  # a misread name: the face says who it is
        else:
            return None  # two different names are two students
    elif likeness is not None and likeness >= APPEARANCE_MATCH:
        tier = 2
    elif tile.box == student.tile or (likeness is None and tile.rank == student.rank):
        # Only the place to go by: a nameless camera-off tile, or a face turned away in a layout that
        # did not change. Everyone the better evidence placed is taken by then.
        tier = 3
    else:
        return None
    return tier * TIER_COST + (1 - likeness if likeness is not None else 1.0) + POSITION_WEIGHT * moved


@functools.lru_cache(maxsize=1 << 16)
def _name_likeness(a: str, b: str) -> float:
    # Cached: a class's names are compared with each other frame after frame.
    return difflib.SequenceMatcher(None, a, b).ratio()


def _extent(boxes: list[Box]) -> tuple[int, int]:
    return max(b.x + b.w for b in boxes), max(b.y + b.h for b in boxes)
