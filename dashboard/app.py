"""The Dash app factory, and opening the database the dashboard reads."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from dash import Dash
from flask import Response, request
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from config.schema import DashboardConfig
from dashboard.auth import SECRET_KEY_BYTES, install_sign_in
from dashboard.ingest import mount_ingest
from dashboard.router import app_shell, register_callbacks
from db.engine import connect
from db.migrate import current_revision, head_revision, upgrade

ASSETS = Path(__file__).resolve().with_name("assets")
CALLBACK_PATH = "/_dash-update-component"


def create_app(engine: Engine, secret_key: bytes | None = None, settings: DashboardConfig | None = None) -> Dash:
    """A Dash app that shows what `engine`'s database holds to signed-in users; it writes only the users table.

    `secret_key` signs the session cookies (`dashboard.auth.load_secret_key`); without one, a random key
    lasts as long as this process. `settings`: the configuration's [dashboard] table (whether a TLS proxy is in
    front, how long sign-ins last, how sign-in attempts are bounded); None: its defaults.
    """
    # Pages are built by the router callback, so their components are not in the first layout.
    app = Dash(__name__, title="ClassPulse", assets_folder=str(ASSETS), suppress_callback_exceptions=True)
    install_sign_in(
        app.server,
        engine,
        secret_key or secrets.token_bytes(SECRET_KEY_BYTES),
        settings if settings is not None else DashboardConfig(),
    )
    app.layout = app_shell()
    register_callbacks(app, engine)
    app.server.register_error_handler(Exception, _refuse_a_callback_that_fails)
    mount_ingest(app.server, engine)
    return app


def _refuse_a_callback_that_fails(error: Exception) -> Response | HTTPException:
    """A callback request that fails is answered 400, not 500: the page's own requests succeed (or get a
    message on the page), so one that fails carries values the page never sends (a crafted or garbled
    request: a wrong type, an unknown component or output, a missing field). It is named in one line on
    stderr. Any other failure stays a 500."""
    if isinstance(error, HTTPException):
        return error
    where = f"{request.method} {request.path}"
    print(f"dashboard: refused {where}: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr, flush=True)
    if request.path != CALLBACK_PATH:
        return Response("internal error", 500, mimetype="text/plain")
    return Response("bad callback request: its values are not ones this page sends", 400, mimetype="text/plain")


def open_database(url: str) -> Engine:
    """An engine for an existing database; a database on an older schema is migrated first (as capture
    would), so a dashboard started before the capture still reads it. Raises db.errors.DatabaseError."""
    engine = connect(url, create=False)
    if current_revision(engine) != head_revision():
        upgrade(engine)
    return engine
