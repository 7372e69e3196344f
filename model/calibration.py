"""How far the emotion probabilities can be taken at their word: temperature scaling and calibration error.

The class mood timeline averages probabilities over students and time, so a face called "sad" at 0.8
should be sad about 8 times in 10. A network trained with cross-entropy is usually over-confident; one
temperature T, fitted on PublicTest after training, divides its logits (softmax(z / T)) and is folded into
the output layer (`model.architecture.with_temperature`), so every form of the model gives the calibrated
probabilities. Fitting on probabilities is exact: log p = z - logsumexp(z), and the constant cancels in
the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ECE_BINS = 15
# Temperatures searched (log-spaced, then refined): far beyond anything a trained CNN needs either way.
TEMPERATURE_RANGE = (0.05, 20.0)


def rescale(probabilities: NDArray[np.floating[Any]], temperature: float) -> NDArray[np.floating[Any]]:
    """softmax(log p / T): the probabilities a temperature T gives the same logits."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    rescaled: NDArray[np.floating[Any]] = exp / exp.sum(axis=1, keepdims=True)
    return rescaled


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T that minimises the negative log-likelihood of the labels (golden-section search on log T; the
    NLL is convex in 1/T)."""
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    golden = (np.sqrt(5) - 1) / 2

    def cost(log_t: float) -> float:
        return negative_log_likelihood(rescale(probabilities, float(np.exp(log_t))), labels)

    a, b = high - golden * (high - low), low + golden * (high - low)
    cost_a, cost_b = cost(a), cost(b)
    while high - low > 1e-4:
        if cost_a < cost_b:
            high, b, cost_b = b, a, cost_a
            a = high - golden * (high - low)
            cost_a = cost(a)
        else:
            low, a, cost_a = a, b, cost_b
            b = low + golden * (high - low)
            cost_b = cost(b)
    return float(np.exp((low + high) / 2))


@dataclass(frozen=True)
class Reliability:
    """Top-probability bins: how sure the model said it was against how often it was right."""

    ece: float  # expected calibration error: the bins' |accuracy - confidence| weighted by their share
    confidence: np.ndarray  # (ECE_BINS,) mean top probability per bin (nan for an empty bin)
    accuracy: np.ndarray  # (ECE_BINS,) share right per bin (nan for an empty bin)
    count: np.ndarray  # (ECE_BINS,) faces per bin


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Equal-width bins on the top probability, as the usual ECE definition has them."""
    top = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    # Bin i holds tops in (i/bins, (i+1)/bins]; a top of exactly 0 cannot occur (probabilities sum to 1).
    which = np.clip(np.ceil(top * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        confidence = np.bincount(which, weights=top, minlength=bins) / count
        accuracy = np.bincount(which, weights=right, minlength=bins) / count
    gaps = np.nan_to_num(np.abs(accuracy - confidence))
    return Reliability(float((gaps * count).sum() / max(len(labels), 1)), confidence, accuracy, count)


def plot_reliability(before: Reliability, after: Reliability | None, title: str, png_path: Path) -> None:
    """The reliability diagram: accuracy against confidence per bin, the diagonal being perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (diagram, counts) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    centres = (np.arange(ECE_BINS) + 0.5) / ECE_BINS
    diagram.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for curve, label, marker in ((before, "as given", "o"), (after, "after temperature", "s")):
        if curve is None:
            continue
        shown = curve.count > 0
        diagram.plot(
            curve.confidence[shown], curve.accuracy[shown], marker=marker, label=f"{label} (ECE {curve.ece:.3f})"
        )
    diagram.set_ylabel("share right")
    diagram.set_xlim(0, 1)
    diagram.set_ylim(0, 1)
    diagram.grid(alpha=0.3)
    diagram.legend(loc="upper left")
    diagram.set_title(title)
    counts.bar(centres, (after or before).count, width=1 / ECE_BINS, color="tab:blue", alpha=0.6)
    counts.set_xlabel("top probability (how sure the model said it was)")
    counts.set_ylabel("faces")
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
