"""Attention signals on real faces: head pose size and sign, eyes shut or open, faceless tiles, and the
rotation of the landmark models over students with their values carried in between."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import pytest

from capture.detect import make_detector
from capture.detect.regions import find_faces
from capture.grid import find_tile_grid
from capture.signals import IRIS_FILE, MESH_FILE, LandmarkModel, SignalEstimator, SignalSettings, keypoint_pose
from tests.galleries import astronaut, compose_gallery, eyes_painted_shut, grace_hopper
from vocabulary.records import FaceDetections, FaceSignals, Presence


@functools.cache
def estimator() -> SignalEstimator:
    return SignalEstimator()


def cameraman() -> np.ndarray:
    """skimage's cameraman: his head is turned well towards the image's right, looking into his camera."""
    from skimage import data

    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


def largest_face(image: np.ndarray, signals: SignalEstimator | None = None) -> FaceSignals:
    found = find_faces(make_detector(), image, None)
    assert len(found), "no face found"
    best = int(np.argmax(found.boxes[:, 2]))
    one = FaceDetections(found.boxes[best : best + 1], found.scores[best : best + 1], found.keypoints[best : best + 1],
                         found.tiles[best : best + 1])  # fmt: skip
    (face,) = (signals or estimator()).faces(image, one)
    return face


def photos() -> dict[str, np.ndarray]:
    hopper = grace_hopper()
    if hopper is None:
        pytest.skip("matplotlib (grace_hopper.jpg) is not installed")
    return {"astronaut": astronaut(), "grace_hopper": hopper}


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_a_face_looking_into_the_camera_has_a_small_pose_and_open_eyes(name: str, mirrored: bool) -> None:
    image = photos()[name]
    face = largest_face(image[:, ::-1].copy() if mirrored else image)
    assert face.presence is Presence.FACE
    assert face.yaw is not None and abs(face.yaw) < 10
    assert face.pitch is not None and abs(face.pitch) < 15
    assert face.eye_ratio is not None and face.eye_ratio > 0.25
    assert face.eyes_closed is False


@pytest.mark.parametrize("use_landmarks", [True, False], ids=["landmarks", "keypoints"])
def test_a_turned_head_has_a_large_yaw_whose_sign_flips_with_the_image(use_landmarks: bool) -> None:
    signals = estimator() if use_landmarks else SignalEstimator(use_landmarks=False)
    turned = largest_face(cameraman(), signals)
    mirrored = largest_face(cameraman()[:, ::-1].copy(), signals)
    assert turned.yaw is not None and mirrored.yaw is not None
    # He faces the image's right: positive yaw; the mirror image faces left by about as much.
    assert 30 < turned.yaw < 70
    assert -70 < mirrored.yaw < -30
    assert abs(turned.yaw + mirrored.yaw) < 12
    # Looking down into the viewfinder.
    assert turned.pitch is not None and turned.pitch < 0


def test_the_keypoint_fallback_reports_no_eyes() -> None:
    face = largest_face(astronaut(), SignalEstimator(use_landmarks=False))
    assert face.eye_ratio is None and face.eyes_closed is None
    assert face.yaw is not None and abs(face.yaw) < 10


def test_eyes_painted_shut_read_closed_and_the_threshold_decides() -> None:
    shut = eyes_painted_shut(astronaut())
    face = largest_face(shut)
    assert face.eye_ratio is not None and face.eye_ratio < 0.2
    assert face.eyes_closed is True
    lenient = largest_face(shut, SignalEstimator(SignalSettings(eyes_closed_ratio=0.05)))
    assert lenient.eyes_closed is False
    assert largest_face(astronaut()).eyes_closed is False


def test_keypoint_pose_of_a_symmetric_face_is_zero_and_a_nose_moved_right_turns_right() -> None:
    # Right eye, left eye, nose, mouth, right ear, left ear, as BlazeFace orders them (image coordinates).
    frontal = np.array([[40, 50], [80, 50], [60, 50 + 0.57 * 40], [60, 90], [20, 55], [100, 55]], np.float32)
    ((yaw, pitch),) = keypoint_pose(frontal[None])
    assert yaw == pytest.approx(0, abs=0.1) and pitch == pytest.approx(0, abs=0.1)
    right = frontal.copy()
    right[2, 0] += 10
    assert keypoint_pose(right[None])[0, 0] > 15
    up = frontal.copy()
    up[2, 1] -= 8
    assert keypoint_pose(up[None])[0, 1] > 10


def test_faceless_tiles_are_camera_off_or_empty_and_face_tiles_are_skipped() -> None:
    nobody = np.full((48, 48), 128, np.uint8)  # pasted into a room tile: a live camera with nobody in it
    gallery = compose_gallery([astronaut()[40:240, 130:320], nobody], 2, 2, camera_off={1, 3})
    tiles = find_tile_grid(gallery.image)
    assert tiles is not None and len(tiles) == 4
    found = find_faces(make_detector(), gallery.image, tiles)
    assert sorted(found.tiles.tolist()) == [0]
    presence = estimator().empty_tiles(gallery.image, tiles, found)
    assert presence == {1: Presence.CAMERA_OFF, 2: Presence.EMPTY, 3: Presence.CAMERA_OFF}


def gallery_faces(*extra: np.ndarray, eyes_shut: bool = False) -> tuple[np.ndarray, FaceDetections, list[str]]:
    """A 1080p gallery of the astronaut (her eyes painted shut with eyes_shut), the cameraman and their mirror
    images (plus `extra` faces), its detections and a student key per face (its tile)."""
    faces = [
        (eyes_painted_shut(astronaut()) if eyes_shut else astronaut())[40:240, 130:320],
        cameraman()[90:260, 140:310],
    ]
    faces += [face[:, ::-1].copy() for face in faces] + list(extra)
    cols = math.ceil(math.sqrt(len(faces)))
    gallery = compose_gallery(faces, cols, math.ceil(len(faces) / cols))
    found = find_faces(make_detector(), gallery.image, find_tile_grid(gallery.image))
    assert sorted(found.tiles.tolist()) == list(range(len(faces))), "a face was not found"
    return gallery.image, found, [f"tile-{tile}" for tile in found.tiles]


def test_the_rotation_visits_every_face_within_ceil_n_over_k_frames_and_carries_the_rest() -> None:
    image, found, keys = gallery_faces(photos()["grace_hopper"][90:400, 120:420])
    slots = 2
    # Every slot filled every frame (landmark_refresh_frames 1): the rotation at its fastest.
    rotating = SignalEstimator(SignalSettings(landmark_faces=slots, landmark_refresh_frames=1))
    one_off = estimator().faces(image, found)  # every face measured at once
    frames = [rotating.faces(image, found, keys) for _ in range(math.ceil(len(keys) / slots) + 1)]
    for frame in frames:
        assert sum(face.landmarks_age == 0 for face in frame) == slots
    *first_round, after = frames
    assert all(any(frame[i].landmarks_age == 0 for frame in first_round) for i in range(len(keys)))
    for i, face in enumerate(after):
        # Not visited this frame: the last visit's eyes and mesh-corrected pose (the same image, so the same
        # keypoints: exactly the mesh pose of that visit), with its age.
        assert face.landmarks_age is not None and face.landmarks_age <= len(first_round) - 1
        assert face.eye_ratio == pytest.approx(one_off[i].eye_ratio, abs=1e-3)
        assert face.yaw == pytest.approx(one_off[i].yaw, abs=0.1)
        assert face.pitch == pytest.approx(one_off[i].pitch, abs=0.1)
        assert face.eyes_closed is False
    # The head pose keeps its sign on faces not visited: the cameraman faces right, his mirror image left.
    cameraman_tile, mirrored_tile = keys.index("tile-1"), keys.index("tile-3")
    for frame in frames:
        assert frame[cameraman_tile].yaw is not None and frame[cameraman_tile].yaw > 30
        assert frame[mirrored_tile].yaw is not None and frame[mirrored_tile].yaw < -30


def test_unchanged_faces_are_visited_again_in_turn_within_landmark_refresh_frames() -> None:
    image, found, keys = gallery_faces(photos()["grace_hopper"][90:400, 120:420])
    refresh = 3
    rotating = SignalEstimator(SignalSettings(landmark_faces=len(keys), landmark_refresh_frames=refresh))
    first = rotating.faces(image, found, keys)
    assert all(face.landmarks_age == 0 for face in first)  # never visited: all at once, slots allowing
    turn = math.ceil(len(keys) / refresh)
    frames = [rotating.faces(image, found, keys) for _ in range(2 * refresh)]
    for frame in frames:
        # Nothing changed: only the turn's few, though every slot is free.
        assert sum(face.landmarks_age == 0 for face in frame) == turn
        assert all(face.landmarks_age is not None and face.landmarks_age <= refresh for face in frame)
        assert all(face.eyes_closed is False for face in frame)
    for i in range(len(keys)):
        assert any(frame[i].landmarks_age == 0 for frame in frames[:refresh])


def test_a_face_not_yet_visited_has_a_keypoint_pose_and_no_eyes() -> None:
    image, found, keys = gallery_faces()
    (visited, waiting, *_) = SignalEstimator(SignalSettings(landmark_faces=1)).faces(image, found, keys)
    assert visited.landmarks_age == 0 and visited.eye_ratio is not None
    assert waiting.landmarks_age is None and waiting.eye_ratio is None and waiting.eyes_closed is None
    assert waiting.yaw is not None


def test_eyes_that_read_closed_are_visited_again_every_frame() -> None:
    image, found, keys = gallery_faces(eyes_painted_shut(astronaut())[40:240, 130:320])
    shut = keys.index("tile-4")
    rotating = SignalEstimator(SignalSettings(landmark_faces=2))
    frames = [rotating.faces(image, found, keys) for _ in range(6)]
    first = next(n for n, frame in enumerate(frames) if frame[shut].landmarks_age == 0)
    assert first < math.ceil(len(keys) / 2)
    for frame in frames[first:]:
        assert frame[shut].landmarks_age == 0 and frame[shut].eyes_closed is True
        # Half the slots at most: the other students still rotate.
        assert sum(face.landmarks_age == 0 for face in frame) == 2


def test_eyes_that_close_between_visits_are_read_in_the_next_frame_not_at_their_turn() -> None:
    image, found, keys = gallery_faces()
    shut_image, shut_found, shut_keys = gallery_faces(eyes_shut=True)
    rotating = SignalEstimator(SignalSettings(landmark_faces=1))
    # A round so that every face has been visited, then on until the astronaut was the one just visited:
    # by the rotation she would now wait len(keys) - 1 frames.
    frames = [rotating.faces(image, found, keys) for _ in range(len(keys))]
    while frames[-1][keys.index("tile-0")].landmarks_age != 0:
        frames.append(rotating.faces(image, found, keys))
    for frame in frames[len(keys) :]:
        assert sum(face.landmarks_age == 0 for face in frame) == 1  # unchanged eyes: the rotation only
    shut = rotating.faces(shut_image, shut_found, shut_keys)[shut_keys.index("tile-0")]
    assert shut.landmarks_age == 0 and shut.eyes_closed is True


@pytest.mark.parametrize("model_file", [MESH_FILE, IRIS_FILE])
def test_landmark_models_give_each_face_its_own_answer_in_a_padded_batch(model_file: str) -> None:
    # A batch a little smaller than the last one is padded, and the iris model folds the batch into one
    # output row: each face must still get exactly its own outputs, as when it is run alone.
    model = LandmarkModel(model_file, num_threads=1)
    size = model.input_shape
    faces = np.random.default_rng(0).uniform(-1, 1, (6, *size)).astype(np.float32)
    model.run(faces)
    padded = model.run(faces[:5])
    alone = model.run(faces[4:5])
    for batch_output, single_output in zip(padded, alone, strict=True):
        assert batch_output.shape[0] == 5
        np.testing.assert_allclose(batch_output[4], single_output[0], atol=1e-3)
