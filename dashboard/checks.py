"""The session a page's store names, checked again on every callback: stores come from the browser."""

from __future__ import annotations

from typing import Any

from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from dashboard.access import current_user, visible_session
from db.queries import UnknownSessionError


def checked_session(engine: Engine, session: dict[str, Any]) -> dict[str, Any]:
    """`session` ({"name", and "id" when given}) as the page sent it, if the signed-in user may see that
    session; otherwise the callback updates nothing (PreventUpdate)."""
    try:
        visible = visible_session(engine, current_user(), session["name"])
    except UnknownSessionError:
        raise PreventUpdate from None
    if session.get("id", visible.id) != visible.id:
        raise PreventUpdate
    return session
