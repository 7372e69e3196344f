"""Exports a trained classifier for the live path: `python -m model.export --model FILE.keras --data PATH [--out DIR]`.

First a temperature is fitted on PublicTest (`model.calibration`) and folded into the classifier's output
layer, so the probabilities every form of the model gives mean what they say. Then it writes
`emotion.keras` (the calibrated reference), the runtime files `model.runtime` loads and `emotion.json`
with the runtime's settings, the temperature and the measured accuracies and calibration errors.

Four TFLite files are made: float32, float16 weights, int8 weights with float activations, and full int8.
The fast file (`emotion.tflite`): a quantised one when it costs less than 0.3 points of PublicTest accuracy
against the Keras model, of those the one whose answers agree most often with the Keras model's; else
float32. Behind a quantised fast file the float16 one ships as `emotion-refine.tflite` (half the size of
float32, which would break the 10 MB budget for the weights folder): the runtime re-runs in it every face
whose fast top-two probability margin lies below `refine_below`. That threshold is the smallest on a grid at
which the two files together agree with the Keras model on PublicTest as often as the refine file alone
does: refining more faces would not make them agree more. It is checked on Training faces it was not chosen
on. Full int8 is calibrated on Training faces (their pixels only): activation ranges need faces, not labels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from model.calibration import fit_temperature, negative_log_likelihood, reliability  # noqa: E402
from model.data import FerData, FerDataError, load_fer2013  # noqa: E402
from model.metrics import score  # noqa: E402
from model.predictors import load_keras_model, load_predictor, predict_all  # noqa: E402
from model.runtime import DEFAULT_MODEL, WEIGHTS_DIR, EmotionClassifier, top_margin  # noqa: E402

QUANTISED_MAX_ACCURACY_COST = 0.003
QUANTISATIONS = ("float32", "int8-weights", "int8")
REFINE_QUANTISATION = "float16"
RUNTIME_FILE = DEFAULT_MODEL.name
REFINE_FILE = "emotion-refine.tflite"
MARGIN_GRID = np.round(np.arange(0.005, 1.0001, 0.005), 3)
CALIBRATION_ROWS = 500
# Training faces for checking the threshold on faces it was not chosen on: as many as PublicTest has.
CHECK_ROWS = 3589
LIVE_BATCH = 49


def convert(keras_path: Path, quantisation: str, calibration: np.ndarray) -> bytes:
    """Keras file -> TFLite bytes with a dynamic batch, quantised as named (QUANTISATIONS or float16)."""
    import tensorflow as tf

    model = load_keras_model(keras_path)
    with tempfile.TemporaryDirectory() as saved_model:
        model.export(saved_model, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if quantisation != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantisation == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantisation == "int8":
            converter.representative_dataset = lambda: (
                [face[None, ..., None].astype(np.float32)] for face in calibration
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        flatbuffer: bytes = converter.convert()
        return flatbuffer


def export(keras_path: Path, data_path: Path, out: Path) -> dict[str, Any]:
    select = load_fer2013(data_path, usages=("PublicTest",))
    if not len(select):
        raise FerDataError(f"{data_path}: export needs PublicTest rows to check the exported file")
    check = _sample(load_fer2013(data_path, usages=("Training",)), CHECK_ROWS)
    out.mkdir(parents=True, exist_ok=True)
    calibration = _sample(check if len(check) else select, CALIBRATION_ROWS).images
    with tempfile.TemporaryDirectory() as work:
        raw_probs = predict_all(load_predictor(keras_path), select.images)
        temperature = fit_temperature(raw_probs, select.labels)
        keras_path = _with_temperature(keras_path, temperature, Path(work) / "calibrated.keras")
        keras_probs = predict_all(load_predictor(keras_path), select.images)
        report = {
            "keras_before_temperature": _report(select, raw_probs, keras_probs),
            "keras": _report(select, keras_probs, keras_probs),
        }
        probs = {}
        candidates = {name: Path(work) / f"{name}.tflite" for name in (*QUANTISATIONS, REFINE_QUANTISATION)}
        for name, path in candidates.items():
            path.write_bytes(convert(keras_path, name, calibration))
            probs[name] = predict_all(load_predictor(path), select.images)
            report[name] = _report(select, probs[name], keras_probs)
        chosen = _choose(report)
        shutil.copyfile(candidates[chosen], out / RUNTIME_FILE)
        shutil.copyfile(keras_path, out / "emotion.keras")
        settings = {"runtime_file": RUNTIME_FILE, "quantisation": chosen, "temperature": round(temperature, 4)}
        if chosen == "float32":
            (out / REFINE_FILE).unlink(missing_ok=True)
        else:
            shutil.copyfile(candidates[REFINE_QUANTISATION], out / REFINE_FILE)
            refine_below = _refine_threshold(probs[chosen], probs[REFINE_QUANTISATION], keras_probs)
            settings |= {
                "refine_file": REFINE_FILE,
                "refine_quantisation": REFINE_QUANTISATION,
                "refine_below": refine_below,
            }
    # The runtime reads its settings from this file: write them before measuring it as shipped.
    (out / "emotion.json").write_text(json.dumps(settings, indent=2) + "\n")
    summary = {**settings, "publictest_rows": len(select), **report}
    summary["live"] = _live_report(out / RUNTIME_FILE, select, keras_probs)
    if len(check):
        keras_check = predict_all(load_predictor(out / "emotion.keras"), check.images)
        summary["live_on_training_faces"] = {
            "rows": len(check),
            **_live_report(out / RUNTIME_FILE, check, keras_check, with_labels=False),
        }
    (out / "emotion.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _with_temperature(keras_path: Path, temperature: float, calibrated_path: Path) -> Path:
    from model.architecture import with_temperature

    with_temperature(load_keras_model(keras_path), temperature).save(calibrated_path)
    return calibrated_path


def _choose(report: dict[str, Any]) -> str:
    affordable = [
        name
        for name in QUANTISATIONS[1:]
        if report["keras"]["accuracy"] - report[name]["accuracy"] < QUANTISED_MAX_ACCURACY_COST
    ]
    return max(affordable, key=lambda name: report[name]["argmax_agreement_with_keras"], default="float32")


def _refine_threshold(fast: np.ndarray, refine: np.ndarray, keras_probs: np.ndarray) -> float:
    """The smallest margin on MARGIN_GRID below which refining makes the pair agree with Keras on these
    faces as often as the refine file alone (the last grid step refines every face)."""
    wanted = _agreement(refine, keras_probs)
    margins = top_margin(fast / fast.sum(axis=1, keepdims=True))
    for threshold in MARGIN_GRID:
        if _agreement(np.where((margins < threshold)[:, None], refine, fast), keras_probs) >= wanted:
            return float(threshold)
    return float(MARGIN_GRID[-1])


def _live_report(
    runtime_file: Path, faces: FerData, keras_probs: np.ndarray, with_labels: bool = True
) -> dict[str, Any]:
    """The shipped runtime as the live path runs it, in 49-face batches."""
    classifier = EmotionClassifier(runtime_file)
    probs = predict_all(classifier.predict, faces.images, batch=LIVE_BATCH)
    summary = _report(faces, probs, keras_probs) if with_labels else {}
    summary["argmax_agreement_with_keras"] = round(_agreement(probs, keras_probs), 4)
    summary["refined_share"] = round(classifier.faces_refined / classifier.faces_seen, 4)
    return summary


def _sample(faces: FerData, rows: int) -> FerData:
    pick = np.sort(np.random.default_rng(0).choice(len(faces), size=min(rows, len(faces)), replace=False))
    return faces.take(pick)


def _agreement(probs: np.ndarray, keras_probs: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == keras_probs.argmax(axis=1)).mean())


def _report(select: FerData, probs: np.ndarray, keras_probs: np.ndarray) -> dict[str, Any]:
    scores = score(select.labels, probs.argmax(axis=1))
    return {
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "ece": round(reliability(probs, select.labels).ece, 4),
        "nll": round(negative_log_likelihood(probs, select.labels), 4),
        "argmax_agreement_with_keras": round(_agreement(probs, keras_probs), 4),
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
    refine = f" + {summary['refine_file']} below margin {summary['refine_below']}" if "refine_file" in summary else ""
    print(f"wrote {args.out / RUNTIME_FILE} ({summary['quantisation']}){refine}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
