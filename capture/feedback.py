"""What a running capture shows on the terminal: a progress bar for a file, a status line now and then for a
live source, nothing at all when stderr is not a terminal (a log file or a pipe wants only the summary).

The progress bar is tqdm's: it is already installed with the live path (ai-edge-litert depends on it), it
draws frames done of total, frames per second and the time left in one line on stderr, and it stays out of
stdout, where the summary line goes. rich draws more but would be one more package for one bar.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from tqdm import tqdm

from vocabulary.records import FrameResult


class Feedback(Protocol):
    def frame(self, result: FrameResult, busy_ms: float) -> None:
        """One frame analysed (and handed to the recorder) in `busy_ms`."""

    def close(self) -> None: ...


class Quiet:
    """Nothing: not on a terminal."""

    def frame(self, result: FrameResult, busy_ms: float) -> None:
        pass

    def close(self) -> None:
        pass


class FileProgress:
    """A progress bar over a recording, a folder of images or an image: frames done of `total` (None when the
    file does not say), frames per second, time left, and the faces of the last frame."""

    def __init__(self, total: int | None, description: str, stream: TextIO) -> None:
        self._bar = tqdm(total=total, desc=description, unit="frame", file=stream, dynamic_ncols=True, leave=True)

    def frame(self, result: FrameResult, busy_ms: float) -> None:
        self._bar.set_postfix_str(f"{result.faces} faces", refresh=False)
        self._bar.update()

    def close(self) -> None:
        self._bar.close()


class LiveStatus:
    """A status line every `every_s` seconds for a live source: tiles, faces and names of the last frame, and
    the mean time per frame since the last line."""

    def __init__(self, every_s: float, stream: TextIO) -> None:
        self._every_s = every_s
        self._stream = stream
        self._frames = 0
        self._since = time.monotonic()
        self._busy_ms = 0.0
        self._count = 0

    def frame(self, result: FrameResult, busy_ms: float) -> None:
        self._frames += 1
        self._count += 1
        self._busy_ms += busy_ms
        now = time.monotonic()
        if now - self._since < self._every_s and self._frames > 1:
            return
        print(status_line(result, self._frames, self._busy_ms / self._count), file=self._stream, flush=True)
        self._since, self._busy_ms, self._count = now, 0.0, 0

    def close(self) -> None:
        pass


def status_line(result: FrameResult, frames: int, ms_per_frame: float) -> str:
    tiles = len({o.tile for o in result.observations if o.tile is not None})
    clock = time.strftime("%H:%M:%S")
    return (
        f"{clock} frame {frames}: {tiles} tiles, {result.faces} faces, {len(result.student_names)} names, "
        f"{ms_per_frame:.0f} ms/frame ({result.layout.value} layout)"
    )


def make_feedback(
    live: bool, total: int | None, description: str, status_every_s: float, stream: TextIO = sys.stderr
) -> Feedback:
    """The feedback for a source: a bar for a file, status lines for a live source; quiet off a terminal."""
    if not stream.isatty():
        return Quiet()
    if live:
        return LiveStatus(status_every_s, stream)
    return FileProgress(total, description, stream)
