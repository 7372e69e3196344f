"""Milliseconds per 49-tile 1080p gallery frame, split into grab / detect / identity / signals / classify /
write, and per 640x360 frame without a gallery grid.

`python -m bench.pipeline [--frames N]`. Grab is a real `mss` grab of an X screen showing the gallery
(a virtual X screen, Xvfb, showing it with feh); the other stages run the real pipeline on FER2013 faces
composed into a 7x7 gallery (40 faces, 9 camera-off tiles) and write to a real SQLite file. The frame
without a grid is a webcam-sized view of skimage's astronaut photo, through the same pipeline (no write).
The machine's load average is printed with the numbers: on a shared machine, compare runs made together.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from capture.detect import make_detector
from capture.pipeline import FramePipeline
from capture.sources import open_source
from db.migrate import upgrade
from db.recorder import SessionRecorder
from model.runtime import EmotionClassifier
from tests.galleries import FER_CSV, astronaut, compose_gallery, fer_faces
from tests.screen import showing_fullscreen, virtual_screen
from vocabulary.records import Frame

GALLERY_COLS = GALLERY_ROWS = 7
FACES = 40
WEBCAM_SIZE = (640, 360)


def time_grabs(frames: int) -> list[float]:
    grabs = []
    with open_source("screen", fps=1000.0) as source:
        iterator = iter(source)
        for _ in range(frames):
            started = time.perf_counter()
            next(iterator)
            grabs.append((time.perf_counter() - started) * 1000)
    return grabs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args(argv)
    if not FER_CSV.exists():
        print(f"error: this benchmark composes FER2013 faces and needs {FER_CSV}", file=sys.stderr)
        return 2
    faces, _ = fer_faces(FACES, seed=7)
    gallery = compose_gallery(list(faces), GALLERY_COLS, GALLERY_ROWS, camera_off=set(range(FACES, 49)))
    pipeline = FramePipeline(make_detector("blazeface"), EmotionClassifier())
    stages: dict[str, list[float]] = {
        "grab": [],
        "detect": [],
        "identity": [],
        "signals": [],
        "classify": [],
        "write": [],
    }
    found, cpu = [], []
    with tempfile.TemporaryDirectory() as work:
        with virtual_screen(), showing_fullscreen(gallery.image, Path(work)):
            stages["grab"] = time_grabs(args.frames)
        engine = upgrade(f"sqlite:///{work}/bench.db")
        with SessionRecorder.open(engine, "bench", "bench gallery") as recorder:
            for index in range(args.frames):
                cpu_started = time.process_time()
                result = pipeline.analyse(Frame(index, datetime.now(UTC), gallery.image))
                started = time.perf_counter()
                recorder.record(result)
                stages["write"].append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
                for stage in ("detect", "identity", "signals", "classify"):
                    stages[stage].append(result.stage_ms[stage])
                found.append(result.faces)
    webcam = webcam_frame()
    single = FramePipeline(make_detector("blazeface"), EmotionClassifier())
    alone = [single.analyse(Frame(index, datetime.now(UTC), webcam)) for index in range(args.frames)]
    print(
        f"7x7 gallery, 1920x1080, {FACES} faces + {49 - FACES} camera-off tiles, {args.frames} frames, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"faces found per frame: {min(found)}..{max(found)}"
    )
    print(f"{'stage':<10}{'median ms':>10}{'p90 ms':>10}")
    for stage, values in stages.items():
        print(f"{stage:<10}{statistics.median(values):>10.1f}{np.percentile(values, 90):>10.1f}")
    total = sum(statistics.median(v) for v in stages.values())
    print(f"{'total':<10}{total:>10.1f}")
    # CPU time (every thread of the process) is what a frame costs whoever else uses the cores; the wall
    # times above also hold the waits for a core, which on a shared machine vary from run to run.
    print(f"cpu ms a frame (all threads, grab excluded): median {statistics.median(cpu):.1f}")
    times = [result.processing_ms for result in alone]
    print(
        f"no grid, {WEBCAM_SIZE[0]}x{WEBCAM_SIZE[1]}: median {statistics.median(times):.1f} ms, "
        f"p90 {np.percentile(times, 90):.1f} ms a frame; faces found per frame: "
        f"{min(r.faces for r in alone)}..{max(r.faces for r in alone)}"
    )
    return 0


def webcam_frame() -> np.ndarray:
    """A 16:9 webcam-sized view of one person: the astronaut photo's upper part, scaled."""
    photo = astronaut()
    top = photo[: photo.shape[1] * WEBCAM_SIZE[1] // WEBCAM_SIZE[0]]
    return cv2.resize(top, WEBCAM_SIZE, interpolation=cv2.INTER_AREA)


if __name__ == "__main__":
    sys.exit(main())
