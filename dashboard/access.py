"""Who sees which session: an admin sees every session, a teacher only the sessions they own."""

from __future__ import annotations

import pandas as pd
from flask import g
from sqlalchemy import Engine

from db.queries import SessionInfo, UnknownSessionError, find_session, list_sessions
from db.users import Role, User


def current_user() -> User:
    """The signed-in user of the request being served (dashboard.auth's guard has set it)."""
    return g.user


def can_see(user: User, session: SessionInfo) -> bool:
    return user.role is Role.ADMIN or session.teacher == user.name


def visible_session(engine: Engine, user: User, name: str) -> SessionInfo:
    """The session called `name` if `user` may see it. A teacher asking for another teacher's session gets
    the same answer as for a session that does not exist, and no list of other sessions' names."""
    try:
        session = find_session(engine, name)
    except UnknownSessionError:
        if user.role is Role.ADMIN:
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
    return summaries if user.role is Role.ADMIN else summaries[summaries["teacher"] == user.name]
