"""Frame -> observations: find the tile grid, detect faces per tile, measure every face's attention signals
and classify its emotion in one batch each, key faces (and faceless tiles) to students."""

from __future__ import annotations

import time

import numpy as np

from capture.detect import FaceDetector
from capture.detect.regions import find_faces
from capture.layout import TileFinder
from capture.names import NameReader, check_languages
from capture.signals import SignalEstimator
from capture.students import StudentTracker
from model.preprocess import face_crops
from model.runtime import EmotionClassifier
from vocabulary.records import Box, FaceDetections, FaceSignals, Frame, FrameResult, Layout, Observation


class FramePipeline:
    """Analyses one frame at a time; holds the state that lives across frames (student tracks, the layout).

    classifier None: attention-only mode, no emotion is inferred (emotion recognition in education is
    restricted in some jurisdictions, EU AI Act Art. 5(1)(f)). signals: the default estimator when None.
    ocr_lang: Tesseract languages for the name labels ("eng+kor"); other than eng, checked here.
    """

    def __init__(
        self,
        detector: FaceDetector,
        classifier: EmotionClassifier | None,
        signals: SignalEstimator | None = None,
        ocr_lang: str = "eng",
    ):
        if ocr_lang != "eng":
            check_languages(ocr_lang)
        self.detector = detector
        self.classifier = classifier
        self.signals = signals if signals is not None else SignalEstimator()
        self.students = StudentTracker()
        self.names = NameReader(languages=ocr_lang)
        self.tiles = TileFinder()

    def locate(self, image: np.ndarray) -> tuple[Layout, list[Box] | None, FaceDetections]:
        """The frame's layout, its tiles (None without any) and every face in them: the stages before identity."""
        found = self.tiles.find(image)
        tiles = found.tiles or None
        # The gap grid sees every tile of the galleries it knows; other layouts may miss some.
        outside = found.layout is not Layout.GRID
        return found.layout, tiles, find_faces(self.detector, image, tiles, outside)

    def analyse(self, frame: Frame) -> FrameResult:
        started = time.perf_counter()
        layout, tiles, detections = self.locate(frame.image)
        detected = time.perf_counter()
        # Names are read (Tesseract) only for tiles that are new or whose label changed.
        names = self.names.read(frame.image, tiles) if tiles is not None else None
        # Identity first: the signals visit a few students per frame with the landmark models, by key.
        keys = self.students.assign(tiles, detections, frame.image, names)
        identified = time.perf_counter()
        face_signals = self.signals.faces(frame.image, detections, keys)
        grid = tiles or []
        empty_tiles = self.signals.empty_tiles(frame.image, grid, detections)
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
