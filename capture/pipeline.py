"""Frame -> observations: find the tile grid, detect faces per tile, measure every face's attention signals
and classify its emotion in one batch each, key faces (and faceless tiles) to students.

Thread pools are pinned to the configuration's capture.threads (1; config/classpulse.toml gives the
measurement), because a teacher's laptop is busy with the video call itself: a frame is many small steps
(49 tile resizes, a few small matrix products, one LiteRT call per model), each too short to gain from a
second thread, and pool threads that spin while they wait for work take the core the next step needs. So
OpenCV, OpenBLAS and the landmark models run on that many threads here; BlazeFace and the emotion model are
built by the caller with the same count (their num_threads / threads); Tesseract runs on one OpenMP thread
(capture/names.py).
"""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

import cv2
import numpy as np

from capture.detect import FaceDetector
from capture.detect.regions import FaceFinder
from capture.layout import TileFinder
from capture.names import NameReader, check_languages
from capture.signals import SignalEstimator
from capture.students import StudentTracker
from config import CaptureConfig
from model.preprocess import face_crops
from model.runtime import EmotionClassifier
from vocabulary.records import Box, FaceDetections, FaceSignals, Frame, FrameResult, Layout, Observation, Presence

# numpy's and scipy's bundled OpenBLAS name their thread setter with a prefix (and numpy's 64-bit one a
# suffix); OpenCV's and a system OpenBLAS do not.
OPENBLAS_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def openblas_libraries() -> list[ctypes.CDLL]:
    """Every OpenBLAS loaded in this process (numpy's own, and any other a package brought)."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return []
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line.lower()}
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


def pin_threads(threads: int) -> None:
    """`threads` threads for OpenCV and for every OpenBLAS loaded in this process (see the module docstring)."""
    cv2.setNumThreads(threads)
    for library in openblas_libraries():
        setter = next((getattr(library, name) for name in OPENBLAS_SETTERS if hasattr(library, name)), None)
        if setter is not None:
            setter(threads)


class FramePipeline:
    """Analyses one frame at a time; holds the state that lives across frames (student tracks, the layout).

    classifier None: attention-only mode, no emotion is inferred (emotion recognition in education is
    restricted in some jurisdictions, EU AI Act Art. 5(1)(f)). settings: the configuration's [capture] (its
    defaults when None), each stage given its table: the tiles [capture.layout] and [capture.grid], where the
    detector looks [capture.regions], the names [capture.names] in ocr_lang's languages (other than eng,
    checked here), identity [capture.identity]. signals: an estimator of [capture.signals] when None.
    """

    def __init__(
        self,
        detector: FaceDetector,
        classifier: EmotionClassifier | None,
        signals: SignalEstimator | None = None,
        settings: CaptureConfig | None = None,
    ):
        settings = settings or CaptureConfig()
        if settings.ocr_lang != "eng":
            check_languages(settings.ocr_lang)
        pin_threads(settings.threads)
        self.detector = detector
        self.classifier = classifier
        self.signals = (
            signals if signals is not None else SignalEstimator(settings.signals, num_threads=settings.threads)
        )
        self.students = StudentTracker(settings.identity)
        self.names = NameReader(languages=settings.ocr_lang, settings=settings.names)
        self.tiles = TileFinder(settings.layout, settings.grid)
        self.faces = FaceFinder(detector, settings.regions)

    def locate(self, image: np.ndarray) -> tuple[Layout, list[Box] | None, FaceDetections]:
        """The frame's layout, its tiles (None without any) and every face in them: the stages before identity."""
        return self._locate(image)[:3]

    def _locate(self, image: np.ndarray) -> tuple[Layout, list[Box] | None, FaceDetections, dict[int, Presence]]:
        """locate, and what every tile would show without a face (camera off or empty), by tile index."""
        found = self.tiles.find(image)
        tiles = found.tiles or None
        # The gap grid sees every tile of the galleries it knows; other layouts may miss some.
        outside = found.layout is not Layout.GRID
        # A camera-off tile (a flat fill with a name, initials or a profile photo) shows no face: not looked at.
        presence = self.signals.empty_tiles(image, tiles, FaceDetections.empty()) if tiles else {}
        off = [tile for tile, seen in presence.items() if seen is Presence.CAMERA_OFF]
        return found.layout, tiles, self.faces.find(image, tiles, outside, off), presence

    def analyse(self, frame: Frame) -> FrameResult:
        started = time.perf_counter()
        layout, tiles, detections, presence = self._locate(frame.image)
        detected = time.perf_counter()
        # Names are read (Tesseract) only for tiles that are new or whose label changed.
        names = self.names.read(frame.image, tiles) if tiles is not None else None
        # Identity first: the signals visit a few students per frame with the landmark models, by key.
        keys = self.students.assign(tiles, detections, frame.image, names)
        identified = time.perf_counter()
        face_signals = self.signals.faces(frame.image, detections, keys)
        grid = tiles or []
        with_face = set(detections.tiles.tolist())
        empty_tiles = {index: seen for index, seen in presence.items() if index not in with_face}
        measured = time.perf_counter()
        if self.classifier is None:
            probabilities: list[np.ndarray | None] = [None] * len(detections)
        else:
            probabilities = list(self.classifier.predict(face_crops(frame.image, detections.boxes)))
        classified = time.perf_counter()
        observations = [
            Observation(
                student_key=key,
                tile=tiles[tile] if tiles is not None and tile >= 0 else None,
                box=Box(*(int(v) for v in box)),
                probabilities=probs,
                emotion=None if probs is None else int(np.argmax(probs)),
                signals=signals,
            )
            for key, box, tile, probs, signals in zip(
                keys, detections.boxes, detections.tiles, probabilities, face_signals, strict=True
            )
        ]
        # A faceless tile is still a student, present but unseen (camera off) or gone from the seat.
        observations += [
            Observation(self.students.tile_key(index), grid[index], grid[index], None, None, FaceSignals(presence))
            for index, presence in empty_tiles.items()
        ]
        return FrameResult(
            frame_index=frame.index,
            timestamp=frame.timestamp,
            observations=observations,
            processing_ms=(classified - started) * 1000,
            stage_ms={
                "detect": (detected - started) * 1000,
                "identity": (identified - detected) * 1000,
                "signals": (measured - identified) * 1000,
                "classify": (classified - measured) * 1000,
            },
            student_names=self.students.display_names(),
            layout=layout,
        )
