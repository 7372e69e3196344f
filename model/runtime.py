"""Live emotion inference on the exported TFLite file with LiteRT: no TensorFlow import, one call per frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.data import FACE_SIZE

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "emotion.tflite"


class ModelFileError(RuntimeError):
    """The model file is missing or unreadable; the message says which file."""


class EmotionClassifier:
    """Classifies a batch of 48x48 grey faces into the 7 FER2013 probabilities in one interpreter call."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelFileError(f"emotion model {self.model_path} not found")
        try:
            self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=threads)
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(f"emotion model {self.model_path} cannot be loaded ({error})") from None
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = 0

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """faces: (N, 48, 48) uint8 grey -> (N, 7) float32 probabilities."""
        if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"expected (N, {FACE_SIZE}, {FACE_SIZE}) faces, got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, 7), np.float32)
        if len(faces) != self._batch:
            # Re-planning the graph costs ~1 ms; a gallery keeps its face count for many frames.
            self._interpreter.resize_tensor_input(self._input, [len(faces), FACE_SIZE, FACE_SIZE, 1])
            self._interpreter.allocate_tensors()
            self._batch = len(faces)
        self._interpreter.set_tensor(self._input, faces[..., None].astype(np.float32))
        self._interpreter.invoke()
        probabilities = self._interpreter.get_tensor(self._output)
        # An int8 softmax comes back in steps of 1/256 that need not sum to 1; rescale so they do.
        return probabilities / probabilities.sum(axis=1, keepdims=True)
