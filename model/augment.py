"""Training-time views of a 48x48 face, made with OpenCV on uint8 arrays (no random ops inside the network).

Keras' random image layers cost more than the network itself on 2 CPU cores (47 faces/s for a 1.2 M
parameter CNN with them, ~400 without); one `cv2.warpAffine` per face is ~10 us. So the training model
holds no augmentation: `AugmentedFaces` feeds it views drawn fresh each epoch, seeded by the epoch, so
that a resumed run sees the same views as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from vocabulary.emotions import FACE_SIZE


@dataclass(frozen=True)
class Views:
    """How far a training view may stray from the face (all draws uniform)."""

    max_rotation_degrees: float = 10.0
    max_scale_change: float = 0.1  # zoom in or out by up to this share
    max_shift: float = 0.1  # of the face's side, each axis
    erase_probability: float = 0.5  # a random rectangle replaced by noise (random erasing)
    erase_area: tuple[float, float] = (0.02, 0.2)  # its area, as a share of the face
    max_contrast_change: float = 0.2
    max_brightness_change: float = 20.0  # grey levels


DEFAULT_VIEWS = Views()


def augment(faces: np.ndarray, rng: np.random.Generator, views: Views = DEFAULT_VIEWS) -> NDArray[np.float64]:
    """(N, 48, 48) uint8 -> (N, 48, 48) float64 in 0..255: each face mirrored at random, turned, scaled and
    shifted (borders mirrored), its contrast and brightness jittered, and sometimes a patch erased."""
    count = len(faces)
    out = np.empty(faces.shape, np.float32)
    centre = (FACE_SIZE - 1) / 2
    angles = rng.uniform(-views.max_rotation_degrees, views.max_rotation_degrees, count)
    scales = 1 + rng.uniform(-views.max_scale_change, views.max_scale_change, count)
    shifts = rng.uniform(-views.max_shift, views.max_shift, (count, 2)) * FACE_SIZE
    flips = rng.random(count) < 0.5
    for i, face in enumerate(faces):
        matrix = cv2.getRotationMatrix2D((centre, centre), angles[i], scales[i])
        matrix[:, 2] += shifts[i]
        view = cv2.warpAffine(face, matrix, (FACE_SIZE, FACE_SIZE), borderMode=cv2.BORDER_REFLECT_101)
        out[i] = view[:, ::-1] if flips[i] else view
    contrast = 1 + rng.uniform(-views.max_contrast_change, views.max_contrast_change, (count, 1, 1))
    brightness = rng.uniform(-views.max_brightness_change, views.max_brightness_change, (count, 1, 1))
    means = out.mean(axis=(1, 2), keepdims=True)
    out = (out - means) * contrast + means + brightness
    for erased in np.flatnonzero(rng.random(count) < views.erase_probability):
        area = rng.uniform(*views.erase_area) * FACE_SIZE**2
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        h = int(min(FACE_SIZE, round(np.sqrt(area * aspect))))
        w = int(min(FACE_SIZE, round(np.sqrt(area / aspect))))
        y, x = rng.integers(0, FACE_SIZE - h + 1), rng.integers(0, FACE_SIZE - w + 1)
        out[erased, y : y + h, x : x + w] = rng.uniform(0, 255, (h, w))
    # The jitter's float64 draws made `out` float64 (it starts float32).
    clipped: NDArray[np.float64] = np.clip(out, 0, 255)
    return clipped
