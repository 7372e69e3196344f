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
from pathlib import Path

from sqlalchemy import Engine

from analytics.report import score_session
from analytics.settings import ConfigError, load_config
from capture.detect import DETECTORS, make_detector
from capture.errors import CaptureError
from capture.pipeline import FramePipeline
from capture.runner import run_capture, stop_on_signals
from capture.sender import TOKEN_VARIABLE, ServerRecorder, read_token
from capture.sources import open_source
from capture.spool import DEFAULT_SPOOL
from db.arguments import days, text
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.purge import purge_older_than
from db.queries import find_session
from db.recorder import SessionRecorder
from db.users import find_user
from model.runtime import DEFAULT_MODEL, EmotionClassifier, ModelFileError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m capture", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", default="screen", help="screen[:N|:X,Y,W,H], webcam:N, a video, an image or a folder"
    )
    parser.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    parser.add_argument(
        "--server",
        metavar="URL",
        default=None,
        help="send the frames to the school's server (its dashboard URL) with a capture token, instead of --db",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"with --server: the file holding the capture token (default: the {TOKEN_VARIABLE} variable)",
    )
    parser.add_argument(
        "--spool",
        type=Path,
        default=DEFAULT_SPOOL,
        help="with --server: where frames wait until the server has them (default %(default)s)",
    )
    parser.add_argument(
        "--session",
        type=text,
        default=None,
        help="session name; an existing name is continued (default: class-<date>-<time>)",
    )
    parser.add_argument("--fps", type=float, default=1.0, help="frames per second for live sources (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="blazeface")
    parser.add_argument(
        "--ocr-lang", default="eng", help="Tesseract languages of the name labels, joined by + (default eng; eng+kor)"
    )
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="emotion model (.tflite)")
    parser.add_argument(
        "--attention-only",
        action="store_true",
        help="no emotion inference at all (the model is not loaded): presence, head pose and eyes only",
    )
    parser.add_argument(
        "--teacher",
        type=text,
        default=None,
        help="the dashboard user who owns the session (default: only admins see it)",
    )
    parser.add_argument(
        "--retain-days",
        type=days,
        default=None,
        metavar="N",
        help="at start, purge every session that ended more than N days ago (python -m db purge)",
    )
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be at least 1")
    if args.server is not None and (args.db != DEFAULT_URL or args.teacher or args.retain_days is not None):
        parser.error("--server writes no database: no --db, --teacher (the token names it) or --retain-days with it")
    if args.server is None and args.token_file is not None:
        parser.error("--token-file goes with --server")
    args.session = args.session or datetime.now().strftime("class-%Y-%m-%d-%H%M")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        token = read_token(args.token_file) if args.server is not None else ""
        with open_source(args.source, fps=args.fps) as source:
            # Attention-only: emotion recognition in education is restricted in some jurisdictions
            # (EU AI Act Art. 5(1)(f)), so the model is not even loaded.
            classifier = None if args.attention_only else EmotionClassifier(args.model)
            pipeline = FramePipeline(make_detector(args.detector), classifier, ocr_lang=args.ocr_lang)
            engine = None if args.server is not None else upgrade(args.db)
            if engine is not None and args.teacher is not None and find_user(engine, args.teacher) is None:
                # A typo would file the class under nobody the teacher can sign in as: invisible to them.
                raise CaptureError(
                    f"--teacher {args.teacher!r} is not a dashboard user; add it first with "
                    f"python -m dashboard users add {args.teacher} --role teacher"
                )
            with (
                stop_on_signals() as stop,
                (
                    ServerRecorder.open(args.server, token, args.session, source.description, args.spool)
                    if engine is None
                    else SessionRecorder.open(engine, args.session, source.description, args.teacher)
                ) as recorder,
            ):
                # After the session's lease is taken: the purge then skips it, as it skips every session
                # another capture is writing.
                if args.retain_days is not None:
                    purged = purge_older_than(engine, args.retain_days)
                    print(f"purged {len(purged)} session(s) older than {args.retain_days:g} day(s)", file=sys.stderr)
                summary = run_capture(source, pipeline, recorder, stop, args.max_frames)
                # Before the session is closed, which may fail on the database that failed the frames.
                print(f"session={args.session} {summary.line()}", flush=True)
                if summary.unwritten_frames:
                    lost = f"error: {summary.unwritten_frames} analysed frame(s) were not written to the database"
                    print(lost, file=sys.stderr, flush=True)
    except (CaptureError, DatabaseError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary.unwritten_frames:
        return 1
    if engine is not None:
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
