"""Evaluates an emotion model file: `python -m model.evaluate --data PATH --usage PublicTest|PrivateTest [--tta]`.

Prints per-class precision, recall and F1, writes the confusion matrix and the reliability diagram as PNGs
(the diagram beside the matrix, `<name>-reliability.png`), and ends with the expected calibration error
(15 equal-width bins on the top probability) and the accuracy: `ece=0.XXXX`, then `accuracy=0.XXXX`.
`--tta` averages each face with its horizontal mirror.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from model.calibration import plot_reliability, reliability  # noqa: E402
from model.data import FerDataError, load_fer2013  # noqa: E402
from model.metrics import Scores, score  # noqa: E402
from model.predictors import load_predictor, predict_all, with_flip  # noqa: E402
from model.runtime import DEFAULT_MODEL, ModelFileError  # noqa: E402
from vocabulary.emotions import EMOTIONS  # noqa: E402


def plot_confusion(scores: Scores, title: str, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = scores.confusion / np.maximum(scores.confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), share in np.ndenumerate(rows):
        ax.text(
            j,
            i,
            f"{share:.2f}\n({scores.confusion[i, j]})",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if share > 0.5 else "black",
        )
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="FER2013 CSV(.gz) or image-folder root")
    parser.add_argument("--usage", required=True, choices=("PublicTest", "PrivateTest"))
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=".tflite or .keras file")
    parser.add_argument("--tta", action="store_true", help="average over the face and its mirror image")
    parser.add_argument("--confusion", type=Path, help="PNG path (default: runs/confusion-<usage>.png)")
    args = parser.parse_args(argv)
    try:
        data = load_fer2013(args.data, usages=(args.usage,))
        predict = load_predictor(args.model)
    except (FerDataError, ModelFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    views = "face + horizontal mirror (flip TTA)" if args.tta else "face only (no TTA)"
    if args.tta:
        predict = with_flip(predict)
    probabilities = predict_all(predict, data.images)
    scores = score(data.labels, probabilities.argmax(axis=1))
    calibration = reliability(probabilities, data.labels)
    png = args.confusion or Path("runs") / f"confusion-{args.usage}{'-tta' if args.tta else ''}.png"
    diagram = png.with_name(f"{png.stem}-reliability.png")
    title = f"{args.model.name} on {args.usage} ({len(data)} faces)"
    plot_confusion(scores, title, png)
    plot_reliability(calibration, None, title, diagram)
    print(f"model: {args.model}\nrows: {len(data)} {args.usage}\nviews: {views}")
    print(scores.table())
    print(f"macro_f1={scores.macro_f1:.4f}\nconfusion matrix: {png}\nreliability diagram: {diagram}")
    print(f"ece={calibration.ece:.4f}")
    print(f"accuracy={scores.accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
