"""Exports a trained classifier for the live path: `python -m model.export --model FILE.keras --data PATH [--out DIR]`.

Writes `emotion.keras` and `emotion.tflite` (the file `model.runtime` loads) plus `emotion.json` with the
measured accuracies. Three TFLite files are made: float32, int8 weights with float activations, and full
int8. A quantised file is shipped only when it costs less than 0.3 points of PublicTest accuracy against
the Keras model; of those, the one whose answers agree most often with the Keras model's; else float32.
Full int8 is calibrated on PublicTest faces (their pixels only, never their labels): they are sharp like
live faces, where the Training faces are blurred, and the activation ranges must fit what is seen live.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from model.data import FerData, FerDataError, load_fer2013  # noqa: E402
from model.metrics import score  # noqa: E402
from model.predictors import load_keras_model, load_predictor, predict_all  # noqa: E402
from model.runtime import WEIGHTS_DIR  # noqa: E402

QUANTISED_MAX_ACCURACY_COST = 0.003
QUANTISATIONS = ("float32", "int8-weights", "int8")
CALIBRATION_ROWS = 500


def convert(keras_path: Path, quantisation: str, calibration: np.ndarray) -> bytes:
    """Keras file -> TFLite bytes with a dynamic batch, quantised as named (one of QUANTISATIONS)."""
    import tensorflow as tf

    model = load_keras_model(keras_path)
    with tempfile.TemporaryDirectory() as saved_model:
        model.export(saved_model, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if quantisation != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantisation == "int8":
            converter.representative_dataset = lambda: (
                [face[None, ..., None].astype(np.float32)] for face in calibration
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


def export(keras_path: Path, data_path: Path, out: Path) -> dict:
    select = load_fer2013(data_path, usages=("PublicTest",))
    if not len(select):
        raise FerDataError(f"{data_path}: export needs PublicTest rows to check the exported file")
    calibration = _calibration_faces(select)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        candidates = {name: work / f"{name}.tflite" for name in QUANTISATIONS}
        keras_probs = predict_all(load_predictor(keras_path), select.images)
        report = {"keras": _report(select, keras_probs, keras_probs)}
        for name, path in candidates.items():
            path.write_bytes(convert(keras_path, name, calibration))
            report[name] = _report(select, predict_all(load_predictor(path), select.images), keras_probs)
        chosen = _choose(report)
        shutil.copyfile(candidates[chosen], out / "emotion.tflite")
    if keras_path.resolve() != (out / "emotion.keras").resolve():
        shutil.copyfile(keras_path, out / "emotion.keras")
    summary = {"runtime_file": "emotion.tflite", "quantisation": chosen, "publictest_rows": len(select), **report}
    (out / "emotion.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _choose(report: dict) -> str:
    affordable = [
        name
        for name in QUANTISATIONS[1:]
        if report["keras"]["accuracy"] - report[name]["accuracy"] < QUANTISED_MAX_ACCURACY_COST
    ]
    return max(affordable, key=lambda name: report[name]["argmax_agreement_with_keras"], default="float32")


def _calibration_faces(faces: FerData) -> np.ndarray:
    pick = np.random.default_rng(0).choice(len(faces), size=min(CALIBRATION_ROWS, len(faces)), replace=False)
    return faces.images[np.sort(pick)]


def _report(select: FerData, probs: np.ndarray, keras_probs: np.ndarray) -> dict:
    predicted = probs.argmax(axis=1)
    scores = score(select.labels, predicted)
    return {
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "argmax_agreement_with_keras": round(float((predicted == keras_probs.argmax(axis=1)).mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.export", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="trained classifier (.keras)")
    parser.add_argument("--data", required=True, type=Path, help="FER2013 with PublicTest rows (for the checks)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: {args.model}: no such model file", file=sys.stderr)
        return 2
    try:
        summary = export(args.model, args.data, args.out)
    except FerDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'emotion.tflite'} ({summary['quantisation']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
