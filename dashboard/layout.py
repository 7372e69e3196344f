"""The pages as Dash component trees: the app shell, live class, sessions list, session report and messages.

Functions here only arrange what they are given; reading the database is the callbacks' job. Every element
a callback or a browser test needs carries an id from dashboard.ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from analytics.timeline import NOW_SECONDS
from dashboard import ids
from dashboard.figures import SPARKLINE_HEIGHT_PX, sparkline
from dashboard.formatting import duration, local_time, percent
from dashboard.live import DEFAULT_WINDOW_SECONDS
from dashboard.theme import EMOTION_COLORS, EMOTION_TEXT_COLORS
from db.queries import SessionInfo
from model.emotions import EMOTIONS

REFRESH_MS = 2000
WINDOW_CHOICES = {"Last 15 min": str(DEFAULT_WINDOW_SECONDS), "Last hour": "3600", "Whole session": "all"}
STATIC_GRAPH = {"displayModeBar": False, "staticPlot": True}
TIMELINE_GRAPH = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def live_path(session_name: str) -> str:
    return f"/live/{quote(session_name, safe='')}"


def report_path(session_name: str) -> str:
    return f"/report/{quote(session_name, safe='')}"


def app_shell() -> html.Div:
    """The frame around every page: the URL, a navigation bar and the page slot."""
    return html.Div(
        [
            dcc.Location(id=ids.URL),
            html.Header(
                [
                    dcc.Link("ClassPulse", href="/", className="brand"),
                    html.Nav([dcc.Link("Live class", href="/"), dcc.Link("Sessions", href="/sessions")]),
                    # A real form post (not a Dash callback): the server clears the session cookie.
                    html.Form(
                        html.Button("Sign out", id=ids.SIGN_OUT, type="submit"),
                        action="/logout",
                        method="POST",
                        className="sign-out",
                    ),
                ],
                className="topbar",
            ),
            html.Main(id=ids.PAGE, className="page"),
        ]
    )


def message_page(title: str, text: str, links: dict[str, str] | None = None) -> html.Div:
    """A page that explains why there is nothing to show and where to go instead."""
    shown_links = [dcc.Link(label, href=href) for label, href in (links or {}).items()]
    return html.Div(
        [html.H1(title), html.P(text, id=ids.MESSAGE), html.P(shown_links, className="links")], className="message"
    )


def live_page(session: SessionInfo) -> html.Div:
    """The live class page; the refresh callback fills the charts, the panel and the grid."""
    return html.Div(
        [
            dcc.Store(id=ids.LIVE_SESSION, data={"id": session.id, "name": session.name}),
            dcc.Store(id=ids.LIVE_STATE),
            dcc.Interval(id=ids.LIVE_INTERVAL, interval=REFRESH_MS),
            _session_heading(session, {"Session report": report_path(session.name), "All sessions": "/sessions"}),
            html.Div(id=ids.LIVE_BANNER, className="banner", hidden=True),
            html.Section(
                [
                    html.Div(
                        [
                            html.H2("Class mood"),
                            dcc.RadioItems(
                                id=ids.LIVE_WINDOW,
                                options=[{"label": k, "value": v} for k, v in WINDOW_CHOICES.items()],
                                value=str(DEFAULT_WINDOW_SECONDS),
                                inline=True,
                                className="window-choice",
                            ),
                        ],
                        className="section-heading",
                    ),
                    dcc.Graph(id=ids.LIVE_TIMELINE, config=TIMELINE_GRAPH),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.Section(
                        [
                            html.H2(f"Now (last {NOW_SECONDS} s)"),
                            html.P(id=ids.LIVE_STUDENT_COUNT),
                            dcc.Graph(id=ids.LIVE_NOW_CHART, config=STATIC_GRAPH),
                        ],
                        id=ids.LIVE_NOW,
                        className="card",
                    ),
                    engagement_card(),
                ],
                className="row",
            ),
            html.Section(
                [html.H2("Students"), html.Div(id=ids.STUDENT_GRID, className="student-grid")], className="card"
            ),
        ]
    )


def engagement_card() -> html.Section:
    """Where engagement scores and flags will go; says plainly that none are measured yet."""
    return html.Section(
        [
            html.H2("Engagement"),
            html.P("Engagement is not measured yet. This card will show engagement scores and flags once they are."),
        ],
        id=ids.ENGAGEMENT_CARD,
        className="card placeholder",
    )


def student_cards(
    students: pd.DataFrame, sparklines: dict[str, pd.Series], start: datetime, end: datetime
) -> list[html.Div]:
    """One card per student (analytics.timeline.student_states row) with a strip of their recent emotions."""
    return [student_card(row, sparklines.get(row.student), start, end) for row in students.itertuples(index=False)]


def student_card(student: Any, dominant: pd.Series | None, start: datetime, end: datetime) -> html.Div:
    """`student`: a student_states row; `dominant`: their emotion per recent bin, None when not seen lately."""
    strip = dominant if dominant is not None else pd.Series(dtype=object, index=pd.DatetimeIndex([], tz="UTC"))
    state = (
        emotion_badge(student.emotion)
        if student.emotion
        else html.Span(f"not seen in {NOW_SECONDS} s (last {local_time(student.last_seen)})", className="absent")
    )
    return html.Div(
        [
            html.Div(student.name or student.student, className="student-name", title=student.student),
            state,
            # A fixed height: a responsive graph drops the figure's own height and grew on every tick.
            # Responsive all the same, so a card added by a refresh gets its width.
            dcc.Graph(
                figure=sparkline(strip, start, end),
                config=STATIC_GRAPH,
                responsive=True,
                style={"height": f"{SPARKLINE_HEIGHT_PX}px"},
                className="sparkline",
            ),
        ],
        id=ids.student_card(student.student),
        className="student-card",
        **{"data-student": student.student, "data-emotion": student.emotion or "absent"},
    )


def emotion_badge(emotion: str) -> html.Span:
    return html.Span(
        emotion,
        className="badge",
        style={"backgroundColor": EMOTION_COLORS[emotion], "color": EMOTION_TEXT_COLORS[emotion]},
    )


def sessions_page(summaries: pd.DataFrame) -> html.Div:
    """Every session, newest first (db.queries.session_summaries), with links to its live page and report."""
    if summaries.empty:
        return no_sessions_page()
    header = html.Tr(
        [html.Th(label) for label in ("Started", "Session", "Source", "Duration", "Students", "Observations", "")]
    )
    rows = [_session_row(row) for row in summaries.itertuples(index=False)]
    return html.Div(
        [
            html.H1("Sessions"),
            html.Table([html.Thead(header), html.Tbody(rows)], id=ids.SESSIONS_TABLE, className="table"),
        ]
    )


def no_sessions_page() -> html.Div:
    return message_page(
        "No sessions yet",
        "No class has been recorded in this database yet — start `python -m capture` and this page will show it.",
    )


def report_page(session: SessionInfo, timeline: go.Figure, summary: pd.DataFrame) -> html.Div:
    """The whole-session report: timeline, the per-student table and the CSV downloads."""
    return html.Div(
        [
            dcc.Store(id=ids.REPORT_SESSION, data=session.name),
            _session_heading(session, {"Live view": live_path(session.name), "All sessions": "/sessions"}),
            html.Section(
                [
                    html.H2("Class mood over the session"),
                    dcc.Graph(id=ids.REPORT_TIMELINE, figure=timeline, config=TIMELINE_GRAPH),
                ],
                className="card",
            ),
            html.Section(
                [
                    html.Div(
                        [
                            html.H2("Students"),
                            html.Button("Download students (CSV)", id=ids.DOWNLOAD_STUDENTS_BUTTON),
                            html.Button("Download all rows (CSV)", id=ids.DOWNLOAD_ROWS_BUTTON),
                            dcc.Download(id=ids.DOWNLOAD_STUDENTS),
                            dcc.Download(id=ids.DOWNLOAD_ROWS),
                        ],
                        className="section-heading",
                    ),
                    _students_table(summary),
                ],
                className="card",
            ),
        ]
    )


def _students_table(summary: pd.DataFrame) -> html.Table:
    header = ["Student", "Name", "First seen", "Last seen", "Frames seen", "Present", "Mostly", *EMOTIONS]
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(label) for label in header])),
            html.Tbody([_student_row(row) for row in summary.itertuples(index=False)]),
        ],
        id=ids.REPORT_STUDENTS,
        className="table",
    )


def _student_row(student: Any) -> html.Tr:
    """`student`: an analytics.timeline.student_summary row."""
    shares = [html.Td(percent(getattr(student, emotion)), className="number") for emotion in EMOTIONS]
    return html.Tr(
        [
            html.Td(student.student),
            html.Td(student.name or ""),
            html.Td(local_time(student.first_seen)),
            html.Td(local_time(student.last_seen)),
            html.Td(student.frames, className="number"),
            html.Td(percent(student.present), className="number"),
            html.Td(emotion_badge(student.dominant)),
            *shares,
        ],
        **{"data-student": student.student},
    )


def _session_heading(session: SessionInfo, links: dict[str, str]) -> html.Div:
    return html.Div(
        [
            html.H1(session.name),
            html.P(
                f"{session.source} · started {local_time(session.started_at, with_date=True)}", className="subtitle"
            ),
            html.P([dcc.Link(label, href=href) for label, href in links.items()], className="links"),
        ],
        className="session-heading",
    )


def _session_row(session: Any) -> html.Tr:
    """`session`: a session_summaries row. Its duration runs from the first frame to the last."""
    recorded = (
        "no frames" if pd.isna(session.first_frame_at) else duration(session.last_frame_at - session.first_frame_at)
    )
    return html.Tr(
        [
            html.Td(local_time(session.started_at, with_date=True)),
            html.Td(dcc.Link(session.name, href=live_path(session.name))),
            html.Td(session.source),
            html.Td(recorded + ("" if not pd.isna(session.ended_at) else " (no end recorded)")),
            html.Td(session.students),
            html.Td(session.observations),
            html.Td(dcc.Link("report", href=report_path(session.name))),
        ]
    )
