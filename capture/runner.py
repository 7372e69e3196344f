"""The capture loop: source -> pipeline -> recorder, until the source ends or a stop signal arrives."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from capture.pipeline import FramePipeline
from capture.sources import FrameSource
from db.recorder import SessionRecorder


@dataclass(frozen=True)
class CaptureSummary:
    frames: int
    faces: int
    skipped_frames: int
    mean_frame_ms: float  # analysis + database write, per frame

    def line(self) -> str:
        skipped = f", {self.skipped_frames} skipped (undecodable)" if self.skipped_frames else ""
        return f"frames={self.frames} faces={self.faces} mean_ms_per_frame={self.mean_frame_ms:.1f}{skipped}"


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
    recorder: SessionRecorder,
    stop: threading.Event,
    max_frames: int | None = None,
) -> CaptureSummary:
    frames = faces = 0
    busy_s = 0.0
    # A continued session keeps counting frames after the ones it already holds.
    offset = recorder.next_frame_index
    for frame in source:
        started = time.perf_counter()
        result = pipeline.analyse(dataclasses.replace(frame, index=frame.index + offset))
        recorder.record(result)
        busy_s += time.perf_counter() - started
        frames += 1
        faces += len(result.observations)
        if stop.is_set() or (max_frames is not None and frames >= max_frames):
            break
    return CaptureSummary(frames, faces, source.skipped_frames, busy_s * 1000 / max(frames, 1))
