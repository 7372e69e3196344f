"""The Dash app factory, and opening the database the dashboard reads."""

from __future__ import annotations

from pathlib import Path

from dash import Dash
from sqlalchemy import Engine

from dashboard.callbacks import register_callbacks
from dashboard.layout import app_shell
from db.engine import connect
from db.migrate import current_revision, head_revision, upgrade

ASSETS = Path(__file__).resolve().with_name("assets")


def create_app(engine: Engine) -> Dash:
    """A Dash app that shows what `engine`'s database holds; it never writes to it."""
    # Pages are built by the router callback, so their components are not in the first layout.
    app = Dash(__name__, title="ClassPulse", assets_folder=str(ASSETS), suppress_callback_exceptions=True)
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
