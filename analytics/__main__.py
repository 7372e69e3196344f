"""Command line for analytics:

python -m analytics export --db URL --session NAME --out FILE.csv
python -m analytics report --db URL --session NAME --out DIR [--config FILE.toml]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analytics.export import ExportError, export_csv
from analytics.report import write_report
from analytics.settings import DEFAULT_CONFIG, ConfigError, load_config
from db.arguments import text
from db.engine import DEFAULT_URL, connect
from db.errors import DatabaseError

PROG = "python -m analytics"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Tables and reports from recorded sessions.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export = commands.add_parser("export", help="write a session's observations as CSV, one row per face")
    export.add_argument("--db", default=DEFAULT_URL, help="database URL (default: %(default)s)")
    export.add_argument("--session", type=text, required=True, help="session name")
    export.add_argument("--out", required=True, type=Path, help="CSV file to write")
    export.set_defaults(run=_run_export)
    report = commands.add_parser("report", help="write a session's per-student, class and flag tables as CSV")
    report.add_argument("--db", default=DEFAULT_URL, help="database URL (default: %(default)s)")
    report.add_argument("--session", type=text, required=True, help="session name")
    report.add_argument("--out", required=True, type=Path, help="folder for students.csv, class.csv, flags.csv")
    report.add_argument("--config", default=DEFAULT_CONFIG, type=Path, help="engagement weights and thresholds")
    report.set_defaults(run=_run_report)
    return parser


def _run_export(args: argparse.Namespace) -> None:
    engine = connect(args.db, create=False)
    rows = export_csv(engine, args.session, args.out)
    print(f"wrote {rows} rows to {args.out}")


def _run_report(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    engine = connect(args.db, create=False)
    written = write_report(engine, args.session, args.out, config)
    print(f"wrote {written.students} students, {written.bins} time bins, {written.flags} flags to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (DatabaseError, ExportError, ConfigError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
