"""The capture loop: source -> pipeline -> recorder, until the source ends or a stop signal arrives."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from capture.buffer import DEFAULT_MAX_PENDING, BufferedWriter, Recorder
from capture.feedback import Feedback, Quiet
from capture.pipeline import FramePipeline
from capture.sources import FrameSource
from config import CaptureConfig

# How long a stopping capture waits for an unreachable database to take the frames still in memory
# (config: capture.drain_seconds).
DRAIN_SECONDS = CaptureConfig().drain_seconds


@dataclass(frozen=True)
class CaptureSummary:
    frames: int  # analysed and committed
    faces: int
    skipped_frames: int
    mean_frame_ms: float  # analysis + database write, per frame
    unwritten_frames: int = 0  # analysed, but the database stayed unreachable to the end

    def line(self) -> str:
        skipped = f", {self.skipped_frames} skipped (undecodable)" if self.skipped_frames else ""
        unwritten = f", {self.unwritten_frames} NOT written (database unreachable)" if self.unwritten_frames else ""
        return f"frames={self.frames} faces={self.faces} mean_ms_per_frame={self.mean_frame_ms:.1f}{skipped}{unwritten}"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event instead of killing the process, so the frame in flight is still committed."""
    stop = threading.Event()
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in handled}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_capture(
    source: FrameSource,
    pipeline: FramePipeline,
    recorder: Recorder,
    stop: threading.Event,
    max_frames: int | None = None,
    drain_s: float = DRAIN_SECONDS,
    feedback: Feedback | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> CaptureSummary:
    """Analyse and record frames until the source ends, `max_frames` are done or `stop` is set. A database
    outage does not stop it: up to `max_pending` frames wait in memory, and at the end up to `drain_s` seconds
    for the database.
    `feedback` is told of every frame (capture.feedback: a progress bar or status lines on a terminal)."""
    feedback = feedback or Quiet()
    writer = BufferedWriter(recorder, stop, max_pending)
    frames = 0
    busy_s = 0.0
    # A continued session keeps counting frames after the ones it already holds.
    offset = recorder.next_frame_index
    try:
        for frame in source:
            started = time.perf_counter()
            result = pipeline.analyse(dataclasses.replace(frame, index=frame.index + offset))
            writer.write(result)
            frame_s = time.perf_counter() - started
            busy_s += frame_s
            frames += 1
            feedback.frame(result, frame_s * 1000)
            if stop.is_set() or (max_frames is not None and frames >= max_frames):
                break
    finally:
        # Ends the bar's line, so an error or the summary starts on a line of its own.
        feedback.close()
    unwritten = writer.drain(drain_s)
    mean_ms = busy_s * 1000 / max(frames, 1)
    return CaptureSummary(writer.written_frames, writer.written_faces, source.skipped_frames, mean_ms, unwritten)
