"""Classification metrics shared by evaluation, export checks and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocabulary.emotions import EMOTIONS, NUM_CLASSES


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    precision: np.ndarray  # per class
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray  # rows: true class, columns: predicted class

    def table(self) -> str:
        lines = [f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
        for i, name in enumerate(EMOTIONS):
            lines.append(
                f"{name:<10}{self.precision[i]:>10.4f}{self.recall[i]:>10.4f}{self.f1[i]:>10.4f}{self.support[i]:>10d}"
            )
        lines.append(
            f"{'macro':<10}{self.precision.mean():>10.4f}{self.recall.mean():>10.4f}{self.macro_f1:>10.4f}"
            f"{self.support.sum():>10d}"
        )
        return "\n".join(lines)


def score(labels: np.ndarray, predicted: np.ndarray) -> Scores:
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(true_positive / confusion.sum(axis=0))
        recall = np.nan_to_num(true_positive / confusion.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return Scores(
        accuracy=float(true_positive.sum() / max(len(labels), 1)),
        macro_f1=float(f1.mean()),
        precision=precision,
        recall=recall,
        f1=f1,
        support=confusion.sum(axis=1),
        confusion=confusion,
    )
