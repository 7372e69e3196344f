"""`python -m dashboard [--db URL] [--host 127.0.0.1] [--port 8050]`: serve the read-only dashboard."""

from __future__ import annotations

import argparse
import socket
import sys

from dashboard.app import create_app, open_database
from db.engine import DEFAULT_URL
from db.errors import DatabaseError

PROG = "python -m dashboard"


class ServeError(Exception):
    """The web server cannot start (address in use, unknown host)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on (default %(default)s)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        engine = open_database(args.db)
        check_can_listen(args.host, args.port)
    except (DatabaseError, ServeError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    create_app(engine).run(host=args.host, port=args.port, debug=False)
    return 0


def check_can_listen(host: str, port: int) -> None:
    """Fail with one line before the server starts: its own failure is a multi-line exit 1."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            probe.bind((host, port))
    except OSError as error:
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


if __name__ == "__main__":
    sys.exit(main())
