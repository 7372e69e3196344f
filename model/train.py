"""Trains the emotion classifier on FER2013: `python -m model.train --data PATH [--epochs N] [--out DIR] [--resume]`.

Training rows train; PublicTest rows choose the checkpoint (or, for a folder without them, a fixed 10 %
of Training). PrivateTest rows are never read here. Every epoch writes `last.keras` (with optimizer state,
so `--resume` continues exactly), `best.keras` (highest selection accuracy), `log.csv` and `curves.png`;
the end writes `classifier.keras`, the best classifier behind its sharpness match, ready for `model.export`.
Selection faces are blurred to the Training faces' sharpness (`model.sharpness`) before they are scored,
exactly as the shipped model blurs every face it is given.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import FerData, FerDataError, load_fer2013
from model.emotions import NUM_CLASSES
from model.sharpness import estimate_blur_sigma, gaussian_blur

# Keras (and TensorFlow under it) is imported only once the data has loaded: a bad file is then reported
# in one line, without TensorFlow's start-up chatter on stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSIFIER_LAYER = "emotion_classifier"


@dataclass(frozen=True)
class Recipe:
    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 1.5e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    # Class weights are (largest count / count) ** this: 0.5 lifts Disgust (436 rows) ~4x, not ~16x,
    # which in trials of this kind keeps the common classes' precision from collapsing.
    class_weight_power: float = 0.5
    seed: int = 1337


def split_for_training(data: FerData, seed: int) -> tuple[FerData, FerData]:
    """Training rows and selection rows (PublicTest, else a fixed 10 % of Training)."""
    train, select = data.subset("Training"), data.subset("PublicTest")
    if len(select):
        return train, select
    order = np.random.default_rng(seed).permutation(len(train))
    cut = max(1, len(train) // 10)
    pick = lambda idx: FerData(train.images[idx], train.labels[idx], train.usage[idx])  # noqa: E731
    return pick(order[cut:]), pick(order[:cut])


def class_weights(labels: np.ndarray, power: float) -> dict[int, float]:
    counts = np.maximum(np.bincount(labels, minlength=NUM_CLASSES), 1)
    weights = (counts.max() / counts) ** power
    weights /= (weights * counts).sum() / counts.sum()  # mean weight over the rows is 1
    return {label: float(w) for label, w in enumerate(weights)}


def as_inputs(data: FerData, blur_sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    x = gaussian_blur(data.images, blur_sigma)[..., None]
    return x, np.eye(NUM_CLASSES, dtype=np.float32)[data.labels]


def build_compiled_model(recipe: Recipe, steps_per_epoch: int):
    import keras

    from model.architecture import build_classifier, build_training_model

    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.learning_rate / 100,
        warmup_target=recipe.learning_rate,
        warmup_steps=recipe.warmup_epochs * steps_per_epoch,
        decay_steps=max(1, (recipe.epochs - recipe.warmup_epochs) * steps_per_epoch),
    )
    model = build_training_model(build_classifier(), recipe.seed)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def completed_epochs(log_path: Path) -> int:
    if not log_path.exists():
        return 0
    with log_path.open() as f:
        return sum(1 for _ in csv.DictReader(f))


def plot_learning_curves(log_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not log_path.exists():
        return
    with log_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, [float(r[metric]) for r in rows], label="training (augmented)")
        ax.plot(epochs, [float(r[f"val_{metric}"]) for r in rows], label="selection (PublicTest)")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def train(data: FerData, out: Path, recipe: Recipe, resume: bool, limit: int | None = None) -> Path:
    import keras

    from model.architecture import build_inference_model

    keras.utils.set_random_seed(recipe.seed)
    train_rows, select_rows = split_for_training(data, recipe.seed)
    if limit:
        train_rows = FerData(train_rows.images[:limit], train_rows.labels[:limit], train_rows.usage[:limit])
        select_rows = FerData(select_rows.images[:limit], select_rows.labels[:limit], select_rows.usage[:limit])
    blur_sigma = estimate_blur_sigma(train_rows.images, select_rows.images)
    x_train, y_train = as_inputs(train_rows)
    x_select, y_select = as_inputs(select_rows, blur_sigma)
    steps = int(np.ceil(len(x_train) / recipe.batch_size))

    out.mkdir(parents=True, exist_ok=True)
    last, best, log = out / "last.keras", out / "best.keras", out / "log.csv"
    initial_epoch = completed_epochs(log) if resume and last.exists() else 0
    if initial_epoch:
        model = keras.saving.load_model(last)
        print(f"resuming after epoch {initial_epoch} from {last}")
    else:
        log.unlink(missing_ok=True)
        model = build_compiled_model(recipe, steps)
    print(
        f"training on {len(x_train)} rows, selecting on {len(x_select)} blurred by sigma {blur_sigma}; "
        f"{model.count_params():,} parameters"
    )

    callbacks = [
        keras.callbacks.ModelCheckpoint(last),
        keras.callbacks.ModelCheckpoint(
            best,
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            initial_value_threshold=_best_so_far(log) if initial_epoch else None,
        ),
        keras.callbacks.CSVLogger(str(log), append=bool(initial_epoch)),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: plot_learning_curves(log, out / "curves.png")),
    ]
    if initial_epoch < recipe.epochs:
        model.fit(
            x_train,
            y_train,
            batch_size=recipe.batch_size,
            epochs=recipe.epochs,
            initial_epoch=initial_epoch,
            validation_data=(x_select, y_select),
            class_weight=class_weights(train_rows.labels, recipe.class_weight_power),
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    classifier = keras.saving.load_model(best).get_layer(CLASSIFIER_LAYER)
    build_inference_model(classifier, blur_sigma).save(out / "classifier.keras")
    return out / "classifier.keras"


def _best_so_far(log_path: Path) -> float | None:
    with log_path.open() as f:
        scores = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
    return max(scores) if scores else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="FER2013 CSV(.gz) or image-folder root")
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--out", type=Path, default=Path("runs/emotion"))
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.keras")
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument("--limit", type=int, help="use only the first N rows of each split (smoke runs)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    try:
        data = load_fer2013(args.data, usages=("Training", "PublicTest"))
    except FerDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = train(data, args.out, recipe, args.resume, args.limit)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
