"""Milliseconds per 49-tile 1080p gallery frame, split into grab / detect / identity / signals / classify / write, on
a quiet machine and with one core kept busy by another process; and per 640x360 frame without a gallery grid.

`python -m bench.pipeline [--frames N] [--repeats R] [--threads T] [--pinned] [--moving SHARE] [--every-frame]
[--no-labels]`.
Grab is a real `mss` grab of an X screen showing the gallery (a virtual X screen, Xvfb, showing it with feh); the
other stages run the real pipeline on FER2013 faces composed into a 7x7 gallery (40 faces, 9 camera-off tiles, a
name label on every tile as Zoom draws it; with `--no-labels` none, the video's own light marks that pass for text
left to capture/names.py) and write to a real SQLite file. The frames are live video, not one
still picture: every video tile has fresh sensor noise (sigma 2) each frame, and each face tile, with a chance of
`--moving` (default 0.25) each frame, shifts its picture anew by up to 3 px (a student moving in their seat), so
the detector has views to look at again every frame (capture/detect/regions.py); with `--moving 1` every face moves
every frame, the detector's worst case; `--every-frame` is the baseline, the pipeline as it ran before it skipped
unchanged views. The views looked at per frame and the Tesseract calls during the timed frames are printed (the
target is for frames with no OCR due). Each repeat runs the frames quiet, then again while a second process spins a
busy loop (`--pinned`: pinned to CPU 0; else wherever the kernel puts it), the way a video call takes a core of a
teacher's laptop; the ratio loaded/quiet is taken within the repeat, so both halves share the machine's other load,
and the spread of the ratios over the repeats is the noise. `--threads` overrides capture.threads for every pool
(OpenCV, OpenBLAS, each LiteRT model). The frame without a grid is a webcam-sized view of skimage's astronaut
photo, through the same pipeline (no write), with the same noise and the same chance of moving. The load average is
printed with each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from bench.identity import class_names
from capture.detect import make_detector
from capture.pipeline import FramePipeline
from capture.sources import open_source
from config import CaptureConfig
from db.migrate import upgrade
from db.recorder import SessionRecorder
from model.runtime import EmotionClassifier
from tests.galleries import FER_CSV, astronaut, compose_gallery, fer_faces
from tests.screen import showing_fullscreen, virtual_screen
from vocabulary.records import Box, Frame

GALLERY_COLS = GALLERY_ROWS = 7
FACES = 40
WEBCAM_SIZE = (640, 360)
NOISE_SIGMA = 2.0
NOISE_FIELDS = 4  # noise drawn once per field and cycled: drawing it for every frame takes longer than a frame
MAX_SHIFT = 3


class LiveVideo:
    """Frames of a still picture made to look live: fresh noise on its video parts every frame, and each part,
    with a chance of `moving` each frame, shifted anew by up to MAX_SHIFT px in x and y (kept until the next).

    video: the picture without what the app draws over the video (name labels), which `image` has; those
    pixels stay where they are, without noise, as an app draws them over the moving video."""

    def __init__(self, image: np.ndarray, video: np.ndarray, parts: list[Box], moving: float, seed: int = 0) -> None:
        self.image, self.video, self.parts, self.moving = image, video, parts, moving
        self._rng = np.random.default_rng(seed)
        self._shifts = [(0, 0)] * len(parts)
        self._drawn = (image != video).any(axis=2)
        live = np.zeros(image.shape[:2], bool)
        for part in parts:
            live[part.y : part.y + part.h, part.x : part.x + part.w] = True
        live &= ~self._drawn
        self._noise = [
            np.where(live[..., None], self._rng.normal(0, NOISE_SIGMA, image.shape), 0).astype(np.int16)
            for _ in range(NOISE_FIELDS)
        ]
        self._count = 0

    def next(self) -> np.ndarray:
        for index in np.flatnonzero(self._rng.random(len(self.parts)) < self.moving):
            dx, dy = (int(v) for v in self._rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, 2))
            self._shifts[index] = (dx, dy)
        frame = self.video.copy()
        for part, (dx, dy) in zip(self.parts, self._shifts, strict=True):
            if dx or dy:
                view = self.video[part.y : part.y + part.h, part.x : part.x + part.w]
                shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
                frame[part.y : part.y + part.h, part.x : part.x + part.w] = cv2.warpAffine(
                    view, shift, (part.w, part.h), borderMode=cv2.BORDER_REFLECT
                )
        frame[self._drawn] = self.image[self._drawn]
        noise = self._noise[self._count % NOISE_FIELDS]
        self._count += 1
        return np.clip(frame + noise, 0, 255).astype(np.uint8)


def time_grabs(frames: int) -> list[float]:
    grabs = []
    with open_source("screen", fps=1000.0) as source:
        iterator = iter(source)
        for _ in range(frames):
            started = time.perf_counter()
            next(iterator)
            grabs.append((time.perf_counter() - started) * 1000)
    return grabs


STAGES = ("detect", "identity", "signals", "classify", "write")
COLUMNS = (*STAGES, "total", "cpu")


def set_autogroup_nice(pid: int | str, nice: int) -> int:
    """Sets the nice value of the autogroup (the session's share of the CPU) of process `pid`; returns the
    one it had."""
    group = Path(f"/proc/{pid}/autogroup")
    before = int(group.read_text().split()[-1])
    group.write_text(str(nice))
    return before


@contextmanager
def busy_core(pinned: bool, nice: int | None = None) -> Iterator[None]:
    """Another process spinning on one core while the block runs (pinned to CPU 0 when `pinned`).

    In a session of its own, as a video call is an application of its own: Linux's autogroup scheduling
    shares the CPU between sessions first, so a spinner in this session would take only from this
    benchmark's share of a shared machine, and the ratio would measure the machine's other load instead."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        if pinned:
            os.sched_setaffinity(spinner.pid, {0})
        if nice is not None:
            set_autogroup_nice(spinner.pid, nice)
        time.sleep(0.5)  # the spinner is running before the first frame is timed
        yield
    finally:
        spinner.kill()
        spinner.wait()


def time_frames(pipeline: FramePipeline, recorder: SessionRecorder, video: LiveVideo, first: int, frames: int):
    """Per-stage milliseconds of `frames` frames of `video` (stage -> list; "cpu": the process's CPU time, all
    threads), and the faces found and the detector's views looked at per frame."""
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    cpu: list[float] = []
    found = []
    for index in range(first, first + frames):
        image = video.next()
        cpu_started = time.process_time()
        result = pipeline.analyse(Frame(index, datetime.now(UTC), image))
        started = time.perf_counter()
        recorder.record(result)
        stages["write"].append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        for stage in STAGES[:-1]:
            stages[stage].append(result.stage_ms[stage])
        found.append((result.faces, pipeline.faces.looked, pipeline.faces.followed))
    return stages, cpu, found


def medians(stages: dict[str, list[float]], cpu: list[float]) -> dict[str, float]:
    per_stage = {stage: statistics.median(values) for stage, values in stages.items()}
    # The median of the frames' totals, not the sum of the stages' medians.
    per_stage["total"] = statistics.median(sum(frame) for frame in zip(*stages.values(), strict=True))
    # CPU time is what a frame costs whoever else uses the cores; the wall times also hold the waits for a
    # core, and spinning pool threads show as CPU time that does no work.
    per_stage["cpu"] = statistics.median(cpu)
    return per_stage


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def time_runs(
    pipeline: FramePipeline, video: LiveVideo, frames: int, repeats: int, pinned: bool, nice: int | None
) -> tuple[dict[str, list[dict[str, float]]], list[tuple[int, int]], list[float], int]:
    """Each repeat's per-stage medians, quiet and loaded (printed as they come); the faces found and the views
    looked at per frame; the grabs' milliseconds; the Tesseract calls during the timed frames."""
    runs: dict[str, list[dict[str, float]]] = {"quiet": [], "loaded": []}
    found: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory() as work:
        with virtual_screen(), showing_fullscreen(video.image, Path(work)):
            grabs = time_grabs(frames)
        engine = upgrade(f"sqlite:///{work}/bench.db")
        with SessionRecorder.open(engine, "bench", "bench gallery") as recorder:
            # One untimed pass: the first frames plan the models, search the layout and read the names.
            time_frames(pipeline, recorder, video, 0, 3)
            ocr_before = pipeline.names.tesseract_calls
            first = 3
            for repeat in range(1, repeats + 1):
                for mode in ("quiet", "loaded"):
                    with busy_core(pinned, nice) if mode == "loaded" else nullcontext():
                        stages, cpu, seen = time_frames(pipeline, recorder, video, first, frames)
                        average = load_average()
                    first += frames
                    found += seen
                    runs[mode].append(medians(stages, cpu))
                    row = "".join(f"{value:>10.1f}" for value in runs[mode][-1].values())
                    print(f"{f'{repeat} {mode}':<14}{row}   {average}", flush=True)
    return runs, found, grabs, pipeline.names.tesseract_calls - ocr_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per run (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="quiet + loaded pairs (default 3)")
    parser.add_argument("--threads", type=int, help="threads per pool (default: capture.threads)")
    parser.add_argument("--pinned", action="store_true", help="pin the busy process to CPU 0")
    parser.add_argument(
        "--moving", type=float, default=0.25, help="chance that a face moves in a frame, 0-1 (default 0.25)"
    )
    parser.add_argument(
        "--every-frame",
        action="store_true",
        help="the detector looks at every view and the landmark models fill every slot every frame (before "
        "capture.regions.redetect_frames and capture.signals.landmark_refresh_frames): the baseline",
    )
    parser.add_argument(
        "--no-follow",
        action="store_true",
        help="every view whose pixels changed goes to the detector, even when its faces are found again nearby "
        "(capture.regions.follow_shift 0): the baseline of following faces",
    )
    parser.add_argument(
        "--no-labels",
        action="store_true",
        help="no name label on the video tiles (the camera-off tiles still show theirs): what Tesseract costs on "
        "marks in noisy video that pass for text",
    )
    parser.add_argument(
        "--autogroup-nice",
        type=int,
        metavar="N",
        help="run this benchmark's session and the busy process's at autogroup nice N (root; -20: as if alone "
        "on a machine other sessions share; restored after)",
    )
    args = parser.parse_args(argv)
    if args.frames < 1 or args.repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--frames, --repeats and --threads must be at least 1")
    if not 0 <= args.moving <= 1:
        parser.error("--moving must be between 0 and 1")
    if args.autogroup_nice is not None and not -20 <= args.autogroup_nice <= 19:
        parser.error("--autogroup-nice must be between -20 and 19")
    if not FER_CSV.exists():
        print(f"error: this benchmark composes FER2013 faces and needs {FER_CSV}", file=sys.stderr)
        return 2
    settings = CaptureConfig() if args.threads is None else CaptureConfig(threads=args.threads)
    if args.every_frame:
        settings = settings.model_copy(
            update={
                "regions": settings.regions.model_copy(update={"redetect_frames": 1, "redetect_change": 0}),
                "signals": settings.signals.model_copy(update={"landmark_refresh_frames": 1}),
            }
        )
    if args.no_follow:
        settings = settings.model_copy(update={"regions": settings.regions.model_copy(update={"follow_shift": 0.0})})
    threads = settings.threads
    faces, _ = fer_faces(FACES, seed=7)
    names, _ = class_names(GALLERY_COLS * GALLERY_ROWS, np.random.default_rng(7))
    camera_off = set(range(FACES, 49))
    labels = None if args.no_labels else names
    gallery = compose_gallery(list(faces), GALLERY_COLS, GALLERY_ROWS, camera_off=camera_off, names=labels)
    # The same gallery without the labels: the video under them.
    unlabelled = compose_gallery(list(faces), GALLERY_COLS, GALLERY_ROWS, camera_off=camera_off).image
    face_tiles = [tile for tile, face in zip(gallery.tiles, gallery.faces, strict=True) if face is not None]

    def pipeline() -> FramePipeline:
        detector = make_detector("blazeface", num_threads=threads)
        return FramePipeline(detector, EmotionClassifier(threads=threads), settings=settings)

    nice = args.autogroup_nice
    try:
        restore = None if nice is None else set_autogroup_nice("self", nice)
    except (OSError, ValueError) as error:
        print(f"error: --autogroup-nice needs root and Linux autogroup scheduling ({error})", file=sys.stderr)
        return 2
    busy = "pinned to CPU 0" if args.pinned else "not pinned"
    favoured = "" if args.autogroup_nice is None else f", autogroup nice {args.autogroup_nice}"
    print(
        f"7x7 gallery, 1920x1080, {FACES} faces + {49 - FACES} camera-off tiles, {args.frames} frames a run, "
        f"{os.cpu_count()} CPUs, {threads} thread(s) per pool; loaded = one busy-loop process ({busy}){favoured}; "
        f"each face moves with a chance of {args.moving:.0%} a frame{'; no name labels' if args.no_labels else ''}"
        f"{'; every view and landmark slot every frame (baseline)' if args.every_frame else ''}"
        f"{'; changed views not followed (baseline)' if args.no_follow else ''}"
    )
    print(f"{'run':<14}" + "".join(f"{column:>10}" for column in COLUMNS) + "   load average")
    try:
        gallery_pipeline = pipeline()
        live = LiveVideo(gallery.image, unlabelled, face_tiles, args.moving)
        runs, found, grabs, ocr = time_runs(gallery_pipeline, live, args.frames, args.repeats, args.pinned, nice)
        webcam = LiveVideo(webcam_frame(), webcam_frame(), [Box(0, 0, *WEBCAM_SIZE)], args.moving)
        single = pipeline()
        alone = [single.analyse(Frame(index, datetime.now(UTC), webcam.next())) for index in range(args.frames)]
    finally:
        if restore is not None:
            set_autogroup_nice("self", restore)
    faces_seen, looked, followed = ([row[i] for row in found] for i in range(3))
    print(
        f"faces found per frame: {min(faces_seen)}..{max(faces_seen)}; detector views looked at per frame: median "
        f"{statistics.median(looked):g} ({min(looked)}..{max(looked)}), followed: median "
        f"{statistics.median(followed):g}; Tesseract calls in the timed frames: {ocr}; "
        f"grab (quiet): median {statistics.median(grabs):.1f} ms"
    )
    print(f"{'median':<14}" + "".join(f"{column:>10}" for column in COLUMNS))
    for mode, rows in runs.items():
        print(f"{mode:<14}" + "".join(f"{statistics.median(r[s] for r in rows):>10.1f}" for s in rows[0]))
    ratios = [loaded["total"] / quiet["total"] for quiet, loaded in zip(runs["quiet"], runs["loaded"], strict=True)]
    print(
        f"loaded / quiet, per repeat: {' '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f} "
        f"(target <= 1.3)"
    )
    times = [result.processing_ms for result in alone]
    print(
        f"no grid, {WEBCAM_SIZE[0]}x{WEBCAM_SIZE[1]}, quiet: median {statistics.median(times):.1f} ms, "
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
