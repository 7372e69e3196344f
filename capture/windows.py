"""The X11 desktop's top-level windows, each with its title and where it is on the screen, for capturing one
window (capture.sources' window sources: a teacher picks "Zoom Meeting" rather than typing coordinates).

Read through python-xlib, the X protocol in pure Python (no compiled extension, no xdotool or wmctrl program to
install). A window manager that follows EWMH (GNOME, KDE, Xfce, most others) lists its managed windows in the
root window's _NET_CLIENT_LIST; without one (a bare X server such as Xvfb, or an old manager) the windows are the
root's mapped children, each the client itself or, where a manager draws a frame around it, the child that
carries WM_STATE (ICCCM). Geometry is that of the client's own content, without the manager's frame, in root
(screen) pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from capture.errors import CaptureError

if TYPE_CHECKING:
    from Xlib.display import Display
    from Xlib.xobject.drawable import Window as XWindow

# X resource ids have 29 bits (the X protocol's XID); a larger number names no window.
X_ID_LIMIT = 1 << 29


@dataclass(frozen=True)
class Window:
    """A top-level window: its X id, its title, and its content's rectangle on the screen in pixels."""

    id: int
    title: str
    x: int
    y: int
    width: int
    height: int

    def label(self) -> str:
        return f"{self.title} ({self.width}×{self.height} at {self.x},{self.y})"


class WindowGoneError(CaptureError):
    """The window was closed."""


def connect() -> Display:
    """A connection to $DISPLAY's X server (close it when done); CaptureError (one line) when there is none."""
    name = os.environ.get("DISPLAY")
    if not name:
        raise CaptureError("no display: DISPLAY is not set, so there are no windows to capture")
    # Imported here so that file sources work on machines without X.
    from Xlib import display, error

    try:
        return display.Display(name)
    except (error.DisplayError, error.ConnectionClosedError) as problem:
        raise CaptureError(f"cannot reach display {name}: {problem}") from problem


@contextmanager
def x_display() -> Iterator[Display]:
    """connect(), closed when the block ends."""
    connection = connect()
    try:
        yield connection
    finally:
        connection.close()


def shown_windows() -> list[Window]:
    """list_windows on $DISPLAY; CaptureError (one line) when there is no display."""
    with x_display() as connection:
        return list_windows(connection)


def list_windows(connection: Display) -> list[Window]:
    """The visible top-level windows that have a title, in the order the window manager (or X) lists them."""
    from Xlib import X, error

    root = connection.screen().root
    listed = root.get_full_property(connection.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
    if listed is not None:
        candidates = [int(number) for number in listed.value]
    else:
        clients = (_client(connection, child) for child in root.query_tree().children)
        candidates = [client for client in clients if client is not None]
    found = []
    for candidate in candidates:
        try:
            shown = window_at(connection, candidate)
        except (WindowGoneError, error.XError):
            continue  # closed while being listed
        if shown is not None and shown.title:
            found.append(shown)
    return found


def window_at(connection: Display, window_id: int) -> Window | None:
    """Window `window_id` as it is now; None while it is not shown (minimised, on another desktop, unmapped);
    WindowGoneError once it is closed."""
    from Xlib import X, error

    if not 0 < window_id < X_ID_LIMIT:
        raise WindowGoneError(f"window {window_id:#x} was closed")  # never was: no X id is that large
    window = connection.create_resource_object("window", window_id)
    try:
        if window.get_attributes().map_state != X.IsViewable:
            return None
        geometry = window.get_geometry()
        origin = window.translate_coords(connection.screen().root, 0, 0)
        title = _title(connection, window)
    except (error.BadWindow, error.BadDrawable) as problem:
        raise WindowGoneError(f"window {window_id:#x} was closed") from problem
    # translate_coords gives the root's origin in the window's coordinates: the window's place is its negative.
    return Window(window_id, title, -origin.x, -origin.y, geometry.width, geometry.height)


def _client(connection: Display, window: XWindow) -> int | None:
    """The id of the application's window at or just below a child of the root: itself when it has WM_STATE or a
    title, else its child that has WM_STATE (a manager's frame around it); None for neither."""
    from Xlib import X, error

    state = connection.intern_atom("WM_STATE")
    try:
        if window.get_full_property(state, X.AnyPropertyType) is not None or _title(connection, window):
            return int(window.id)
        for child in window.query_tree().children:
            if child.get_full_property(state, X.AnyPropertyType) is not None:
                return int(child.id)
    except error.XError:
        pass  # closed while being looked at
    return None


def _title(connection: Display, window: XWindow) -> str:
    """_NET_WM_NAME (UTF-8, what modern toolkits set) or else WM_NAME."""
    utf8 = window.get_full_property(connection.intern_atom("_NET_WM_NAME"), connection.intern_atom("UTF8_STRING"))
    if utf8 is not None and utf8.value:
        value = utf8.value
        return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()
    name = window.get_wm_name()
    if isinstance(name, bytes):
        return name.decode("latin-1").strip()
    return (name or "").strip()


def matching(windows: list[Window], words: str) -> Window:
    """The one window whose title contains `words` (case-insensitive); CaptureError naming the windows there
    are, in one line, when none or several do."""
    wanted = words.casefold()
    found = [window for window in windows if wanted in window.title.casefold()]
    if len(found) == 1:
        return found[0]
    if found:
        listed = "; ".join(repr(window.title) for window in found)
        raise CaptureError(f"{len(found)} windows' titles contain {words!r}: {listed}; give more of the title")
    there = "; ".join(repr(window.title) for window in windows) or "none"
    raise CaptureError(f"no window's title contains {words!r}; the windows shown now: {there}")
