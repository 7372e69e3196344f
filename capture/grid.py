"""Finds the tiles of a video-call gallery view from the dark gaps between them.

A gallery (Zoom, Teams, Meet) is a near-black background with equal-sized tiles in rows; the last row may
hold fewer tiles, centred. A gap is a full row (or, inside one row of tiles, a full column) of background
pixels, so row and column projections of a "differs from the background" mask give the tiles in a few
milliseconds without looking at what the tiles show. A recording or a JPEG screenshot went through a codec
whose ringing reaches into the gaps beside every tile, so the gaps are also looked for at the codec's
tolerance.
"""

from __future__ import annotations

import cv2
import numpy as np

from capture.errors import CaptureError
from capture.pixels import grey as grey_of
from config import GridSettings
from vocabulary.records import Box

# The thresholds are the configuration's [capture.grid] (config/classpulse.toml says why each has its value).
DEFAULT = GridSettings()
# A codec's ringing stays within one of its blocks of an edge: JPEG's colour at 4:2:0 and H.264's
# macroblocks are 16x16 pixels.
CODEC_BLOCK = 16


def find_tile_grid(image: np.ndarray, settings: GridSettings = DEFAULT) -> list[Box] | None:
    """The gallery's tiles in reading order, or None when the image is not a gallery view.

    image: H x W x 3 BGR (or H x W grey) uint8; settings: the configuration's [capture.grid].
    """
    grey = _to_grey(image)
    background = _background_level(grey)
    if background > settings.max_background_level:
        return None
    # A lossless grab's gaps are the background's exact level; a recording's or a JPEG's carry the codec's
    # ringing beside every tile, so they are searched for again with its larger tolerance, and the reading
    # that finds more tiles is the gallery. Where both find as many, the ringing widened a lossless
    # reading's tile where the codec's lies inside it, each side at most a codec block in.
    exact = _tiles(grey, background, settings.background_tolerance, settings)
    coded = _tiles(grey, background, settings.codec_tolerance, settings)
    if len(coded) > len(exact):
        exact = coded
    elif len(coded) == len(exact):
        exact = [inner if _ringing_inside(inner, outer) else outer for inner, outer in zip(coded, exact, strict=True)]
    return exact if len(exact) >= settings.min_tiles else None


def _ringing_inside(inner: Box, outer: Box) -> bool:
    """Whether each side of `inner` lies inside `outer`'s by at most CODEC_BLOCK pixels."""
    insets = (
        inner.x - outer.x,
        inner.y - outer.y,
        outer.x + outer.w - inner.x - inner.w,
        outer.y + outer.h - inner.y - inner.h,
    )
    return all(0 <= inset <= CODEC_BLOCK for inset in insets)


def _tiles(grey: np.ndarray, background: int, tolerance: int, settings: GridSettings) -> list[Box]:
    """The same-sized tiles between gaps of pixels within `tolerance` of the background level."""
    foreground = (cv2.absdiff(grey, np.full_like(grey, background)) > tolerance).astype(np.uint8)
    height, width = grey.shape
    minimum, noise = settings.min_tile_fraction, settings.gap_noise_fraction
    candidates = [
        Box(x, top, w, bottom - top)
        for top, bottom in _runs(_line_counts(foreground, axis=1), width, int(height * minimum), noise)
        for x, w in _column_spans(foreground[top:bottom], int(width * minimum), noise)
    ]
    return _same_sized(candidates, settings.size_tolerance)


def _to_grey(image: np.ndarray) -> np.ndarray:
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or (image.ndim == 3 and image.shape[2] != 3)
        or 0 in image.shape[:2]  # an empty image has no border to read the background from
    ):
        raise CaptureError(f"expected a non-empty H x W x 3 uint8 BGR image, got shape {image.shape} of {image.dtype}")
    return grey_of(image)


def _background_level(grey: np.ndarray) -> int:
    """The grey level of the frame's outer border, where a centred gallery shows only background."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return int(np.median(border))


def _line_counts(mask: np.ndarray, axis: int) -> np.ndarray:
    """Foreground pixels per row (axis=1) or per column (axis=0)."""
    return cv2.reduce(mask, axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()


def _runs(counts: np.ndarray, line_length: int, min_length: int, noise: float) -> list[tuple[int, int]]:
    """[start, end) spans of consecutive non-gap lines at least min_length long; a gap line has at most
    `noise` of its pixels off the background."""
    content = counts > line_length * noise
    edges = np.flatnonzero(np.diff(np.concatenate([[False], content, [False]]).astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True) if e - s >= max(min_length, 1)]


def _column_spans(band: np.ndarray, min_width: int, noise: float) -> list[tuple[int, int]]:
    """(x, width) of the tiles in one row band of the gallery."""
    return [(s, e - s) for s, e in _runs(_line_counts(band, axis=0), band.shape[0], min_width, noise)]


def _same_sized(candidates: list[Box], tolerance: float) -> list[Box]:
    """The candidates within `tolerance` of the gallery's one tile size; toolbars, banners and photo fragments
    drop out."""
    if not candidates:
        return []
    median_w = float(np.median([b.w for b in candidates]))
    median_h = float(np.median([b.h for b in candidates]))
    return [
        b
        for b in candidates
        if abs(b.w - median_w) <= tolerance * median_w and abs(b.h - median_h) <= tolerance * median_h
    ]
