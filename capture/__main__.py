"""`python -m capture --source SRC [--db URL] [--session NAME] [--fps F] [--max-frames N] [--attention-only]
[--teacher USER] [--retain-days N]`.

Sources: `screen`, `screen:N`, `screen:X,Y,W,H`, `webcam:N`, a video file, an image file, or a folder of
images. A file source ends by itself; a live one runs until Ctrl-C or SIGTERM. Either way every analysed
frame is committed before exit, and one summary line is printed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from sqlalchemy import Engine

from analytics.report import score_session
from analytics.settings import ConfigError, load_config
from capture.detect import DETECTORS, make_detector
from capture.errors import CaptureError
from capture.pipeline import FramePipeline
from capture.runner import run_capture, stop_on_signals
from capture.sources import open_source
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.purge import purge_older_than
from db.queries import find_session
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
    parser.add_argument(
        "--attention-only",
        action="store_true",
        help="no emotion inference at all (the model is not loaded): presence, head pose and eyes only",
    )
    parser.add_argument(
        "--teacher", default=None, help="the dashboard user who owns the session (default: only admins see it)"
    )
    parser.add_argument(
        "--retain-days",
        type=float,
        default=None,
        metavar="N",
        help="at start, purge every session that ended more than N days ago (python -m db purge)",
    )
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be at least 1")
    if args.retain_days is not None and args.retain_days < 0:
        parser.error("--retain-days must not be negative")
    args.session = args.session or datetime.now().strftime("class-%Y-%m-%d-%H%M")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with open_source(args.source, fps=args.fps) as source:
            # Attention-only: emotion recognition in education is restricted in some jurisdictions
            # (EU AI Act Art. 5(1)(f)), so the model is not even loaded.
            classifier = None if args.attention_only else EmotionClassifier(args.model)
            pipeline = FramePipeline(make_detector(args.detector), classifier)
            engine = upgrade(args.db)
            if args.retain_days is not None:
                purged = purge_older_than(engine, args.retain_days)
                print(f"purged {len(purged)} session(s) older than {args.retain_days:g} day(s)", file=sys.stderr)
            with (
                stop_on_signals() as stop,
                SessionRecorder.open(engine, args.session, source.description, args.teacher) as recorder,
            ):
                summary = run_capture(source, pipeline, recorder, stop, args.max_frames)
    except (CaptureError, DatabaseError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"session={args.session} {summary.line()}")
    keep_average_engagement(engine, args.session)
    return 0


def keep_average_engagement(engine: Engine, session_name: str) -> None:
    """Score the ended session once, so the dashboard's sessions list shows its average engagement without
    reading every row of every session (analytics.report.score_session). Failing costs only that number."""
    try:
        score_session(engine, find_session(engine, session_name), load_config())
    except (DatabaseError, ConfigError) as error:
        print(f"warning: the session's average engagement was not stored: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
