"""Matching the sharpness of live faces to the training faces.

The Training rows of our FER2013 copy are far blurrier than its PublicTest rows and than a face cropped
from a video call (median horizontal gradient 3.7 against 13.7 grey levels per pixel; the spectra part
above ~0.1 cycles per pixel). A network trained on them reads a sharp face as a different kind of image:
the first 5-epoch model scored 21 % on raw PublicTest faces and 36 % on the same faces blurred to match.

So every face the model is asked about is first blurred by a fixed Gaussian whose width is measured from
the data, without labels: the sigma that gives the selection faces the Training faces' gradient energy.
The blur is a layer of the exported model (`model.architecture.SharpnessMatch`), so the Keras file, the
TFLite file and every caller agree.
"""

from __future__ import annotations

import cv2
import numpy as np

SIGMA_GRID = np.round(np.arange(0.0, 6.01, 0.25), 2)


def gradient_energy(images: np.ndarray) -> float:
    """Median over images of the mean absolute horizontal step between neighbouring pixels."""
    steps = np.abs(np.diff(images.astype(np.float32), axis=2)).mean(axis=(1, 2))
    return float(np.median(steps))


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """(N, H, W) images blurred with reflected borders, as float32 (identity for sigma 0)."""
    images = images.astype(np.float32)
    if sigma <= 0:
        return images
    return np.stack([cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for image in images])


def estimate_blur_sigma(training: np.ndarray, target: np.ndarray, sample: int = 2000) -> float:
    """The Gaussian sigma that makes `target` faces as smooth as `training` faces (0 when they already are)."""
    pick = np.random.default_rng(0)
    training = training[pick.permutation(len(training))[:sample]]
    target = target[pick.permutation(len(target))[:sample]]
    wanted = gradient_energy(training)
    for sigma in SIGMA_GRID:
        if gradient_energy(gaussian_blur(target, sigma)) <= wanted:
            return float(sigma)
    return float(SIGMA_GRID[-1])


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(4 * sigma)))  # OpenCV's float-image radius
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).astype(np.float32)


def blur_matrix(sigma: float, size: int) -> np.ndarray:
    """(size, size) matrix B with B @ column == that column blurred as `gaussian_blur` blurs it (mirrored
    borders, OpenCV's BORDER_REFLECT_101); the identity for sigma 0."""
    if sigma <= 0:
        return np.eye(size, dtype=np.float64)
    kernel = gaussian_kernel(sigma).astype(np.float64)
    radius = len(kernel) // 2
    if radius >= size:
        raise ValueError(f"a blur of sigma {sigma} is wider than a {size}-pixel image")
    matrix = np.zeros((size, size))
    for offset, weight in zip(range(-radius, radius + 1), kernel, strict=True):
        source = np.abs(np.arange(size) + offset)  # mirrored at 0 ...
        source = np.where(source >= size, 2 * (size - 1) - source, source)  # ... and at size - 1
        np.add.at(matrix, (np.arange(size), source), weight)
    return matrix
