"""Trains the emotion classifier on FER2013: `python -m model.train --data PATH [--ferplus VOTES] [--resume]`.

Training rows train; PublicTest rows choose the checkpoint (or, for a folder without them, a fixed 10 %
of Training). PrivateTest rows are never read here. Every epoch writes `last.keras` (with optimizer state,
so `--resume` continues exactly), `best.keras` (highest selection accuracy), `log.csv` and `curves.png`;
the end writes `classifier.keras`, the best classifier without optimizer state, ready for `model.export`.
With `--ferplus`, each Training face's target mixes its FER2013 label with the FER+ annotators' vote
shares (`Recipe.ferplus_weight`); with `--teacher`, a share of every target (`Recipe.teacher_weight`) comes
from a trained classifier's softened, flip-averaged probabilities on the face (distillation: the student
learns which wrong classes are close); `--teacher` given more than once distils an ensemble, its members'
log-probabilities averaged. Selection is always scored against the FER2013 labels.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from model.augment import augment
from model.data import FerData, FerDataError, count_rows, load_fer2013, load_ferplus_votes
from vocabulary.emotions import NUM_CLASSES

if TYPE_CHECKING:
    import keras

# Keras (and TensorFlow under it) is imported only once the data has loaded: a bad file is then reported
# in one line, without TensorFlow's start-up chatter on stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class Recipe:
    epochs: int = 50
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.05
    # Share of each target that comes from the FER+ vote shares (the rest from the FER2013 label).
    ferplus_weight: float = 0.5
    # Class weights are (largest count / count) ** this: 0.5 lifts Disgust (435 rows) ~4x, not ~16x,
    # which keeps the common classes' precision from collapsing.
    class_weight_power: float = 0.5
    # Share of each target taken from the teacher's probabilities (only with a teacher), and the
    # temperature that softens them: 2 keeps the runner-up classes visible without flattening the winner.
    teacher_weight: float = 0.5
    teacher_temperature: float = 2.0
    seed: int = 1337
    # Channels of the four stages (model.architecture); None: the live network's. A wider one is a teacher to
    # distil from, too slow for the live budget itself.
    widths: tuple[int, ...] | None = None


def split_for_training(data: FerData, seed: int) -> tuple[FerData, FerData]:
    """Training rows and selection rows (PublicTest, else a fixed 10 % of Training)."""
    train, select = data.subset("Training"), data.subset("PublicTest")
    if len(select):
        return train, select
    order = np.random.default_rng(seed).permutation(len(train))
    cut = max(1, len(train) // 10)
    return train.take(order[cut:]), train.take(order[:cut])


def class_weights(labels: np.ndarray, power: float) -> NDArray[np.float64]:
    """(7,) weights, mean 1 over the rows."""
    counts = np.maximum(np.bincount(labels, minlength=NUM_CLASSES), 1)
    weights: NDArray[np.float64] = (counts.max() / counts) ** power
    normalised: NDArray[np.float64] = weights / ((weights * counts).sum() / counts.sum())
    return normalised


def training_targets(labels: np.ndarray, votes: np.ndarray | None, ferplus_weight: float) -> NDArray[np.float32]:
    """(N, 7) targets: the one-hot FER2013 label, mixed with the FER+ vote shares where a face has votes
    for any of the 7 classes."""
    one_hot: NDArray[np.float32] = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    if votes is None:
        return one_hot
    totals = votes.sum(axis=1, keepdims=True)
    shares = np.divide(votes, totals, out=one_hot.copy(), where=totals > 0)
    mixed: NDArray[np.float32] = (1 - ferplus_weight) * one_hot + ferplus_weight * shares
    return mixed


def teacher_targets(teachers: list[keras.Model], faces: np.ndarray, temperature: float) -> NDArray[np.float32]:
    """(N, 7) the teachers' probabilities on each face and its mirror image, as the mean of their
    log-probabilities (an ensemble's geometric mean), then softened."""
    views = faces[..., None].astype(np.float32)
    log_probabilities = [
        np.log(np.clip(teacher.predict(view, batch_size=512, verbose=0), 1e-7, 1.0))
        for teacher in teachers
        for view in (views, views[:, :, ::-1])
    ]
    logits = np.mean(log_probabilities, axis=0) / temperature
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    softened: NDArray[np.float32] = (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)
    return softened


def build_compiled_model(recipe: Recipe, steps_per_epoch: int) -> keras.Model:
    import keras

    from model.architecture import build_classifier

    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.learning_rate / 100,
        warmup_target=recipe.learning_rate,
        warmup_steps=recipe.warmup_epochs * steps_per_epoch,
        decay_steps=max(1, (recipe.epochs - recipe.warmup_epochs) * steps_per_epoch),
    )
    model = build_classifier() if recipe.widths is None else build_classifier(recipe.widths)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def augmented_batches(
    faces: np.ndarray, targets: np.ndarray, weights: np.ndarray, recipe: Recipe, first_epoch: int
) -> keras.utils.PyDataset:
    """A Keras PyDataset of fresh augmented views each epoch, in an order and with views seeded by the epoch."""
    import keras

    # Keras ships no type information, so its base class is Any to mypy.
    class AugmentedFaces(keras.utils.PyDataset):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first_epoch
            self._order = self._draw()

        def _draw(self) -> NDArray[np.int64]:
            return np.random.default_rng((recipe.seed, self.epoch)).permutation(len(faces))

        def __len__(self) -> int:
            return int(np.ceil(len(faces) / recipe.batch_size))

        def __getitem__(self, index: int) -> tuple[NDArray[np.float64], np.ndarray, np.ndarray]:
            rows = self._order[index * recipe.batch_size : (index + 1) * recipe.batch_size]
            rng = np.random.default_rng((recipe.seed, self.epoch, index))
            return augment(faces[rows], rng)[..., None], targets[rows], weights[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order = self._draw()

    return AugmentedFaces()


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


def train(
    data: FerData,
    out: Path,
    recipe: Recipe,
    resume: bool,
    votes: np.ndarray | None = None,
    limit: int | None = None,
    teacher_paths: list[Path] | None = None,
) -> Path:
    import keras

    keras.utils.set_random_seed(recipe.seed)
    train_rows, select_rows = split_for_training(data, recipe.seed)
    if limit:
        train_rows, select_rows = train_rows.take(slice(0, limit)), select_rows.take(slice(0, limit))
    train_votes = votes[train_rows.row] if votes is not None else None
    targets = training_targets(train_rows.labels, train_votes, recipe.ferplus_weight)
    if teacher_paths:
        teachers = [keras.saving.load_model(path) for path in teacher_paths]
        taught = teacher_targets(teachers, train_rows.images, recipe.teacher_temperature)
        targets = (1 - recipe.teacher_weight) * targets + recipe.teacher_weight * taught
    weights = class_weights(train_rows.labels, recipe.class_weight_power)[train_rows.labels].astype(np.float32)
    x_select = select_rows.images[..., None].astype(np.float32)
    y_select = np.eye(NUM_CLASSES, dtype=np.float32)[select_rows.labels]
    steps = int(np.ceil(len(train_rows) / recipe.batch_size))

    out.mkdir(parents=True, exist_ok=True)
    last, best, log = out / "last.keras", out / "best.keras", out / "log.csv"
    initial_epoch = completed_epochs(log) if resume and last.exists() else 0
    if initial_epoch:
        model = keras.saving.load_model(last)
        print(f"resuming after epoch {initial_epoch} from {last}")
    else:
        log.unlink(missing_ok=True)
        model = build_compiled_model(recipe, steps)
    targets_from = "FER2013 labels mixed with FER+ votes" if votes is not None else "FER2013 labels"
    if teacher_paths:
        named = ", ".join(path.name for path in teacher_paths)
        targets_from += f", {recipe.teacher_weight:.0%} from the teacher{'s' if len(teacher_paths) > 1 else ''} {named}"
    print(
        f"training on {len(train_rows)} rows ({targets_from}), selecting on {len(select_rows)}; "
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
            augmented_batches(train_rows.images, targets, weights, recipe, initial_epoch),
            epochs=recipe.epochs,
            initial_epoch=initial_epoch,
            validation_data=(x_select, y_select),
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    chosen = keras.saving.load_model(best)
    classifier = keras.models.clone_model(chosen)  # the same network without the optimizer's state
    classifier.set_weights(chosen.get_weights())
    classifier.save(out / "classifier.keras")
    return out / "classifier.keras"


def _best_so_far(log_path: Path) -> float | None:
    with log_path.open() as f:
        scores = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
    return max(scores) if scores else None


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: four whole numbers separated by commas") from None
    if len(widths) != 4 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: four positive channel counts, e.g. 48,96,192,384")
    return widths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="FER2013 CSV(.gz) or image-folder root")
    parser.add_argument(
        "--ferplus", type=Path, help="FER+ votes CSV(.gz), one row per row of the --data CSV (soft targets)"
    )
    parser.add_argument(
        "--ferplus-weight",
        type=float,
        default=Recipe.ferplus_weight,
        help="share of each target taken from the FER+ vote shares (0..1; default %(default)s)",
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        action="append",
        help="a trained classifier (.keras) to distil from; given more than once, the ensemble of them",
    )
    parser.add_argument(
        "--teacher-weight",
        type=float,
        default=Recipe.teacher_weight,
        help="share of each target taken from the teacher's probabilities (0..1; default %(default)s)",
    )
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--out", type=Path, default=Path("runs/emotion"))
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.keras")
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument(
        "--widths",
        type=_widths,
        default=Recipe.widths,
        help="channels of the four stages, e.g. 48,96,192,384 for a teacher (default: the live network's)",
    )
    parser.add_argument("--limit", type=int, help="use only the first N rows of each split (smoke runs)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not 0 <= args.ferplus_weight <= 1:
        parser.error("--ferplus-weight must lie in 0..1")
    if not 0 <= args.teacher_weight <= 1:
        parser.error("--teacher-weight must lie in 0..1")
    recipe = Recipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        ferplus_weight=args.ferplus_weight,
        teacher_weight=args.teacher_weight,
        widths=args.widths,
    )
    try:
        for teacher in args.teacher or ():
            if not (teacher.is_file() and teacher.suffix == ".keras"):
                raise FerDataError(f"--teacher {teacher}: not a trained classifier (.keras) file")
        data = load_fer2013(args.data, usages=("Training", "PublicTest"))
        votes = None
        if args.ferplus:
            if args.data.is_dir():
                raise FerDataError(f"{args.data}: FER+ votes align with the CSV layout's rows, not with folders")
            votes = load_ferplus_votes(args.ferplus, count_rows(args.data))
    except FerDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = train(data, args.out, recipe, args.resume, votes, args.limit, args.teacher)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
