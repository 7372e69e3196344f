"""Milliseconds per frame for the attention signals of a 49-face 1080p gallery (capture/signals.py).

`python -m bench.signals [--frames N]`. The faces are real photos (skimage's astronaut and cameraman,
matplotlib's Grace Hopper, each also mirrored) composed into a 7x7 gallery. Timed per frame, each with the presence
check of faceless tiles: the landmark models on a rotating few students per frame (SignalSettings.landmark_faces,
the live path) and on every face (1 and 2 threads), and the keypoint-only fallback; then the issue's target,
identity (no OCR due) + rotating signals; and, as a yardstick for a busy machine, BlazeFace detection on the
same frame. Compare rows of one run only: the machine's load moves them all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import cv2
import numpy as np

from capture.detect import make_detector
from capture.detect.regions import find_faces
from capture.grid import find_tile_grid
from capture.names import NameReader
from capture.signals import SignalEstimator, SignalSettings
from capture.students import StudentTracker
from capture.types import FaceDetections
from tests.galleries import astronaut, compose_gallery, grace_hopper

GALLERY_COLS = GALLERY_ROWS = 7
FACES = 49


def face_photos() -> list[np.ndarray]:
    """Head-and-shoulders crops of the sample photos and their mirror images."""
    from skimage import data

    cameraman = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    crops = [astronaut()[40:240, 130:320], cameraman[90:260, 140:310]]
    hopper = grace_hopper()
    if hopper is not None:
        crops.append(hopper[90:400, 120:420])
    return crops + [crop[:, ::-1].copy() for crop in crops]


def time_per_frame(
    estimator: SignalEstimator, image: np.ndarray, found: FaceDetections, frames: int, keys: list[str] | None
) -> float:
    """Median ms of one frame's signals: every face (rotating over `keys`, or all faces without), then every
    faceless tile."""
    tiles = find_tile_grid(image) or []
    times = []
    for _ in range(frames + 1):  # the first call sizes the interpreters for the batch
        started = time.perf_counter()
        estimator.faces(image, found, keys)
        estimator.empty_tiles(image, tiles, found)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def time_identity_and_signals(image: np.ndarray, found: FaceDetections, frames: int) -> float:
    """Median ms of the pipeline's identity stage (names from the cache, matching) + rotating signals."""
    tiles = find_tile_grid(image) or []
    tracker, reader, estimator = StudentTracker(), NameReader(), SignalEstimator()
    times = []
    for _ in range(frames + 1):  # the first frame reads the labels (OCR) and sizes the interpreters
        started = time.perf_counter()
        keys = tracker.assign(tiles, found, image, reader.read(image, tiles))
        estimator.faces(image, found, keys)
        estimator.empty_tiles(image, tiles, found)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args(argv)
    photos = face_photos()
    gallery = compose_gallery([photos[i % len(photos)] for i in range(FACES)], GALLERY_COLS, GALLERY_ROWS)
    detector = make_detector("blazeface")
    found = find_faces(detector, gallery.image, find_tile_grid(gallery.image))
    print(f"7x7 gallery, 1920x1080, {len(found)} of {FACES} faces found, {args.frames} frames, {os.cpu_count()} CPUs")
    print(f"{'signals':<38}{'median ms/frame':>16}")
    keys = [f"tile-{tile}" for tile in found.tiles]
    default = SignalSettings().landmark_faces
    # Rotating: k students per frame, each visited every ceil(faces / k) frames; * marks the default.
    rows: list[tuple[str, SignalEstimator, list[str] | None]] = [
        (
            f"mesh + iris, {k} faces/frame{'*' if k == default else ''} (every {-(-len(found) // k)})",
            SignalEstimator(SignalSettings(landmark_faces=k)),
            keys,
        )
        for k in sorted({4, 6, 8, default})
    ]
    rows += [
        ("mesh + iris, every face, 1 thread", SignalEstimator(num_threads=1), None),
        ("mesh + iris, every face, 2 threads", SignalEstimator(num_threads=2), None),
        ("BlazeFace keypoints only", SignalEstimator(use_landmarks=False), None),
    ]
    for label, estimator, rotation in rows:
        print(f"{label:<38}{time_per_frame(estimator, gallery.image, found, args.frames, rotation):>16.1f}")
    identity_ms = time_identity_and_signals(gallery.image, found, args.frames)
    print(f"{'identity + signals (target <= 30)':<38}{identity_ms:>16.1f}")
    detect_ms = []
    for _ in range(args.frames):
        started = time.perf_counter()
        find_faces(detector, gallery.image, find_tile_grid(gallery.image))
        detect_ms.append((time.perf_counter() - started) * 1000)
    print(f"{'(yardstick) grid + BlazeFace detect':<38}{statistics.median(detect_ms):>16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
