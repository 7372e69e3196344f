"""The "Start class" page's preview and what it offers to watch: one grab of the chosen screen or window with the
tiles and faces the real capture pipeline finds in it (or in the part of it the teacher chose) outlined, so a
teacher sees what will be watched before pressing Start; the screens and the windows (capture.windows) there are.

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
from capture.sources import Region, open_source
from capture.windows import Window, shown_windows
from config import CaptureConfig
from vocabulary.records import Box

# The preview is a glance at a laptop's screen, not a copy of it: this wide on the page, in CSS pixels.
PREVIEW_WIDTH_PX = 960
JPEG_QUALITY = 70
TILE_BGR = (230, 140, 20)  # blue: the gallery tiles
FACE_BGR = (0, 200, 255)  # amber: the faces found in them
PART_BGR = (255, 255, 255)  # white: the chosen part, the rest of the picture dimmed
OUTSIDE_PART_DIMMED = 0.35  # the brightness left outside the part
LINE_PX = 2
# The most of a window's title the list of screens and windows shows.
TITLE_CHARS = 48
# A drag over the preview smaller than this, in screen pixels, is a click, not a part chosen.
MIN_DRAG_PX = 16


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
class Choice:
    """A screen or a window the page offers to watch: `value` is its capture.sources spec (screen:N, or
    window-id:ID, so the window chosen is the one captured even where two share a title), `label` its words."""

    value: str
    label: str
    width: int
    height: int
    is_window: bool


def choices() -> list[Choice]:
    """This computer's monitors, then its windows; CaptureError (one line) when there is no screen."""
    offered = [Choice(f"screen:{m.number}", m.label(), m.width, m.height, False) for m in monitors()]
    return offered + [_window_choice(window) for window in shown_windows()]


def _window_choice(window: Window) -> Choice:
    # A long title (a viewer's file path) is cut: the list shows one line per choice, its end the size.
    title = window.title if len(window.title) <= TITLE_CHARS else window.title[: TITLE_CHARS - 1] + "…"
    label = f"Window: {title} ({window.width}×{window.height})"
    return Choice(f"window-id:{window.id:#x}", label, window.width, window.height, True)


@dataclass(frozen=True)
class PreviewPicture:
    """What the pipeline found in one grab (or the part of it looked at), and the grab with it drawn on, as a JPEG
    data URI. `width` and `height`: of the area looked at."""

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


def source_spec(monitor: Monitor, part: Region | None) -> str:
    """capture's --source for `monitor`, or for `part` of it (x, y, w, h from the monitor's top-left corner).
    CaptureError when the part does not fit on the monitor."""
    if part is None:
        return f"screen:{monitor.number}"
    x, y, w, h = fitting(part, monitor.width, monitor.height, f"screen {monitor.number}")
    return f"screen:{monitor.left + x},{monitor.top + y},{w},{h}"


def fitting(part: Region, width: int, height: int, what: str) -> Region:
    """`part` when it fits on `what` (`width`×`height`); CaptureError saying how it does not."""
    x, y, w, h = part
    if min(x, y) < 0 or min(w, h) < 1 or x + w > width or y + h > height:
        raise CaptureError(
            f"the part {x},{y} {w}×{h} does not fit on {what} ({width}×{height}): "
            "x and y count from its top-left corner, and width and height must be at least 1"
        )
    return part


def part_from_drag(drag: object, width: int, height: int) -> Region | None:
    """The part of a `width`×`height` area a rectangle dragged over its preview covers, in the area's pixels:
    `drag` holds its corners as fractions of the picture ({"x0", "y0", "x1", "y1"}, from the page's script),
    which scale to any size the browser shows the picture at. None for anything else, or a drag smaller than
    MIN_DRAG_PX (a click)."""
    if not isinstance(drag, dict):
        return None
    try:
        corners = [min(1.0, max(0.0, float(drag[key]))) for key in ("x0", "y0", "x1", "y1")]
    except (KeyError, TypeError, ValueError):
        return None
    x0, y0, x1, y1 = corners
    left, right = round(min(x0, x1) * width), round(max(x0, x1) * width)
    top, bottom = round(min(y0, y1) * height), round(max(y0, y1) * height)
    if right - left < MIN_DRAG_PX or bottom - top < MIN_DRAG_PX:
        return None
    return left, top, right - left, bottom - top


class Preview:
    """Grabs and analyses one frame at a time with one pipeline (built on first use: its models take a second
    to load), as a capture would; one look at a time, whichever browser tab asks. The pipeline keeps the layout
    it found between looks, as a capture does between frames."""

    def __init__(self, settings: CaptureConfig) -> None:
        self._settings = settings
        self._pipeline: FramePipeline | None = None
        self._lock = threading.Lock()

    def look(self, spec: str, part: Region | None = None) -> PreviewPicture | None:
        """The screen or window `spec` names (capture.sources) as the pipeline sees it now, or `part` of it
        (x, y, w, h from its top-left corner), shown within the whole; CaptureError (one line). None while
        another look is under way: a busy laptop skips a refresh rather than queue them up."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            with open_source(spec) as source:
                image = next(source).image
            x, y, w, h = (0, 0, image.shape[1], image.shape[0]) if part is None else part
            looked_at = np.ascontiguousarray(image[y : y + h, x : x + w])
            layout, tiles, faces = self._pipeline_in_use().locate(looked_at)
        finally:
            self._lock.release()
        found_tiles = [Box(tile.x + x, tile.y + y, tile.w, tile.h) for tile in tiles or []]
        found_faces = [Box(int(box[0]) + x, int(box[1]) + y, int(box[2]), int(box[3])) for box in faces.boxes]
        return PreviewPicture(
            uri=_drawn(image, found_tiles, found_faces, part),
            tiles=len(found_tiles),
            faces=len(faces),
            layout=layout.value,
            width=looked_at.shape[1],
            height=looked_at.shape[0],
        )

    def _pipeline_in_use(self) -> FramePipeline:
        if self._pipeline is None:
            tuned = self._settings
            # No emotion model: the preview shows where faces are, never what they express.
            detector = make_detector(tuned.detector, num_threads=tuned.threads, **tuned.detect.model_dump())
            self._pipeline = FramePipeline(detector, None, settings=tuned)
        return self._pipeline


def _drawn(image: np.ndarray, tiles: list[Box], faces: list[Box], part: Region | None) -> str:
    """`image` shrunk to the preview's width with `tiles` and `faces` outlined and, where only `part` of it is
    watched, the rest dimmed, as a JPEG data URI."""
    scale = min(1.0, PREVIEW_WIDTH_PX / image.shape[1])
    shown = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    if part is not None:
        x, y, w, h = (round(value * scale) for value in part)
        inside = shown[y : y + h, x : x + w].copy()
        shown = (shown * OUTSIDE_PART_DIMMED).astype(np.uint8)
        shown[y : y + h, x : x + w] = inside
        cv2.rectangle(shown, (x, y), (x + w - 1, y + h - 1), PART_BGR, LINE_PX)
    for boxes, colour in ((tiles, TILE_BGR), (faces, FACE_BGR)):
        for box in boxes:
            top_left = (round(box.x * scale), round(box.y * scale))
            bottom_right = (round((box.x + box.w) * scale) - 1, round((box.y + box.h) * scale) - 1)
            cv2.rectangle(shown, top_left, bottom_right, colour, LINE_PX)
    ok, encoded = cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise CaptureError("the preview could not be drawn")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
