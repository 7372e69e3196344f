"""A virtual X screen (Xvfb), a picture shown full-screen on it (feh) and plain windows on it (python-xlib), for code
that grabs the screen."""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from capture.sources import open_source

XVFB_START_SECONDS = 30
SHOW_SECONDS = 30


class ScreenError(RuntimeError):
    """The virtual screen or the viewer did not come up."""


@contextmanager
def virtual_screen(width: int = 1920, height: int = 1080) -> Iterator[str]:
    """Starts Xvfb on a free display and points DISPLAY at it until the block ends; yields e.g. ':3'."""
    previous = os.environ.get("DISPLAY")
    # -displayfd makes Xvfb pick a free display number and write it once it accepts connections.
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe, so a chatty server never blocks
        server = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=[write_end],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        os.close(write_end)
        try:
            ready, _, _ = select.select([read_end], [], [], XVFB_START_SECONDS)
            number = os.read(read_end, 64).decode().strip() if ready else ""
            if not number.isdigit():
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip() or "no message"
                raise ScreenError(f"Xvfb did not start within {XVFB_START_SECONDS} s: {message}")
            os.environ["DISPLAY"] = f":{number}"
            yield os.environ["DISPLAY"]
        finally:
            os.close(read_end)
            server.terminate()
            server.wait(timeout=10)
            if previous is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = previous


def grab_screen() -> np.ndarray:
    with open_source("screen", fps=50.0) as source:
        return next(source).image


@contextmanager
def showing_fullscreen(image: np.ndarray, folder: Path) -> Iterator[np.ndarray]:
    """`image` (screen-sized BGR) shown full-screen by feh on $DISPLAY, from the moment a grab shows it exactly.

    A feh that exits before the picture is up (seen once on a loaded CI machine) is started again; the
    error names what feh said.
    """
    path = folder / "shown.png"
    cv2.imwrite(str(path), image)
    log = folder / "feh.log"
    deadline = time.monotonic() + SHOW_SECONDS
    viewer = _start_feh(path, log)
    try:
        while not np.array_equal(grab_screen(), image):
            if time.monotonic() > deadline:
                said = log.read_text(errors="replace").strip() or "nothing"
                raise ScreenError(
                    f"feh did not show the image on {os.environ.get('DISPLAY')} within {SHOW_SECONDS} s "
                    f"(feh {'exited' if viewer.poll() is not None else 'still running'}; it said: {said})"
                )
            if viewer.poll() is not None:
                viewer = _start_feh(path, log)
            time.sleep(0.1)
        yield image
    finally:
        viewer.terminate()
        viewer.wait(timeout=10)


def _start_feh(path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stream:
        return subprocess.Popen(
            ["feh", "--fullscreen", "--hide-pointer", "--no-menus", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=stream,
        )


class ShownWindow:
    """A plain X window of one colour, made with python-xlib as any program makes its windows."""

    def __init__(self, connection: Any, window: Any) -> None:
        self._connection = connection
        self.window = window
        self.id: int = window.id

    def move(self, x: int, y: int, width: int | None = None, height: int | None = None) -> None:
        size = {} if width is None or height is None else {"width": width, "height": height}
        self.window.configure(x=x, y=y, **size)
        self._connection.sync()

    def hide(self) -> None:
        self.window.unmap()
        self._connection.sync()

    def show(self) -> None:
        self.window.map()
        self._connection.sync()


@contextmanager
def x_window(title: str, x: int, y: int, width: int, height: int, rgb: int) -> Iterator[ShownWindow]:
    """A top-level window titled `title` at x, y on $DISPLAY, filled with colour 0xRRGGBB, until the block ends.
    No window manager runs on Xvfb, so the window is where it is asked to be, undecorated."""
    from Xlib import X, display

    connection = display.Display()
    root = connection.screen().root
    # override_redirect stays off: a window manager, where one runs, manages it like any application's window.
    window = root.create_window(x, y, width, height, 0, X.CopyFromParent, background_pixel=rgb)
    window.set_wm_name(title)
    window.map()
    connection.sync()
    try:
        deadline = time.monotonic() + SHOW_SECONDS
        # Mapped is not yet painted: wait until the screen shows its colour.
        while not _shows(x, y, width, height, rgb):
            if time.monotonic() > deadline:
                raise ScreenError(f"the window {title!r} was not shown on {os.environ.get('DISPLAY')}")
            time.sleep(0.05)
        yield ShownWindow(connection, window)
    finally:
        window.destroy()
        connection.close()


def _shows(x: int, y: int, width: int, height: int, rgb: int) -> bool:
    bgr = [rgb & 0xFF, (rgb >> 8) & 0xFF, rgb >> 16]
    with open_source(f"screen:{x},{y},{width},{height}", fps=50.0) as source:
        return bool((next(source).image == bgr).all())
