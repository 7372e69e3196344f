"""Frame -> observations: find the tile grid,
detect faces per tile, classify every face in one batch, key faces to students."""

from __future__ import annotations

import time

import numpy as np

from capture.detect import FaceDetector
from capture.detect.regions import find_faces
from capture.grid import find_tile_grid
from capture.students import StudentTracker
from capture.types import Box, Frame, FrameResult, Observation
from model.preprocess import face_crops
from model.runtime import EmotionClassifier


class FramePipeline:
    """Analyses one frame at a time; holds the state that lives across frames (student tracks)."""

    def __init__(self, detector: FaceDetector, classifier: EmotionClassifier):
        self.detector = detector
        self.classifier = classifier
        self.students = StudentTracker()

    def analyse(self, frame: Frame) -> FrameResult:
        started = time.perf_counter()
        tiles = find_tile_grid(frame.image)
        detections = find_faces(self.detector, frame.image, tiles)
        detected = time.perf_counter()
        probabilities = self.classifier.predict(face_crops(frame.image, detections.boxes))
        classified = time.perf_counter()
        keys = self.students.assign(tiles, detections)
        observations = [
            Observation(
                student_key=key,
                tile=tiles[tile] if tiles is not None and tile >= 0 else None,
                box=Box(*(int(v) for v in box)),
                probabilities=probs,
                emotion=int(np.argmax(probs)),
            )
            for key, box, tile, probs in zip(keys, detections.boxes, detections.tiles, probabilities, strict=True)
        ]
        return FrameResult(
            frame_index=frame.index,
            timestamp=frame.timestamp,
            observations=observations,
            processing_ms=(classified - started) * 1000,
            stage_ms={"detect": (detected - started) * 1000, "classify": (classified - detected) * 1000},
        )
