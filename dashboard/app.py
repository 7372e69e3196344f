"""The Dash app factory, and opening the database the dashboard reads."""

from __future__ import annotations

import secrets
from pathlib import Path

from dash import Dash
from sqlalchemy import Engine

from dashboard.auth import SECRET_KEY_BYTES, LoginThrottle, install_sign_in
from dashboard.callbacks import register_callbacks
from dashboard.layout import app_shell
from db.engine import connect
from db.migrate import current_revision, head_revision, upgrade

ASSETS = Path(__file__).resolve().with_name("assets")


def create_app(engine: Engine, secret_key: bytes | None = None) -> Dash:
    """A Dash app that shows what `engine`'s database holds to signed-in users; it writes only the users table.

    `secret_key` signs the session cookies (`dashboard.auth.load_secret_key`); without one, a random key
    lasts as long as this process, and with it every sign-in.
    """
    # Pages are built by the router callback, so their components are not in the first layout.
    app = Dash(__name__, title="ClassPulse", assets_folder=str(ASSETS), suppress_callback_exceptions=True)
    install_sign_in(app.server, engine, secret_key or secrets.token_bytes(SECRET_KEY_BYTES), LoginThrottle())
    app.layout = app_shell()
    register_callbacks(app, engine)
    return app


def open_database(url: str) -> Engine:
    """An engine for an existing database; a database on an older schema is migrated first (as capture
    would), so a dashboard started before the capture still reads it. Raises db.errors.DatabaseError."""
    engine = connect(url, create=False)
    if current_revision(engine) != head_revision():
        upgrade(engine)
    return engine
