"""Gives every face, and every faceless gallery tile, a stable student key from frame to frame.

In a gallery each tile is one student. Tiles reshuffle when students join, leave or switch their camera,
so a tile is matched to the students seen before by, in this order of trust: the name on its label (read
by capture/names.py), then the face's appearance (a 16x16 grey patch, normalised: cheap, and it tells the
faces of one class apart), then its place (the same tile box, or for a faceless tile the same place in
reading order). A name the app cut short ("Christopher Colq…") matches the full name it begins, either
way round, and the student is shown by the full name once it was seen. A tile matching nobody is a new
student, keyed `tile-<n>` after the place it was first seen in. A camera-off tile that carries a known
name is that student, present but unseen.

A name is voted on over frames, since one frame's reading can be wrong ("Calvm" for "Calvin"). Each
student keeps a small tally of the readings of their tile's label, a vote per frame, and is shown by the
reading with the most; another reading takes over only once it has identity.name_switch_frames frames more
than the one shown, so a misreading of a few frames never names a student, and a first-frame misreading
gives way to the true name a few frames later. A reading in a student's tally is theirs when it shows
again, and a reading like their name (identity.misread_likeness) in the tile box where they were last seen
is their label misread, not a newcomer, unless the face there is clearly someone else.

Without a grid (a webcam, a screen share) faces are tracked by their centres: a face continues the
nearest track that was close to it last time, else it opens a new `track-<n>`, shown as "student <n>".

The place is the weakest evidence: without a name, a newcomer who sits down where a student left would
inherit that student's key. So a face that faces the camera and clearly is not the face last seen there
(frontal too) does not continue that student or track by place: it is a new student.
"""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from capture.names import ELLIPSIS
from capture.signals import keypoint_pose
from config import IdentitySettings
from vocabulary.records import Box, FaceDetections

# The thresholds a school may tune are the configuration's [capture.identity] (config/classpulse.toml says
# why each has its value); these are the matching's own workings.
DEFAULT = IdentitySettings()
# Side of the grey patch a face's appearance is reduced to.
APPEARANCE_SIZE = 16
# A student's appearance follows slow changes (light, pose) by this much of each new sighting.
APPEARANCE_UPDATE = 0.2
# Match costs: a worse tier of evidence always loses to a better one (likeness and the distance moved,
# identity.position_weight, stay below this within a tier).
TIER_COST = 10.0
# Readings a student's name tally keeps: the shown name, its rivals, and room for a few one-frame misreads,
# which give way (the fewest frames first) to newer readings.
TALLY_SIZE = 6


@dataclass(frozen=True)
class _Look:
    """A face's appearance (see face_appearance), blended over a student's sightings: of every sighting, for
    matching (it follows the pose too), and of those facing the camera only, for telling two people apart
    (None until one faced it)."""

    patch: np.ndarray
    frontal: np.ndarray | None


@dataclass
class _Track:
    key: str
    center: np.ndarray
    width: float
    last_frame: int
    look: _Look | None


@dataclass
class _Student:
    """A gallery student: what they were last seen as."""

    key: str
    name: str  # "" until a name is read; the reading that won the vote (see _vote)
    look: _Look | None  # None until their face was seen
    tile: Box
    rank: int  # the tile's place in reading order
    # Frames in which each reading of their label was seen (casefolded reading -> (reading, frames)).
    tally: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Tile:
    """What one tile of this frame shows."""

    box: Box
    rank: int
    name: str
    look: _Look | None


@dataclass
class StudentTracker:
    """Assigns keys; keeps the gallery students and the centroid tracks between frames. settings: the
    configuration's [capture.identity]."""

    settings: IdentitySettings = DEFAULT
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
        poses = keypoint_pose(detections.keypoints)
        if tiles is None:
            self._tile_keys = []
            return self._follow(detections.boxes, poses, image)
        seen = [self._tile(i, box, detections, poses, image, names) for i, box in enumerate(tiles)]
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
        self,
        rank: int,
        box: Box,
        detections: FaceDetections,
        poses: np.ndarray,
        image: np.ndarray | None,
        names: list[str] | None,
    ) -> _Tile:
        faces = np.flatnonzero(detections.tiles == rank)
        look = None
        if image is not None and len(faces):
            best = faces[int(np.argmax(detections.scores[faces]))]
            look = _look(image, detections.boxes[best], poses[best], self.settings.frontal_degrees)
        return _Tile(box, rank, names[rank] if names else "", look)

    def _match(self, seen: list[_Tile], boxes: list[Box]) -> list[str]:
        matched = self._match_unique_names(seen)
        taken = set(matched.values())
        diagonal = float(np.hypot(*_extent(boxes)))
        tiles = [t for t in range(len(seen)) if t not in matched]
        free = [s for s in range(len(self._students)) if s not in taken]
        open_tiles, free_students = [seen[t] for t in tiles], [self._students[s] for s in free]
        # einsum, not a matrix product: OpenBLAS wakes its threads for one, 10-20 ms on 2 busy cores.
        likeness = np.einsum(
            "tp,sp->ts", _patches(tile.look for tile in open_tiles), _patches(s.look for s in free_students)
        )
        # Only the pairs _cost can accept are costed: in Python, all 49 x 49 took 10 ms a frame.
        possible = _possible(open_tiles, free_students, likeness, self.settings.appearance_match)
        pairs = sorted(
            (cost, tiles[i], free[j])
            for i, j in np.argwhere(possible).tolist()
            if (cost := _cost(open_tiles[i], free_students[j], diagonal, likeness[i, j], self.settings)) is not None
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
        if tile.name:
            _vote(student, tile.name, self.settings)
            self._names[student.key] = student.name
        student.look = _blend(student.look, tile.look)
        student.tile, student.rank = tile.box, tile.rank

    def _follow(self, boxes: np.ndarray, poses: np.ndarray, image: np.ndarray | None) -> list[str]:
        self._tracks = [t for t in self._tracks if self._frame - t.last_frame <= self.settings.track_patience]
        frontal = self.settings.frontal_degrees
        looks = [
            None if image is None else _look(image, box, pose, frontal) for box, pose in zip(boxes, poses, strict=True)
        ]
        centers = boxes[:, :2] + boxes[:, 2:] / 2 if len(boxes) else np.zeros((0, 2))
        pairs = sorted(
            (float(np.linalg.norm(center - track.center)) / track.width, face, ti)
            for face, center in enumerate(centers)
            for ti, track in enumerate(self._tracks)
        )
        keys: list[str | None] = [None] * len(boxes)
        taken: set[int] = set()
        for step, face, ti in pairs:  # nearest pairs first: a greedy matching is enough for a few faces
            if step > self.settings.max_track_step or keys[face] is not None or ti in taken:
                continue
            if _someone_else(self._tracks[ti].look, looks[face], self.settings.appearance_different):
                continue
            keys[face] = self._tracks[ti].key
            taken.add(ti)
            self._update_track(self._tracks[ti], centers[face], boxes[face], looks[face])
        for face, key in enumerate(keys):
            if key is None:
                self._opened += 1
                width = float(max(boxes[face][2], 1))
                track = _Track(f"track-{self._opened}", centers[face], width, self._frame, looks[face])
                self._tracks.append(track)
                self._names[track.key] = f"student {self._opened}"
                keys[face] = track.key
        # The loop above gave every face still without one a key; mypy cannot follow that the Nones are gone.
        return keys  # type: ignore[return-value]

    def _update_track(self, track: _Track, center: np.ndarray, box: np.ndarray, look: _Look | None) -> None:
        track.center, track.width, track.last_frame = center, float(max(box[2], 1)), self._frame
        track.look = _blend(track.look, look)


def _vote(student: _Student, reading: str, settings: IdentitySettings) -> None:
    """Counts a frame's reading of the student's label, and shows the reading that wins: the first one read,
    until another has name_switch_frames frames more than it. A label cut short counts for the full name
    it begins, and a full name completing the one shown takes over at once with its frames."""
    prefix = settings.min_cut_prefix
    if student.name and _completes(reading, student.name, prefix):
        reading = student.name
    tally = student.tally
    key = reading.casefold()
    frames = tally.get(key, (reading, 0))[1] + 1
    if student.name and _completes(student.name, reading, prefix):
        frames += sum(count for shown, count in tally.values() if _completes(shown, reading, prefix))
        tally = student.tally = {
            folded: entry for folded, entry in tally.items() if not _completes(entry[0], reading, prefix)
        }
        student.name = reading
    tally[key] = (reading, frames)
    shown = tally.get(student.name.casefold(), (student.name, 0))[1]
    if not student.name or frames >= shown + settings.name_switch_frames:
        student.name = reading
    if len(tally) > TALLY_SIZE:
        kept = {key, student.name.casefold()}
        del tally[min((k for k in tally if k not in kept), key=lambda k: tally[k][1])]


def _look(image: np.ndarray, box: np.ndarray, pose: np.ndarray, frontal_degrees: float) -> _Look | None:
    """The appearance of the face in `box`, and whether its keypoint pose (yaw, pitch) faces the camera
    (within frontal_degrees); None when the box is empty."""
    patch = face_appearance(image, box)
    if patch is None:
        return None
    return _Look(patch, patch if bool((np.abs(pose) <= frontal_degrees).all()) else None)


def _blend(known: _Look | None, seen: _Look | None) -> _Look | None:
    """A student's look after a new sighting, each part moved APPEARANCE_UPDATE of the way to it."""
    if known is None or seen is None:
        return seen or known
    frontal = known.frontal if seen.frontal is None else _mix(known.frontal, seen.frontal)
    return _Look(_mix(known.patch, seen.patch), frontal)


def _mix(known: np.ndarray | None, seen: np.ndarray) -> np.ndarray:
    """The unit patch APPEARANCE_UPDATE of the way from `known` (if any) to `seen`."""
    if known is None:
        return seen
    mixed = (1 - APPEARANCE_UPDATE) * known + APPEARANCE_UPDATE * seen
    return mixed / max(float(np.linalg.norm(mixed)), 1e-6)


def _someone_else(known: _Look | None, seen: _Look | None, different: float) -> bool:
    """Whether two looks, both seen facing the camera, clearly belong to two people (correlate below
    `different`)."""
    if known is None or seen is None or known.frontal is None or seen.frontal is None:
        return False
    return float(known.frontal @ seen.frontal) < different


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


def _patches(looks: Iterable[_Look | None]) -> np.ndarray:
    """(N, APPEARANCE_SIZE**2) appearance patches, NaN rows for no face: a product with NaN is NaN."""
    rows = [np.full(APPEARANCE_SIZE**2, np.nan, np.float32) if look is None else look.patch for look in looks]
    return np.array(rows, np.float32).reshape(len(rows), APPEARANCE_SIZE**2)


def _possible(seen: list[_Tile], students: list[_Student], likeness: np.ndarray, match: float) -> np.ndarray:
    """(tiles, students): the pairs _cost may accept (both named, faces alike by `match`, or the same place)."""
    named = np.array([bool(tile.name) for tile in seen], bool)[:, None] & np.array(
        [bool(s.name) for s in students], bool
    )
    boxes = np.array([(t.box.x, t.box.y, t.box.w, t.box.h) for t in seen]).reshape(-1, 1, 4)
    places = np.array([(s.tile.x, s.tile.y, s.tile.w, s.tile.h) for s in students]).reshape(1, -1, 4)
    same_box = (boxes == places).all(axis=2)
    same_rank = np.array([tile.rank for tile in seen], int)[:, None] == np.array([s.rank for s in students], int)
    with np.errstate(invalid="ignore"):
        alike = likeness >= match
    candidates: np.ndarray = named | alike | same_box | (np.isnan(likeness) & same_rank)
    return candidates


def _cost(
    tile: _Tile, student: _Student, diagonal: float, patch_likeness: float, settings: IdentitySettings
) -> float | None:
    """How well the tile fits the student (lower is better), or None when it cannot be them. patch_likeness:
    their faces' correlation, NaN without both faces."""
    prefix = settings.min_cut_prefix
    moved = float(np.hypot(*np.subtract(tile.box.center, student.tile.center))) / max(diagonal, 1.0)
    likeness = None if np.isnan(patch_likeness) else float(patch_likeness)
    if tile.name and student.name:
        read, shown = tile.name.casefold(), student.name.casefold()
        if read == shown:
            tier = 0
        elif (
            read in student.tally
            or _name_likeness(read, shown) >= settings.name_match
            or _completes(tile.name, student.name, prefix)
            or _completes(student.name, tile.name, prefix)
        ):
            tier = 1
        elif (likeness is not None and likeness >= settings.appearance_sure) or (
            tile.box == student.tile
            and _name_likeness(read, shown) >= settings.misread_likeness
            and not _someone_else(student.look, tile.look, settings.appearance_different)
        ):
            tier = 2  # a misread name: the face, or the same label in the same place, says who it is
        else:
            return None  # two different names are two students
    elif likeness is not None and likeness >= settings.appearance_match:
        tier = 2
    elif (tile.box == student.tile or (likeness is None and tile.rank == student.rank)) and not _someone_else(
        student.look, tile.look, settings.appearance_different
    ):
        # Only the place to go by: a nameless camera-off tile, or a face turned away in a layout that
        # did not change. Everyone the better evidence placed is taken by then.
        tier = 3
    else:
        return None
    return tier * TIER_COST + (1 - likeness if likeness is not None else 1.0) + settings.position_weight * moved


def _completes(short: str, name: str, min_prefix: int) -> bool:
    """Whether `name` is longer than `short`, a name cut short ("Christopher Colq…"), and starts as it does
    (at least min_prefix characters of it, so a lone initial matches nobody)."""
    if not short.endswith(ELLIPSIS):
        return False
    prefix, rest = short[: -len(ELLIPSIS)].casefold(), name.removesuffix(ELLIPSIS).casefold()
    return len(prefix) >= min_prefix and len(rest) > len(prefix) and rest.startswith(prefix)


@functools.lru_cache(maxsize=1 << 16)
def _name_likeness(a: str, b: str) -> float:
    # Spaces aside: OCR runs small word spaces together ("DavitRoss"). Cached: a class's names are compared
    # with each other frame after frame.
    return difflib.SequenceMatcher(None, "".join(a.split()), "".join(b.split())).ratio()


def _extent(boxes: list[Box]) -> tuple[int, int]:
    return max(b.x + b.w for b in boxes), max(b.y + b.h for b in boxes)
