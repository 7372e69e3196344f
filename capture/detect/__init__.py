"""Face detectors behind one small interface, chosen by name.

A detector looks only inside the regions it is given (gallery tiles, or sliding windows when the frame has
no gallery grid) and reports faces in frame pixels with the index of the region each came from.
Add a detector by writing a class with `detect` and one entry in DETECTORS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from capture.errors import CaptureError
from vocabulary.records import Box, FaceDetections


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray, regions: list[Box]) -> FaceDetections:
        """Faces inside each region of a BGR frame; boxes and keypoints in frame pixels, tiles = region index."""
        ...


def _blazeface(**options: object) -> FaceDetector:
    # Imported on demand so that choosing another detector never loads the LiteRT runtime.
    from capture.detect.blazeface import BlazeFace

    # The options are [capture.detect]'s fields, typed and checked by config.schema; the registry passes them on
    # untyped so that every detector can take its own.
    return BlazeFace(**options)  # type: ignore[arg-type]


DETECTORS: dict[str, Callable[..., FaceDetector]] = {"blazeface": _blazeface}


def make_detector(name: str = "blazeface", **options: object) -> FaceDetector:
    """The detector registered under name, built with options (e.g. score_threshold=0.6)."""
    factory = DETECTORS.get(name)
    if factory is None:
        raise CaptureError(f"unknown face detector {name!r}; available: {', '.join(sorted(DETECTORS))}")
    try:
        return factory(**options)
    except TypeError as error:
        raise CaptureError(f"bad option for face detector {name!r}: {error}") from None
