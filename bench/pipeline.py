"""Milliseconds per 49-tile 1080p gallery frame, split into grab / detect / signals / classify / write.

`python -m bench.pipeline [--frames N]`. Grab is a real `mss` grab of an X screen showing the gallery
(a virtual X screen, Xvfb, showing it with feh); the other stages run the real pipeline on FER2013 faces
composed into a 7x7 gallery (40 faces, 9 camera-off tiles) and write to a real SQLite file.
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

import numpy as np

from capture.detect import make_detector
from capture.pipeline import FramePipeline
from capture.sources import open_source
from db.migrate import upgrade
from db.recorder import SessionRecorder
from model.runtime import EmotionClassifier
from tests.galleries import FER_CSV, compose_gallery, fer_faces
from tests.screen import showing_fullscreen, virtual_screen
from vocabulary.records import Frame

GALLERY_COLS = GALLERY_ROWS = 7
FACES = 40


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
    stages: dict[str, list[float]] = {"grab": [], "detect": [], "signals": [], "classify": [], "write": []}
    found = []
    with tempfile.TemporaryDirectory() as work:
        with virtual_screen(), showing_fullscreen(gallery.image, Path(work)):
            stages["grab"] = time_grabs(args.frames)
        engine = upgrade(f"sqlite:///{work}/bench.db")
        with SessionRecorder.open(engine, "bench", "bench gallery") as recorder:
            for index in range(args.frames):
                result = pipeline.analyse(Frame(index, datetime.now(UTC), gallery.image))
                started = time.perf_counter()
                recorder.record(result)
                stages["write"].append((time.perf_counter() - started) * 1000)
                stages["detect"].append(result.stage_ms["detect"])
                stages["signals"].append(result.stage_ms["signals"])
                stages["classify"].append(result.stage_ms["classify"])
                found.append(result.faces)
    print(
        f"7x7 gallery, 1920x1080, {FACES} faces + {49 - FACES} camera-off tiles, {args.frames} frames, "
        f"{os.cpu_count()} CPUs; faces found per frame: {min(found)}..{max(found)}"
    )
    print(f"{'stage':<10}{'median ms':>10}{'p90 ms':>10}")
    for stage, values in stages.items():
        print(f"{stage:<10}{statistics.median(values):>10.1f}{np.percentile(values, 90):>10.1f}")
    total = sum(statistics.median(v) for v in stages.values())
    print(f"{'total':<10}{total:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
