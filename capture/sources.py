"""Frame sources: turn a source spec (screen, webcam, video, image, folder) into timestamped BGR frames.

Specs understood by `open_source`:
    screen              the primary monitor
    screen:N            monitor N, numbered as mss numbers them (1 = first; 0 = all monitors as one image)
    screen:X,Y,W,H      a region of the screen, in pixels
    window:TITLE        the one window whose title contains TITLE (case-insensitive), followed as it moves
    window-id:ID        X window ID (as capture.windows lists them, 0x… or decimal), followed as it moves
    webcam, webcam:N    camera N (default 0)
    PATH                a video file, an image file, or a folder of images (file-name order, numbers as numbers)

Live sources (screen, webcam) deliver at most `fps` frames a second on a fixed tick grid; files are
read as fast as they are consumed. Frames are numbered 0, 1, 2, ... and stamped in timezone-aware UTC.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from capture.errors import CaptureError
from capture.windows import Window, WindowGoneError, connect, list_windows, matching, window_at
from config import CaptureConfig
from vocabulary.records import Frame

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# FFmpeg prints its own complaint about a corrupt file ("moov atom not found") straight to stderr;
# we report one clear line of our own instead. OpenCV reads this when it first opens a video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

SPEC_FORMS = (
    "screen, screen:N, screen:X,Y,W,H, window:TITLE, window-id:ID, webcam:N, or the path of a video, an image or a "
    "folder of images"
)

# ffmpeg reports a frame it cannot decode the same way as the end of the file, but reading on after a
# bad frame works, so a video only counts as ended after this many failed reads in a row.
VIDEO_READ_ATTEMPTS = 25
# A webcam that fails this many reads in a row has gone away (unplugged, taken by another program).
WEBCAM_READ_ATTEMPTS = 10
# Frames are spaced 1 / fps seconds apart in time stamps, which must stay within what a datetime can hold.
MIN_FPS = 1 / 86400

_SCREEN_SPEC = re.compile(r"screen(?::(?P<monitor>\d+)|:(?P<region>-?\d+,-?\d+,\d+,\d+))?")
_WEBCAM_SPEC = re.compile(r"webcam(?::(?P<index>\d+))?")
_WINDOW_SPEC = re.compile(r"window:(?P<title>.*\S.*)|window-id:(?P<id>0[xX][0-9a-fA-F]+|\d+)", re.DOTALL)
_LOOKS_LIKE_SPEC = re.compile(r"[A-Za-z]+:")

Image = np.ndarray  # H x W x 3 BGR uint8
Region = tuple[int, int, int, int]  # x, y, w, h
StampedImages = Generator[tuple[Image, datetime], None, None]


def open_source(
    spec: str, fps: float = 1.0, *, start: datetime | None = None, follow_seconds: float | None = None
) -> FrameSource:
    """Open the source `spec` names (see the module docstring); one clear CaptureError when it cannot.

    `fps` paces live sources and spaces the timestamps of a folder's images. `start` is the time of
    frame 0's clock (default: now); video frames are stamped start + their position in the recording.
    `follow_seconds`: how often a window's place is read again (default [capture] window_follow_seconds).
    """
    if not (math.isfinite(fps) and fps >= MIN_FPS):
        raise CaptureError(f"fps must be a positive number of at least {MIN_FPS:.3g} (one frame a day), not {fps}")
    if start is None:
        start = datetime.now(UTC)
    elif start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if screen := _SCREEN_SPEC.fullmatch(spec):
        target: int | Region = int(screen["monitor"] or 1)
        if screen["region"]:
            x, y, w, h = map(int, screen["region"].split(","))
            target = (x, y, w, h)
        return ScreenSource(target, fps, start)
    if window := _WINDOW_SPEC.fullmatch(spec):
        if follow_seconds is None:
            follow_seconds = CaptureConfig().window_follow_seconds
        return WindowSource(window["title"] or int(window["id"], 0), fps, start, follow_seconds)
    if webcam := _WEBCAM_SPEC.fullmatch(spec):
        return WebcamSource(int(webcam["index"] or 0), fps, start)
    path = Path(spec)
    try:
        exists = bool(spec.strip()) and path.exists()
    except OSError as error:  # a name too long for the file system, a folder we may not enter
        raise CaptureError(f"cannot use {spec!r} as a source: {error.strerror}") from error
    if exists:
        return _open_path(path, fps, start)
    if not spec.strip() or _LOOKS_LIKE_SPEC.match(spec):
        raise CaptureError(f"unknown source {spec!r}: expected {SPEC_FORMS}")
    raise CaptureError(f"no such file or folder: {spec}")


def _open_path(path: Path, fps: float, start: datetime) -> FrameSource:
    if path.is_dir():
        return FolderSource(path, fps, start)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, start)
    return VideoSource(path, start)


class FrameSource(ABC):
    """An iterator of Frames numbered 0, 1, 2, ...; close it (or use `with`) to release the device or file."""

    is_live: bool = False
    # Frames the source will give, where it knows (a folder's images, a video's frame count), for the progress bar.
    total_frames: int | None = None

    def __init__(self, description: str) -> None:
        self.description = description
        self.skipped_frames = 0  # frames that could not be decoded and were left out
        self._next_index = 0
        self._images = self._read()  # a generator: nothing runs until the first frame is asked for

    @abstractmethod
    def _read(self) -> StampedImages:
        """Yield (image, timestamp) pairs, counting the frames it must leave out in skipped_frames."""

    def _release(self) -> None:  # noqa: B027 - a hook: sources that hold no device or file keep it empty
        """Free the device or file."""

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        image, timestamp = next(self._images)
        frame = Frame(index=self._next_index, timestamp=timestamp, image=image)
        self._next_index += 1
        return frame

    def close(self) -> None:
        self._images.close()
        self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


class Pacer:
    """Ticks `fps` times a second on a fixed grid; a caller that falls behind skips the missed ticks
    instead of drifting or catching up in a burst."""

    def __init__(
        self, fps: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._period = 1.0 / fps
        self._clock = clock
        self._sleep = sleep
        self._first_tick_at: float | None = None
        self._last_tick = 0

    def wait(self) -> None:
        """Return at the next tick that has not been used: at once for the first call or a late caller."""
        now = self._clock()
        if self._first_tick_at is None:
            self._first_tick_at = now
            return
        tick = self._last_tick + 1
        due = self._first_tick_at + tick * self._period
        if now < due:
            self._sleep(due - now)
        else:
            tick = math.floor((now - self._first_tick_at) / self._period)
        self._last_tick = tick


class _LiveSource(FrameSource):
    """A source that captures the present: paced at `fps`, stamped with the time of capture."""

    is_live = True

    def __init__(self, description: str, fps: float, start: datetime) -> None:
        self._pacer = Pacer(fps)
        self._start = start
        self._started_at = time.monotonic()
        super().__init__(description)

    def _now(self) -> datetime:
        # The monotonic clock keeps timestamps increasing even when the wall clock is adjusted.
        return self._start + timedelta(seconds=time.monotonic() - self._started_at)


class ScreenSource(_LiveSource):
    """A monitor or a region of the X screen, grabbed with mss."""

    def __init__(self, target: int | Region, fps: float, start: datetime) -> None:
        display = os.environ.get("DISPLAY")
        self._screen = _connect_to_screen(display)
        try:
            self._area, what = _screen_area(self._screen.monitors, target, display)
        except CaptureError:
            self._screen.close()
            raise
        super().__init__(f"screen {what} on display {display}", fps, start)

    def _read(self) -> StampedImages:
        from mss import ScreenShotError

        while True:
            self._pacer.wait()
            try:
                shot = self._screen.grab(self._area)
            except ScreenShotError as error:
                raise CaptureError(f"{self.description}: the screen grab failed: {error}") from error
            yield cv2.cvtColor(np.asarray(shot), cv2.COLOR_BGRA2BGR), self._now()

    def _release(self) -> None:
        self._screen.close()


def _connect_to_screen(display: str | None) -> Any:
    if not display:
        raise CaptureError(
            "no display: DISPLAY is not set, so there is no screen to capture "
            "(video, image and folder sources work without one)"
        )
    # Imported here so that file sources work on machines without X libraries.
    import mss

    try:
        return mss.MSS()
    except mss.ScreenShotError as error:
        raise CaptureError(f"cannot capture display {display}: {error}") from error


def _screen_area(
    monitors: list[dict[str, int]], target: int | Region, display: str | None
) -> tuple[dict[str, int], str]:
    """The mss area to grab for a monitor number or a region, and words for it; CaptureError if off-screen."""
    if isinstance(target, int):
        count = len(monitors) - 1  # monitors[0] is all of them together
        if target > count:
            plural = "" if count == 1 else "s"
            raise CaptureError(
                f"there is no monitor {target}: display {display} has {count} monitor{plural} "
                f"(screen:1 to screen:{count}; screen:0 is all of them together)"
            )
        area = monitors[target]
        return area, f"monitor {target} ({area['width']}x{area['height']} at {area['left']},{area['top']})"
    x, y, w, h = target
    whole = monitors[0]
    inside = (
        w > 0
        and h > 0
        and x >= whole["left"]
        and y >= whole["top"]
        and x + w <= whole["left"] + whole["width"]
        and y + h <= whole["top"] + whole["height"]
    )
    if not inside:
        raise CaptureError(
            f"region {x},{y},{w},{h} is not inside the screen of display {display} "
            f"({whole['width']}x{whole['height']} at {whole['left']},{whole['top']})"
        )
    return {"left": x, "top": y, "width": w, "height": h}, f"region {x},{y},{w},{h}"


class WindowSource(_LiveSource):
    """One window, found by words of its title or by its X id, grabbed with mss wherever it is: its place and
    size are read again every `follow_seconds`, so a window moved or resized mid-lesson is followed. While it is
    not shown (minimised) no frame is taken, and the part of it off the screen is left out; a closed window
    ends the capture with one line."""

    def __init__(self, target: str | int, fps: float, start: datetime, follow_seconds: float) -> None:
        display = os.environ.get("DISPLAY")
        self._x = connect()
        self._screen: Any = None
        try:
            if isinstance(target, str):
                found = matching(list_windows(self._x), target)
            else:
                try:
                    shown = window_at(self._x, target)
                except WindowGoneError:
                    raise CaptureError(f"there is no window {target:#x} (closed?): choose one that is open") from None
                if shown is None:
                    raise CaptureError(f"window {target:#x} is not shown now (minimised?): show it, then start again")
                found = shown
            self._screen = _connect_to_screen(display)
        except CaptureError:
            self.close_connections()
            raise
        self.window = found
        self._follow_seconds = follow_seconds
        super().__init__(f"window {found.title!r} ({found.id:#x}) on display {display}", fps, start)

    def _read(self) -> StampedImages:
        from mss import ScreenShotError

        window: Window | None = self.window
        looked_at = time.monotonic()
        while True:
            self._pacer.wait()
            if window is None or time.monotonic() - looked_at >= self._follow_seconds:
                try:
                    window = window_at(self._x, self.window.id)
                except WindowGoneError as error:
                    raise CaptureError(f"{self.description}: the window was closed") from error
                looked_at = time.monotonic()
                self.window = window or self.window
            area = None if window is None else _on_screen(window, self._screen.monitors[0])
            if area is None:
                self.skipped_frames += 1
                continue
            try:
                shot = self._screen.grab(area)
            except ScreenShotError as error:
                raise CaptureError(f"{self.description}: the screen grab failed: {error}") from error
            yield cv2.cvtColor(np.asarray(shot), cv2.COLOR_BGRA2BGR), self._now()

    def close_connections(self) -> None:
        self._x.close()
        if self._screen is not None:
            self._screen.close()

    def _release(self) -> None:
        self.close_connections()


def _on_screen(window: Window, whole: dict[str, int]) -> dict[str, int] | None:
    """The mss area of the part of `window` on the screen; None when none of it is."""
    left, top = max(window.x, whole["left"]), max(window.y, whole["top"])
    right = min(window.x + window.width, whole["left"] + whole["width"])
    bottom = min(window.y + window.height, whole["top"] + whole["height"])
    if right <= left or bottom <= top:
        return None
    return {"left": left, "top": top, "width": right - left, "height": bottom - top}


class WebcamSource(_LiveSource):
    """A camera opened with OpenCV."""

    def __init__(self, index: int, fps: float, start: datetime) -> None:
        try:
            with _quiet_opencv():
                self._capture = cv2.VideoCapture(index)
        except cv2.error as error:  # an index beyond OpenCV's int, such as webcam:99999999999
            raise CaptureError(f"there is no webcam {index}") from error
        if not self._capture.isOpened():
            self._capture.release()
            raise CaptureError(f"webcam {index} cannot be opened (is it connected, and free of other programs?)")
        # Paced reads must get the newest picture, not one that waited in the driver's queue.
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        super().__init__(f"webcam {index}", fps, start)

    def _read(self) -> StampedImages:
        failures = 0
        while failures < WEBCAM_READ_ATTEMPTS:
            self._pacer.wait()
            ok, image = self._capture.read()
            if ok:
                failures = 0
                yield image, self._now()
            else:
                failures += 1
                self.skipped_frames += 1
        raise CaptureError(f"{self.description} stopped delivering frames")

    def _release(self) -> None:
        self._capture.release()


class _FileSource(FrameSource):
    """A file-backed source that reads its first frame when opened, so one with no readable frame fails at once."""

    def _read_first(self) -> bool:
        self._first = self._next_image()
        return self._first is not None

    @abstractmethod
    def _next_image(self) -> tuple[Image, datetime] | None:
        """The next readable frame, or None at the end; unreadable ones in between count as skipped."""

    def _read(self) -> StampedImages:
        pending, self._first = self._first, None
        while pending is not None:
            yield pending
            pending = self._next_image()


class VideoSource(_FileSource):
    """A video file; each frame is stamped start + its position in the recording."""

    def __init__(self, path: Path, start: datetime) -> None:
        if shown_path(path) != str(path):
            raise CaptureError(f"cannot open video {shown_path(path)}: its name is not UTF-8 text; rename it")
        with _quiet_opencv():
            self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise CaptureError(f"cannot open {path} as a video: it is corrupt or not a video format OpenCV reads")
        self._start = start
        # The container's own count: an estimate for some formats, but close enough for a progress bar.
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total_frames = count if count > 0 else None
        super().__init__(f"video {path}")
        if not self._read_first():
            self._capture.release()
            raise CaptureError(f"video {path} has no readable frames: it is empty or corrupt")

    def _next_image(self) -> tuple[Image, datetime] | None:
        for failures in range(VIDEO_READ_ATTEMPTS):
            if self._capture.grab():
                position_ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
                ok, image = self._capture.retrieve()
                if ok:
                    self.skipped_frames += failures
                    return image, self._start + timedelta(milliseconds=position_ms)
        return None

    def _release(self) -> None:
        self._capture.release()


class ImageSource(FrameSource):
    """One image file: one frame, stamped `start`."""

    def __init__(self, path: Path, start: datetime) -> None:
        image = _read_image(path)
        if image is None:
            raise CaptureError(
                f"cannot read image {shown_path(path)}: it is unreadable, corrupt or not an image format OpenCV reads"
            )
        self._image = image
        self._start = start
        self.total_frames = 1
        super().__init__(f"image {shown_path(path)}")

    def _read(self) -> StampedImages:
        yield self._image, self._start


class FolderSource(_FileSource):
    """The images in a folder in natural file-name order (2.png before 10.png); other files are ignored.

    The image at position i in that order is stamped start + i / fps, so an unreadable image, which is
    skipped, leaves a gap in time rather than shifting every later image.
    """

    def __init__(self, path: Path, fps: float, start: datetime) -> None:
        self._paths = _image_files(path)
        if not self._paths:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise CaptureError(f"folder {shown_path(path)} has no images (looked for {suffixes})")
        self._start = start
        self._period = timedelta(seconds=1 / fps)
        self._position = 0
        self.total_frames = len(self._paths)
        super().__init__(f"folder {shown_path(path)} ({len(self._paths)} images)")
        if not self._read_first():
            raise CaptureError(
                f"none of the {len(self._paths)} images in folder {shown_path(path)} can be read: all are corrupt"
            )

    def _next_image(self) -> tuple[Image, datetime] | None:
        while self._position < len(self._paths):
            position = self._position
            self._position += 1
            image = _read_image(self._paths[position])
            if image is not None:
                return image, self._start + position * self._period
            self.skipped_frames += 1
        return None


def _image_files(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise CaptureError(f"cannot list folder {shown_path(folder)}: {error.strerror}") from error
    images = [entry for entry in entries if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file()]
    # The plain name breaks ties such as 01.png and 1.png, so the order never depends on the file system.
    return sorted(images, key=lambda entry: (natural_sort_key(entry.name), entry.name))


def natural_sort_key(name: str) -> tuple[str | int, ...]:
    """Sort key that orders the digit runs in a name by value: 'img2' < 'img10'."""
    # re.split with a group alternates text and digits, always starting with text, so keys compare cleanly.
    return tuple(int(part) if index % 2 else part.casefold() for index, part in enumerate(re.split(r"(\d+)", name)))


def _read_image(path: Path) -> Image | None:
    """The image in file `path`, or None when it cannot be read or decoded. OpenCV's file functions take only
    UTF-8 names (one that is not, from a folder copied off another system, crashed the process), so such a file
    is read by Python and decoded from memory; the others by OpenCV, which decodes what a truncated JPEG holds
    where decoding from memory gives up."""
    with _quiet_opencv(), _quiet_stderr():
        if shown_path(path) == str(path):
            return cv2.imread(str(path), cv2.IMREAD_COLOR)
        try:
            return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        except (OSError, cv2.error):  # gone or unreadable; cv2.error: an empty file
            return None


def shown_path(path: Path) -> str:
    """`path` for messages and the session's source: bytes of a name that is not UTF-8 as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: libpng and libjpeg print their complaints about a truncated file
    ("libpng error: Read Error", "Premature end of JPEG file") there themselves, past OpenCV's log level."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings, which would bury the one clear message the user gets."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)
