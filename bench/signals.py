"""Milliseconds per frame for the attention signals of a 49-face 1080p gallery (capture/signals.py).

`python -m bench.signals [--frames N]`. The faces are real photos (skimage's astronaut and cameraman,
matplotlib's Grace Hopper, each also mirrored) composed into a 7x7 gallery. Timed per frame, each with the presence
check of faceless tiles: the landmark models on a rotating few students per frame (SignalSettings.landmark_faces,
the live path) and on every face (1 and 2 threads), and the keypoint-only fallback; then the issue's target,
identity (no OCR due) + rotating signals per frame, median and p95 over `--combined-frames` frames, on 7x7
galleries of 49 different LFW faces (with name labels, as bench/identity.py draws them, and without: every
tile then matched by appearance, the costlier case); and, as a yardstick for a busy machine, BlazeFace
detection on the same frame. Compare rows of one run only: the machine's load moves them all.

Then the eyes-closed latency: how long after a student's eyes close the analytics raise the "eyes closed
for more than 10 s" flag, at 1 frame/s. Every frame is the gallery with fresh sensor noise (sigma 3) and its
faces detected anew (so the keypoints jitter as live); after a first round of visits one astronaut's eyes
shut (the painted-shut photo of tests/test_signals.py) and stay shut. Trials: several astronaut tiles, each
closing at every phase of the rotation; the flag comes from analytics.flags.episodes on the stored values
(eyes_closed, landmarks_age), as a report would raise it. With the eye-change cue and with the rotation alone.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import cv2
import numpy as np
import pandas as pd

from analytics.flags import episodes
from bench.identity import class_names
from capture.detect import make_detector
from capture.detect.regions import find_faces
from capture.grid import find_tile_grid
from capture.names import NameReader
from capture.signals import SignalEstimator, SignalSettings
from capture.students import StudentTracker
from tests.galleries import astronaut, compose_gallery, eyes_painted_shut, grace_hopper, lfw_faces
from vocabulary.records import FaceDetections

GALLERY_COLS = GALLERY_ROWS = 7
FACES = 49
# The flag's hold, as config/classpulse.toml sets it, and the latency trials' noise and sizes.
EYES_CLOSED_SECONDS = 10.0
NOISE_SIGMA = 3.0
NOISY_FRAMES = 3  # noisy versions of each gallery, detected once and drawn at random per frame
CLOSING_TILES = 4


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


def time_identity_and_signals(detector, image: np.ndarray, frames: int) -> list[float]:
    """Ms per frame of the pipeline's identity stage (names from the cache, matching) + rotating signals, as
    capture/pipeline.py runs them on the gallery `image`; no label is read after the first frame."""
    tiles = find_tile_grid(image) or []
    found = find_faces(detector, image, tiles)
    tracker, reader, estimator = StudentTracker(), NameReader(), SignalEstimator()

    def one_frame() -> None:
        keys = tracker.assign(tiles, found, image, reader.read(image, tiles))
        estimator.faces(image, found, keys)
        estimator.empty_tiles(image, tiles, found)

    one_frame()  # reads the labels (OCR) and sizes the interpreters
    ocr_calls = reader.tesseract_calls
    times = []
    for _ in range(frames):
        started = time.perf_counter()
        one_frame()
        times.append((time.perf_counter() - started) * 1000)
    assert reader.tesseract_calls == ocr_calls, "OCR ran in a timed frame"
    return times


Noisy = list[tuple[np.ndarray, FaceDetections, list[str]]]


def noisy_frames(detector, image: np.ndarray, rng: np.random.Generator) -> Noisy:
    """NOISY_FRAMES copies of `image` with sensor noise, each with its detections and a key per face."""
    frames = []
    for _ in range(NOISY_FRAMES):
        noisy = np.clip(image + rng.normal(0, NOISE_SIGMA, image.shape), 0, 255).astype(np.uint8)
        found = find_faces(detector, noisy, find_tile_grid(noisy))
        frames.append((noisy, found, [f"tile-{tile}" for tile in found.tiles]))
    return frames


def flag_latency(
    settings: SignalSettings, open_eyes: Noisy, shut: Noisy, key: str, phase: int, rng: np.random.Generator
) -> float | None:
    """Seconds from the eyes shutting to the flag, at 1 frame/s; the eyes shut after a first round of visits
    plus `phase` frames. None: no flag within two rounds and the hold."""
    estimator = SignalEstimator(settings)
    rounds = math.ceil(len(open_eyes[0][1]) / settings.landmark_faces)
    warmup = rounds + phase
    closed: list[bool] = []
    ages: list[float] = []
    for frame in range(warmup + 2 * rounds + int(EYES_CLOSED_SECONDS) + 2):
        image, found, keys = (open_eyes if frame < warmup else shut)[rng.integers(NOISY_FRAMES)]
        signals = estimator.faces(image, found, keys)
        mine = signals[keys.index(key)] if key in keys else None
        closed.append(mine is not None and bool(mine.eyes_closed))
        ages.append(np.nan if mine is None or mine.landmarks_age is None else mine.landmarks_age)
        if frame < warmup:
            continue
        seconds = np.arange(len(closed), dtype=float)
        ts = pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
        measured = pd.Series(pd.to_datetime(seconds - np.nan_to_num(ages), unit="s", utc=True))
        for start, raised, _ in episodes(ts, np.array(closed), EYES_CLOSED_SECONDS, measured):
            if start >= warmup:
                return float(raised - warmup)
    return None


def _reads_closed(
    estimator: SignalEstimator, image: np.ndarray, found: FaceDetections, keys: list[str], key: str
) -> bool:
    return key in keys and bool(estimator.faces(image, found)[keys.index(key)].eyes_closed)


def bench_latency(detector, photos: list[np.ndarray], trials_rng: np.random.Generator) -> None:
    faces = [photos[i % len(photos)] for i in range(FACES)]
    open_eyes = noisy_frames(detector, compose_gallery(faces, GALLERY_COLS, GALLERY_ROWS).image, trials_rng)
    shut_astronaut = eyes_painted_shut(astronaut())[40:240, 130:320]
    astronauts = [i for i in range(FACES) if i % len(photos) == 0]
    # Faces 40-50 px wide are small for the iris model: the painted-shut eyes read 0.13-0.21, so only tiles
    # where every noisy frame, every face measured, reads closed time the rotation rather than the model.
    shut: dict[int, Noisy] = {}
    tried = 0
    for tile in astronauts:
        if len(shut) == CLOSING_TILES:
            break
        tried += 1
        with_shut = [shut_astronaut if i == tile else face for i, face in enumerate(faces)]
        gallery = compose_gallery(with_shut, GALLERY_COLS, GALLERY_ROWS)
        frames = noisy_frames(detector, gallery.image, trials_rng)
        every_face = SignalEstimator()
        if all(_reads_closed(every_face, image, found, keys, f"tile-{tile}") for image, found, keys in frames):
            shut[tile] = frames
    default = SignalSettings()
    period = math.ceil(FACES / default.landmark_faces)
    print(
        f"eyes-closed flag ({EYES_CLOSED_SECONDS:g} s hold) after the eyes shut, 1 frame/s: {len(shut)} astronaut "
        f"tiles whose painted-shut eyes read closed (of {tried} tried) x {period} phases"
    )
    print(f"{'':<38}{'median s':>10}{'worst s':>10}{'missed':>8}")
    for label, settings in [
        ("eye-change cue + rotation (live)", default),
        ("rotation alone, every slot", SignalSettings(eye_change=3.0, landmark_refresh_frames=1)),
    ]:
        latencies = [
            flag_latency(settings, open_eyes, shut[tile], f"tile-{tile}", phase, trials_rng)
            for tile in shut
            for phase in range(period)
        ]
        found = [latency for latency in latencies if latency is not None]
        print(f"{label:<38}{statistics.median(found):>10.0f}{max(found):>10.0f}{len(latencies) - len(found):>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--combined-frames", type=int, default=100, help="frames of the identity + signals run")
    args = parser.parse_args(argv)
    photos = face_photos()
    gallery = compose_gallery([photos[i % len(photos)] for i in range(FACES)], GALLERY_COLS, GALLERY_ROWS)
    detector = make_detector("blazeface")
    found = find_faces(detector, gallery.image, find_tile_grid(gallery.image))
    print(f"7x7 gallery, 1920x1080, {len(found)} of {FACES} faces found, {args.frames} frames, {os.cpu_count()} CPUs")
    print(f"{'signals':<38}{'median ms/frame':>16}")
    keys = [f"tile-{tile}" for tile in found.tiles]
    default = SignalSettings().landmark_faces
    # Rotating: k students per frame, each visited every ceil(faces / k) frames (every slot filled, as before
    # landmark_refresh_frames); then the live default, whose unchanged faces take ceil(faces / R) slots a frame.
    rows: list[tuple[str, SignalEstimator, list[str] | None]] = [
        (
            f"mesh + iris, {k} faces/frame (every {-(-len(found) // k)})",
            SignalEstimator(SignalSettings(landmark_faces=k, landmark_refresh_frames=1)),
            keys,
        )
        for k in sorted({4, 6, 8, default})
    ]
    refresh = SignalSettings().landmark_refresh_frames
    rows += [
        (f"mesh + iris, live* (<= {default}, every {refresh})", SignalEstimator(), keys),
        ("mesh + iris, every face, 1 thread", SignalEstimator(num_threads=1), None),
        ("mesh + iris, every face, 2 threads", SignalEstimator(num_threads=2), None),
        ("BlazeFace keypoints only", SignalEstimator(use_landmarks=False), None),
    ]
    for label, estimator, rotation in rows:
        print(f"{label:<38}{time_per_frame(estimator, gallery.image, found, args.frames, rotation):>16.1f}")
    drawn, _ = class_names(FACES, np.random.default_rng(0))
    for labels, names in (("names", drawn), ("no labels", None)):
        lfw = compose_gallery(lfw_faces(FACES), GALLERY_COLS, GALLERY_ROWS, names=names)
        ms = time_identity_and_signals(detector, lfw.image, args.combined_frames)
        label = f"identity + signals, {labels} (<= 30)"
        print(f"{label:<38}{statistics.median(ms):>16.1f}   p95 {np.percentile(ms, 95):.1f}, {len(ms)} frames")
    detect_ms = []
    for _ in range(args.frames):
        started = time.perf_counter()
        find_faces(detector, gallery.image, find_tile_grid(gallery.image))
        detect_ms.append((time.perf_counter() - started) * 1000)
    print(f"{'(yardstick) grid + BlazeFace detect':<38}{statistics.median(detect_ms):>16.1f}")
    bench_latency(detector, photos, np.random.default_rng(0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
