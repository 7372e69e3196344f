"""One calling convention for every form of the emotion model: (N, 48, 48) uint8 faces -> (N, 7) probabilities.

Used by evaluation, export checks and the benchmark to treat the Keras file, our TFLite file and the
peer model alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

Predict = Callable[[np.ndarray], np.ndarray]
EVAL_BATCH = 256


def load_predictor(path: str | Path) -> Predict:
    path = Path(path)
    if path.suffix == ".tflite":
        from model.runtime import EmotionClassifier

        return EmotionClassifier(path).predict
    if path.suffix in {".keras", ".h5"}:
        model = load_keras_model(path)
        # predict_on_batch runs a compiled graph: several times faster than calling the model eagerly.
        return lambda faces: np.asarray(model.predict_on_batch(faces[..., None].astype("float32")))
    raise ValueError(f"{path}: unknown model file type (expected .keras or .tflite)")


def load_keras_model(path: str | Path) -> keras.Model:
    import keras

    return keras.saving.load_model(path, compile=False)


def with_flip(predict: Predict) -> Predict:
    """Test-time augmentation: the mean of the face and its mirror image."""
    return lambda faces: (predict(faces) + predict(np.ascontiguousarray(faces[:, :, ::-1]))) / 2


def predict_all(predict: Predict, faces: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([predict(faces[i : i + batch]) for i in range(0, len(faces), batch)])
