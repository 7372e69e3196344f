"""python -m capture: watch a video call's gallery (or a recording of one) and write what it sees as rows.

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

import config
from capture.detect import DETECTORS, make_detector
from capture.errors import CaptureError
from capture.feedback import make_feedback
from capture.pipeline import FramePipeline
from capture.runner import run_capture, stop_on_signals
from capture.sender import TOKEN_VARIABLE, ServerRecorder, read_token
from capture.sources import open_source
from capture.spool import DEFAULT_SPOOL
from config import CaptureConfig, ClassPulseConfig, ConfigError
from db.arguments import days, text
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.purge import purge_older_than
from db.queries import find_session
from db.recorder import SessionRecorder
from db.users import find_user
from model.runtime import DEFAULT_MODEL, EmotionClassifier, ModelFileError
from vocabulary.wire import WireError, class_name

PROG = "python -m capture"
EXAMPLES = f"""examples:
  {PROG} --teacher ms.garcia --session maths-7b
      watch the primary screen at 1 frame/s into the local database until Ctrl-C
  {PROG} --window "zoom meeting" --session maths-7b
      watch the video call's window wherever it is moved on the screen
  {PROG} --source lesson.mp4 --attention-only
      analyse a recording as fast as the machine allows, without emotion inference
  {PROG} --source screen:0,0,1920,1080 --server https://cp.school.example --token-file token
      send a screen region's rows to the school's server (they wait in the spool while it is away)

settings: {config.SHOWN_DEFAULT} documents every value; a --config file changes some, and the
options above win over both (--print-config shows the result).
"""
# The options that override a configuration value, by the value's dotted key.
OVERRIDES = {"fps": "capture.fps", "detector": "capture.detector", "ocr_lang": "capture.ocr_lang"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [--source SRC] [--session NAME] [--db URL | --server URL] [options]",
        description="Watch a video call's gallery, or a recording of one, and write what it sees as rows: faces, "
        "attention signals and emotions per student and frame. A file source ends by itself, a live one on "
        "Ctrl-C; either way every analysed frame is written and one summary line is printed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("source")
    one_source = source.add_mutually_exclusive_group()
    one_source.add_argument(
        "--source",
        metavar="SRC",
        default="screen",
        help="screen (the primary monitor), screen:N, screen:X,Y,W,H, window:TITLE, window-id:ID, webcam:N, a video "
        "file, an image or a folder of images (default %(default)s)",
    )
    one_source.add_argument(
        "--window",
        type=text,
        default=None,
        metavar="TITLE",
        help='the window whose title contains TITLE (case-insensitive, e.g. "zoom meeting"), followed as it moves '
        "(the same as --source window:TITLE); no or several such windows: they are listed, exit 2",
    )
    source.add_argument(
        "--fps",
        type=float,
        default=None,
        help=f"frames per second taken from a live source (default {CaptureConfig().fps:g}); files give every frame",
    )
    source.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    identity = parser.add_argument_group("identity")
    identity.add_argument(
        "--session",
        type=text,
        default=None,
        metavar="NAME",
        help="session name; an existing name is continued (default: class-<date>-<time>)",
    )
    identity.add_argument(
        "--class",
        dest="class_of",
        type=class_argument,
        default=None,
        metavar="NAME",
        help="the class this lesson belongs to (created when new): its sessions share one roster, so a student "
        "named or renamed in one lesson is the same student in the next (python -m db classes)",
    )
    identity.add_argument(
        "--teacher",
        type=text,
        default=None,
        metavar="USER",
        help="the dashboard user who owns the session (default: only admins see it)",
    )
    rows = parser.add_argument_group("where rows go")
    rows.add_argument(
        "--db", default=DEFAULT_URL, metavar="URL", help="SQLAlchemy URL (default: the embedded SQLite file)"
    )
    rows.add_argument(
        "--server",
        metavar="URL",
        default=None,
        help="send the frames to the school's server (its dashboard URL) with a capture token, instead of --db",
    )
    rows.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"with --server: the file holding the capture token (default: the {TOKEN_VARIABLE} variable)",
    )
    rows.add_argument(
        "--spool",
        type=Path,
        default=DEFAULT_SPOOL,
        metavar="FILE",
        help="with --server: where frames wait until the server has them (default %(default)s)",
    )
    rows.add_argument(
        "--retain-days",
        type=days,
        default=None,
        metavar="N",
        help="at start, purge every session that ended more than N days ago (python -m db purge)",
    )
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default=None,
        help="the face detector (default blazeface: MediaPipe's BlazeFace, once per gallery tile)",
    )
    tuning.add_argument(
        "--ocr-lang",
        default=None,
        metavar="LANGS",
        help="Tesseract languages of the name labels, joined by + (default eng; e.g. eng+kor)",
    )
    tuning.add_argument("--model", default=str(DEFAULT_MODEL), metavar="FILE", help="emotion model (.tflite)")
    tuning.add_argument(
        "--attention-only",
        action="store_true",
        default=None,
        help="no emotion inference at all (the model is not loaded): presence, head pose and eyes only",
    )
    config.add_options(tuning)
    return parser


def class_argument(value: str) -> str:
    try:
        return class_name(text(value))
    except WireError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("class ")) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fps is not None and args.fps <= 0:
        parser.error("--fps must be positive")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be at least 1")
    if args.server is not None and (args.db != DEFAULT_URL or args.teacher or args.retain_days is not None):
        parser.error("--server writes no database: no --db, --teacher (the token names it) or --retain-days with it")
    if args.server is None and args.token_file is not None:
        parser.error("--token-file goes with --server")
    if args.window is not None and not args.window.strip():
        parser.error("--window needs words of a window's title")
    if args.window is not None:
        args.source = f"window:{args.window}"
    args.session = args.session or datetime.now().strftime("class-%Y-%m-%d-%H%M")
    return args


def settings(args: argparse.Namespace) -> tuple[ClassPulseConfig, dict[str, object]]:
    """The configuration in force (--config with the options given here) and those options by key."""
    changes: dict[str, object] = {key: getattr(args, name) for name, key in OVERRIDES.items()}
    changes = {key: value for key, value in changes.items() if value is not None}
    if args.attention_only:
        changes["capture.attention_only"] = True
    in_force = config.choose(args.config, changes)
    if in_force.capture.detector not in DETECTORS:
        where = "command line" if "capture.detector" in changes else f"config {args.config or config.DEFAULT_FILE}"
        known = ", ".join(sorted(DETECTORS))
        raise ConfigError(f"{where}: capture.detector: unknown {in_force.capture.detector!r}; known: {known}")
    return in_force, changes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        in_force, changes = settings(args)
    except ConfigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.to_toml(in_force, config.origin(args.config, changes)), end="")
        return 0
    tuned = in_force.capture
    try:
        token = read_token(args.token_file) if args.server is not None else ""
        with open_source(args.source, fps=tuned.fps, follow_seconds=tuned.window_follow_seconds) as source:
            # Attention-only: emotion recognition in education is restricted in some jurisdictions
            # (EU AI Act Art. 5(1)(f)), so the model is not even loaded.
            classifier = None if tuned.attention_only else EmotionClassifier(args.model, threads=tuned.threads)
            detector = make_detector(tuned.detector, num_threads=tuned.threads, **tuned.detect.model_dump())
            pipeline = FramePipeline(detector, classifier, settings=tuned)
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
                    ServerRecorder.open(
                        args.server,
                        token,
                        args.session,
                        source.description,
                        args.spool,
                        tuned.server_drain_seconds,
                        tuned.server_timeout_seconds,
                        args.class_of,
                    )
                    if engine is None
                    else SessionRecorder.open(engine, args.session, source.description, args.teacher, args.class_of)
                ) as recorder,
            ):
                # After the session's lease is taken: the purge then skips it, as it skips every session
                # another capture is writing.
                if engine is not None and args.retain_days is not None:
                    purged = purge_older_than(engine, args.retain_days)
                    print(f"purged {len(purged)} session(s) older than {args.retain_days:g} day(s)", file=sys.stderr)
                total = (
                    source.total_frames
                    if args.max_frames is None
                    else min(source.total_frames or args.max_frames, args.max_frames)
                )
                feedback = make_feedback(source.is_live, total, args.session, tuned.status_seconds)
                summary = run_capture(
                    source,
                    pipeline,
                    recorder,
                    stop,
                    args.max_frames,
                    tuned.drain_seconds,
                    feedback,
                    tuned.buffer_frames,
                )
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
        from analytics.report import score_session  # pandas and the analysis: only when a session ends

        score_session(engine, find_session(engine, session_name), config.chosen().engagement)
    except (DatabaseError, ConfigError) as error:
        print(f"warning: the session's average engagement was not stored: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
