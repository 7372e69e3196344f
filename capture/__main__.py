"""`python -m capture --source SRC [--db URL] [--session NAME] [--fps F] [--max-frames N]`.

Sources: `screen`, `screen:N`, `screen:X,Y,W,H`, `webcam:N`, a video file, an image file, or a folder of
images. A file source ends by itself; a live one runs until Ctrl-C or SIGTERM. Either way every analysed
frame is committed before exit, and one summary line is printed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from capture.detect import DETECTORS, make_detector
from capture.errors import CaptureError
from capture.pipeline import FramePipeline
from capture.runner import run_capture, stop_on_signals
from capture.sources import open_source
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.recorder import SessionRecorder
from model.runtime import DEFAULT_MODEL, EmotionClassifier, ModelFileError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m capture", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", default="screen", help="screen[:N|:X,Y,W,H], webcam:N, a video, an image or a folder"
    )
    parser.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    parser.add_argument(
        "--session", default=None, help="session name; an existing name is continued (default: class-<date>-<time>)"
    )
    parser.add_argument("--fps", type=float, default=1.0, help="frames per second for live sources (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="blazeface")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="emotion model (.tflite)")
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be at least 1")
    args.session = args.session or datetime.now().strftime("class-%Y-%m-%d-%H%M")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with open_source(args.source, fps=args.fps) as source:
            pipeline = FramePipeline(make_detector(args.detector), EmotionClassifier(args.model))
            engine = upgrade(args.db)
            with stop_on_signals() as stop, SessionRecorder.open(engine, args.session, source.description) as recorder:
                summary = run_capture(source, pipeline, recorder, stop, args.max_frames)
    except (CaptureError, DatabaseError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"session={args.session} {summary.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
