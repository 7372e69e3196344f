"""Pixel conversions the capture stages share."""

from __future__ import annotations

import cv2
import numpy as np


def grey(image: np.ndarray) -> np.ndarray:
    """A BGR image's grey levels; a grey image as it is (tests and callers may pass either)."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
