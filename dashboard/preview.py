"""The "Start class" page's preview: one grab of the screen (or the chosen part of it) with the tiles and faces
the real capture pipeline finds there outlined, so a teacher sees what will be watched before pressing Start.

The picture is drawn in memory and handed to the page as a data URI: it is never written to a file, never
kept between refreshes and never sent anywhere but the browser that asked for it, which is on this computer
(the page exists only where the dashboard is served on loopback, dashboard.pages.classroom). Between looks the
pipeline keeps what a capture keeps between frames: the tiles it found and the 64×36 thumbnail that tells it
when the layout changed (capture.layout).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from capture.detect import make_detector
from capture.errors import CaptureError
from capture.pipeline import FramePipeline
from capture.sources import open_source
from config import CaptureConfig
from vocabulary.records import Box

# The preview is a glance at a laptop's screen, not a copy of it: this wide on the page, in CSS pixels.
PREVIEW_WIDTH_PX = 960
JPEG_QUALITY = 70
TILE_BGR = (230, 140, 20)  # blue: the gallery tiles
FACE_BGR = (0, 200, 255)  # amber: the faces found in them
LINE_PX = 2


@dataclass(frozen=True)
class Monitor:
    """A monitor as mss numbers them (1 = the first), in screen pixels."""

    number: int
    left: int
    top: int
    width: int
    height: int

    def label(self) -> str:
        return f"Screen {self.number} ({self.width}×{self.height})"


@dataclass(frozen=True)
class PreviewPicture:
    """What the pipeline found in one grab, and the grab with it drawn on, as a JPEG data URI."""

    uri: str
    tiles: int
    faces: int
    layout: str
    width: int
    height: int


def monitors() -> list[Monitor]:
    """This computer's monitors; CaptureError (one line) when there is no screen to capture."""
    # Opened as capture would open it, for the same clear error where there is no screen.
    with open_source("screen:0"):
        pass
    import mss

    with mss.MSS() as screen:
        return [
            Monitor(number, area["left"], area["top"], area["width"], area["height"])
            for number, area in enumerate(screen.monitors)
            if number
        ]


def source_spec(monitor: Monitor, part: tuple[int, int, int, int] | None) -> str:
    """capture's --source for `monitor`, or for `part` of it (x, y, w, h from the monitor's top-left corner).
    CaptureError when the part does not fit on the monitor."""
    if part is None:
        return f"screen:{monitor.number}"
    x, y, w, h = part
    if min(x, y) < 0 or min(w, h) < 1 or x + w > monitor.width or y + h > monitor.height:
        raise CaptureError(
            f"the part {x},{y} {w}×{h} does not fit on screen {monitor.number} ({monitor.width}×{monitor.height}): "
            "x and y count from its top-left corner, and width and height must be at least 1"
        )
    return f"screen:{monitor.left + x},{monitor.top + y},{w},{h}"


class Preview:
    """Grabs and analyses one frame at a time with one pipeline (built on first use: its models take a second
    to load), as a capture would; one look at a time, whichever browser tab asks. The pipeline keeps the layout
    it found between looks, as a capture does between frames."""

    def __init__(self, settings: CaptureConfig) -> None:
        self._settings = settings
        self._pipeline: FramePipeline | None = None
        self._lock = threading.Lock()

    def look(self, spec: str) -> PreviewPicture | None:
        """The screen area `spec` names (capture.sources) as the pipeline sees it now; CaptureError (one line).
        None while another look is under way: a busy laptop skips a refresh rather than queue them up."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            with open_source(spec) as source:
                image = next(source).image
            layout, tiles, faces = self._pipeline_in_use().locate(image)
        finally:
            self._lock.release()
        return PreviewPicture(
            uri=_drawn(image, tiles or [], [Box(*(int(v) for v in box)) for box in faces.boxes]),
            tiles=len(tiles or []),
            faces=len(faces),
            layout=layout.value,
            width=image.shape[1],
            height=image.shape[0],
        )

    def _pipeline_in_use(self) -> FramePipeline:
        if self._pipeline is None:
            tuned = self._settings
            # No emotion model: the preview shows where faces are, never what they express.
            detector = make_detector(tuned.detector, num_threads=tuned.threads, **tuned.detect.model_dump())
            self._pipeline = FramePipeline(detector, None, settings=tuned)
        return self._pipeline


def _drawn(image: np.ndarray, tiles: list[Box], faces: list[Box]) -> str:
    """`image` shrunk to the preview's width with `tiles` and `faces` outlined, as a JPEG data URI."""
    scale = min(1.0, PREVIEW_WIDTH_PX / image.shape[1])
    shown = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    for boxes, colour in ((tiles, TILE_BGR), (faces, FACE_BGR)):
        for box in boxes:
            top_left = (round(box.x * scale), round(box.y * scale))
            bottom_right = (round((box.x + box.w) * scale) - 1, round((box.y + box.h) * scale) - 1)
            cv2.rectangle(shown, top_left, bottom_right, colour, LINE_PX)
    ok, encoded = cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise CaptureError("the preview could not be drawn")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
