"""Live emotion inference on the exported TFLite files with LiteRT: no TensorFlow import, one call per frame.

The export ships two files (see `model.export`): `emotion.tflite`, int8 weights, fast, and
`emotion-refine.tflite`, float16 weights, about 4 times slower per face but agreeing with the Keras model
almost always. Every face goes through the fast file; the faces whose top two probabilities lie closer than
the export's threshold (where int8 rounding can swap the answer) go through the refine file too, and its
answer replaces the fast one. `emotion.json` beside the fast file names the refine file and the threshold;
a TFLite file without that JSON runs alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from config import CaptureConfig
from model.litert import BatchModel
from vocabulary.emotions import FACE_SIZE, NUM_CLASSES

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "emotion.tflite"


class ModelFileError(RuntimeError):
    """The model file is missing or unreadable; the message says which file."""


def top_margin(probabilities: np.ndarray) -> np.ndarray:
    """(N, C) probabilities -> (N,) the highest minus the second highest."""
    top_two = np.partition(probabilities, -2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


class EmotionClassifier:
    """Classifies a batch of 48x48 grey faces into the 7 FER2013 probabilities, one predict call per frame.

    threads: LiteRT's threads per file; capture passes its capture.threads (one: on a laptop busy with the
    call, a second thread waits for a core more than it helps, see config/classpulse.toml)."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, threads: int = CaptureConfig().threads):
        self.model_path = Path(model_path)
        self._fast = _load(self.model_path, threads)
        # Without a refine file no margin is below 0: every face keeps the fast answer.
        self._refine: BatchModel | None = None
        self.refine_below = 0.0
        # Running totals, for the export's and the benchmark's report of how often the refine file runs.
        self.faces_seen = self.faces_refined = 0
        settings = self.model_path.with_suffix(".json")
        if settings.is_file():
            try:
                shipped = json.loads(settings.read_text())
                refine_file, refine_below = shipped.get("refine_file"), float(shipped.get("refine_below", 0))
            except (ValueError, AttributeError, TypeError) as error:
                raise ModelFileError(f"emotion model settings {settings} cannot be read ({error})") from None
            if refine_file:
                self._refine = _load(self.model_path.with_name(str(refine_file)), threads)
                self.refine_below = refine_below

    def predict(self, faces: np.ndarray) -> NDArray[np.float32]:
        """faces: (N, 48, 48) uint8 grey -> (N, 7) float32 probabilities, calibrated (see `model.calibration`)."""
        if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"expected (N, {FACE_SIZE}, {FACE_SIZE}) faces, got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        # Exact batch sizes, no padding: the refine batch changes size every frame, yet re-planning these
        # files costs less than padding does (5-8 faces a call: 4.9 ms exact, 5.4 ms padded to 8).
        inputs = faces[..., None].astype(np.float32)
        probabilities: NDArray[np.float32] = self._fast.run(inputs)[0]
        # A full-int8 softmax comes back in steps of 1/256 that need not sum to 1; rescale so they do.
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        unsure = top_margin(probabilities) < self.refine_below
        self.faces_seen, self.faces_refined = self.faces_seen + len(faces), self.faces_refined + int(unsure.sum())
        if self._refine is not None and unsure.any():
            probabilities[unsure] = self._refine.run(inputs[unsure])[0]
        return probabilities


def _load(path: Path, threads: int) -> BatchModel:
    if not path.is_file():
        raise ModelFileError(f"emotion model {path} not found")
    try:
        return BatchModel(path, threads)
    except (ValueError, RuntimeError) as error:
        raise ModelFileError(f"emotion model {path} cannot be loaded ({error})") from None
