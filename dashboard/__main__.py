"""`python -m dashboard [--db URL] [--host 127.0.0.1] [--port 8050] [--config PATH]`: serve the dashboard
(sign-in required). The host, port and TLS proxy come from the configuration's [dashboard] table unless given.

`python -m dashboard users add|list|remove|passwd|role ...` manages who may sign in (dashboard.users_cli).
The server is waitress (a production WSGI server, not Flask's development one); Ctrl-C or SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import ipaddress
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import Engine
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

import config
from config import ConfigError, DashboardConfig
from dashboard import tokens_cli, users_cli
from dashboard.auth import load_secret_key
from db.engine import DATA_DIR, DEFAULT_URL
from db.errors import DatabaseError
from db.partitions import keep_ahead
from db.users import list_users

PROG = "python -m dashboard"
# How often the server checks that the coming days have their partitions (db.partitions).
PARTITION_CHECK_S = 24 * 3600.0


class ServeError(Exception):
    """The web server cannot start (address in use, unknown host)."""


# The options that override a configuration value, by the value's dotted key.
OVERRIDES = {"host": "dashboard.host", "port": "dashboard.port", "behind_tls_proxy": "dashboard.behind_tls_proxy"}


def build_parser() -> argparse.ArgumentParser:
    defaults = DashboardConfig()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the dashboard (sign-in required).",
        epilog=f"{PROG} users ... and {PROG} tokens ... manage who signs in and capture tokens (their own --help).",
    )
    parser.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    parser.add_argument("--host", default=None, help=f"address to listen on (default {defaults.host})")
    parser.add_argument("--port", type=int, default=None, help=f"port to listen on (default {defaults.port})")
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIR, help="where the cookie-signing key is kept (default %(default)s)"
    )
    parser.add_argument(
        "--behind-tls-proxy",
        action="store_true",
        default=None,
        help="browsers reach the dashboard over HTTPS through a proxy: cookies get Secure, requests must be https",
    )
    config.add_options(parser)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["users"]:
        return users_cli.main(argv[1:])
    if argv[:1] == ["tokens"]:
        return tokens_cli.main(argv[1:])
    # Imported only to serve: Dash takes seconds to import, and the users commands do not need it.
    from analytics.live import engagement_config
    from dashboard.app import create_app, open_database

    args = parse_args(argv)
    changes = {key: getattr(args, name) for name, key in OVERRIDES.items() if getattr(args, name) is not None}
    try:
        # Before anything reads it: the pages read the engagement settings of the configuration chosen here.
        served = config.choose(args.config, changes).dashboard
    except ConfigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.to_toml(config.chosen(), config.origin(args.config, changes)), end="")
        return 0
    try:
        engine = open_database(args.db)
        secret_key = load_secret_key(args.data_dir)
        has_users = bool(list_users(engine))
        engagement_config()  # read once here, as every refresh then reuses it
        app = create_app(engine, secret_key, served)
        # Everything built so far (modules, layouts, callbacks) lives as long as the process: frozen, the
        # collector's full passes stop walking it, which paused refreshes ~70 ms every 6-20 of them.
        gc.freeze()
        server = listen(app.server, served.host, served.port)
    except (DatabaseError, ServeError, ConfigError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot keep the secret key in {args.data_dir}: {error.strerror}", file=sys.stderr)
        return 2
    if not has_users:
        print(
            f"{PROG}: warning: nobody can sign in yet; add someone: {PROG} users add NAME --role admin", file=sys.stderr
        )
    if not is_loopback(served.host) and not served.behind_tls_proxy:
        print(
            f"{PROG}: warning: listening on {served.host}, reachable from other machines; put a TLS proxy in front, "
            "or passwords and session cookies cross the network in clear text",
            file=sys.stderr,
        )
    print(f"{PROG}: serving on http://{served.host}:{served.port} (Ctrl-C stops)", file=sys.stderr)
    threading.Thread(
        target=keep_partitions_ahead,
        args=(engine, config.chosen().database.partition_days_ahead),
        name="partitions",
        daemon=True,
    ).start()
    serve_until_stopped(server)
    return 0


def keep_partitions_ahead(engine: Engine, days_ahead: int) -> None:
    """Create the database's day partitions ahead of today once a day while the server runs (PostgreSQL; a
    no-op on SQLite), so rows never pile up in the default partition of a server that runs for weeks."""
    while True:
        try:
            keep_ahead(engine, days_ahead)
        except DatabaseError as error:
            print(f"{PROG}: warning: {error}", file=sys.stderr)
        time.sleep(PARTITION_CHECK_S)


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (a name is resolved: it may point anywhere)."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def listen(app: Flask, host: str, port: int) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server bound to host:port (every address a name resolves to), not yet serving."""
    try:
        settings = config.chosen().server
        # poll(), where the system has it (not Windows), rather than select(): select() cannot watch a file
        # descriptor numbered 1024 or more, and a school's connections (settings.connections) go past that.
        return create_server(
            app,
            host=host,
            port=port,
            threads=settings.threads,
            connection_limit=settings.connections,
            asyncore_use_poll=hasattr(select, "poll"),
        )
    except (OSError, ValueError) as error:  # ValueError: waitress cannot resolve the host
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None


def serve_until_stopped(server: BaseWSGIServer | MultiSocketServer) -> None:
    """Serve until Ctrl-C or SIGTERM; requests being answered get up to waitress's 5 s to finish."""
    # Waitress's loop stops cleanly on KeyboardInterrupt only: SIGTERM raises it too, and so does SIGINT even
    # when the server was started in the background by a shell without job control, which starts it ignoring
    # SIGINT (Python then keeps ignoring it and Ctrl-C / kill -INT would never stop the server).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):  # a second signal while waitress waits for those requests
        server.run()


if __name__ == "__main__":
    sys.exit(main())
