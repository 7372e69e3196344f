"""Who sees what: an admin sees every session and the admin pages (school view, users and tokens), a teacher
only the sessions they own."""

from __future__ import annotations

import pandas as pd
from dash.exceptions import PreventUpdate
from flask import g
from sqlalchemy import Engine

from db.queries import SessionInfo, UnknownSessionError, find_session, list_sessions
from db.users import Role, User


def current_user() -> User:
    """The signed-in user of the request being served (dashboard.auth's guard has set it)."""
    user: User = g.user  # flask.g's attributes are untyped; the guard stores a User here and nothing else
    return user


def can_see(user: User, session: SessionInfo) -> bool:
    return is_admin(user) or session.teacher == user.name


def visible_session(engine: Engine, user: User, name: str) -> SessionInfo:
    """The session called `name` if `user` may see it. A teacher asking for another teacher's session gets
    the same answer as for a session that does not exist, and no list of other sessions' names."""
    try:
        session = find_session(engine, name)
    except UnknownSessionError:
        if is_admin(user):
            raise
        session = None
    if session is None or not can_see(user, session):
        raise UnknownSessionError(f"you have no session named {name!r}")
    return session


def visible_sessions(engine: Engine, user: User) -> list[SessionInfo]:
    """The sessions `user` may see, newest first."""
    return [session for session in list_sessions(engine) if can_see(user, session)]


def visible_summaries(summaries: pd.DataFrame, user: User) -> pd.DataFrame:
    """The rows of db.queries.session_summaries that `user` may see."""
    return summaries if is_admin(user) else summaries[summaries["teacher"] == user.name]


def is_admin(user: User) -> bool:
    return user.role is Role.ADMIN


def admin_only() -> User:
    """The signed-in user if they are an admin; for anyone else a callback of an admin page updates nothing
    (PreventUpdate), as a callback naming another teacher's session does."""
    user = current_user()
    if not is_admin(user):
        raise PreventUpdate
    return user
