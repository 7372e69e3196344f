"""The sessions page: every session the user may see, newest first, with its teacher and class, and a filter by
words."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Dash, Input, Output, dcc, html
from sqlalchemy import Engine

from dashboard import ids
from dashboard.access import current_user, is_admin, visible_summaries
from dashboard.components import live_path, message_page, no_sessions_page, report_path
from dashboard.formatting import duration, local_time, zone_label
from dashboard.pages.classes import class_path
from dashboard.theme import engagement_color, engagement_text_color
from db.queries import session_summaries

COLUMNS = 10  # of the table, for the row that says no session matches


def register(app: Dash, engine: Engine) -> None:
    app.callback(Output(ids.SESSIONS_ROWS, "children"), Input(ids.SESSIONS_FILTER, "value"), prevent_initial_call=True)(
        lambda text: session_rows(filter_sessions(visible_summaries(session_summaries(engine), current_user()), text))
    )


def layout(summaries: pd.DataFrame) -> html.Div:
    """Every session, newest first (db.queries.session_summaries), with links to its live page and report."""
    if summaries.empty:
        return no_sessions_page() if is_admin(current_user()) else no_own_sessions_page()
    header = html.Tr(
        [
            html.Th(label)
            for label in (
                "Started",
                "Session",
                "Teacher",
                "Class",
                "Source",
                "Duration",
                "Students",
                "Engagement",
                "Observations",
                "",
            )
        ]
    )
    return html.Div(
        [
            html.H1("Sessions"),
            html.P(f"Times in {zone_label()}.", id=ids.TIME_ZONE, className="subtitle"),
            dcc.Input(
                id=ids.SESSIONS_FILTER,
                type="search",
                placeholder="Filter by session, class, source, teacher or date (YYYY-MM-DD)",
                debounce=True,
                className="filter",
            ),
            html.Table(
                [html.Thead(header), html.Tbody(session_rows(summaries), id=ids.SESSIONS_ROWS)],
                id=ids.SESSIONS_TABLE,
                className="table",
            ),
        ]
    )


def no_own_sessions_page() -> html.Div:
    """A teacher sees only their own sessions: with none, that is what they are told, not that the database is
    empty (other teachers' sessions may fill it)."""
    return message_page(
        "No sessions of yours yet",
        "You have no sessions of your own yet: start one from “Start class” on your own computer; a capture started "
        "with --teacher and your user name, or sent with a capture token issued to you, shows here too. Other "
        "teachers' sessions are not shown to you.",
    )


def session_rows(summaries: pd.DataFrame) -> list[html.Tr]:
    """One table row per db.queries.session_summaries row; a message row when none is left by the filter."""
    if summaries.empty:
        return [html.Tr(html.Td("No session matches the filter.", colSpan=COLUMNS))]
    return [_session_row(row) for row in summaries.itertuples(index=False)]


def filter_sessions(summaries: pd.DataFrame, text: str | None) -> pd.DataFrame:
    """The session_summaries rows whose name, class, source, teacher or local start date holds every word of `text`
    (case-insensitive, plain substrings: no pattern syntax reaches pandas or the database)."""
    words = (text or "").lower().split()
    if not words:
        return summaries
    haystack = (
        summaries["name"].fillna("")
        + " "
        + summaries["class_name"].fillna("")
        + " "
        + summaries["source"].fillna("")
        + " "
        + summaries["teacher"].fillna("")
        + " "
        + summaries["started_at"].map(lambda started: local_time(started, with_date=True))
    ).str.lower()
    keep = pd.Series(True, index=summaries.index)
    for word in words:
        keep &= haystack.str.contains(word, regex=False)
    return summaries[keep]


def _average_engagement(session: Any) -> html.Td:
    """The stored average (db.schema.SessionRecord.mean_engagement): kept when a session ends and when its
    report is computed, so it is missing only for a session still running or changed since."""
    if pd.isna(session.mean_engagement):
        waiting = "while the session runs" if pd.isna(session.ended_at) else "until its report is opened"
        return html.Td("—", className="number absent", title=f"not computed {waiting}")
    score = float(session.mean_engagement)
    colours = {"backgroundColor": engagement_color(score), "color": engagement_text_color(score)}
    return html.Td(f"{score:.2f}", className="number", style=colours)


def _teacher(teacher: str | None) -> html.Td:
    """The session's owner; a session without one is seen by admins only (its teacher was removed, or capture
    named none)."""
    if teacher is None or pd.isna(teacher):
        return html.Td("—", className="absent", title="no teacher: admins only")
    return html.Td(teacher)


def _class(session: Any) -> html.Td:
    """The class the session is a lesson of (`capture --class`), linked to its page; none when captured without
    one."""
    if session.class_name is None or pd.isna(session.class_name):
        return html.Td("—", className="absent", title="captured without --class")
    return html.Td(dcc.Link(session.class_name, href=class_path(int(session.class_id))))


def _session_row(session: Any) -> html.Tr:
    """`session`: a session_summaries row. Its duration runs from the first frame to the last."""
    recorded = (
        "no frames" if pd.isna(session.first_frame_at) else duration(session.last_frame_at - session.first_frame_at)
    )
    return html.Tr(
        [
            html.Td(local_time(session.started_at, with_date=True)),
            html.Td(dcc.Link(session.name, href=live_path(session.name))),
            _teacher(session.teacher),
            _class(session),
            html.Td(session.source),
            html.Td(recorded + ("" if not pd.isna(session.ended_at) else " (no end recorded)")),
            html.Td(session.students, className="number"),
            _average_engagement(session),
            html.Td(session.observations, className="number"),
            html.Td(dcc.Link("report", href=report_path(session.name))),
        ]
    )
