"""Command line for analytics:

python -m analytics export --db URL --session NAME --out FILE.csv
python -m analytics report --db URL --session NAME --out DIR [--config FILE.toml]
python -m analytics [--config FILE.toml] --print-config
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import config
from analytics.export import ExportError, export_csv
from analytics.report import write_report
from analytics.settings import ConfigError
from db.arguments import text
from db.engine import DEFAULT_URL, connect
from db.errors import DatabaseError

PROG = "python -m analytics"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Tables and reports from recorded sessions.")
    config.add_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    export = commands.add_parser("export", help="write a session's observations as CSV, one row per face")
    export.add_argument("--db", default=DEFAULT_URL, help="database URL (default: %(default)s)")
    export.add_argument("--session", type=text, required=True, help="session name")
    export.add_argument("--out", required=True, type=Path, help="CSV file to write")
    export.set_defaults(run=_run_export)
    report = commands.add_parser("report", help="write a session's per-student, class and flag tables as CSV")
    report.add_argument("--db", default=DEFAULT_URL, help="database URL (default: %(default)s)")
    report.add_argument("--session", type=text, required=True, help="session name")
    report.add_argument("--out", required=True, type=Path, help="folder for students.csv, class.csv, flags.csv")
    # Here as well as before the command, where `report --config FILE` has always been accepted.
    config.add_options(report, default=argparse.SUPPRESS)
    report.set_defaults(run=_run_report)
    return parser


def _run_export(args: argparse.Namespace) -> None:
    engine = connect(args.db, create=False)
    rows = export_csv(engine, args.session, args.out)
    print(f"wrote {rows} rows to {args.out}")


def _run_report(args: argparse.Namespace) -> None:
    engine = connect(args.db, create=False)
    written = write_report(engine, args.session, args.out, config.chosen().engagement)
    print(f"wrote {written.students} students, {written.bins} time bins, {written.flags} flags to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None and not args.print_config:
        parser.error("a command is required: export or report (or --print-config)")
    try:
        in_force = config.choose(args.config)
        if args.print_config:
            print(config.to_toml(in_force, config.origin(args.config, {})), end="")
            return 0
        args.run(args)
    except (DatabaseError, ExportError, ConfigError) as exc:
        print(f"{PROG}{'' if args.command is None else ' ' + args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
