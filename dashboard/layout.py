"""The pages as Dash component trees: the app shell, live class, sessions list, session report and messages.

Functions here only arrange what they are given; reading the database is the callbacks' job. Every element
a callback or a browser test needs carries an id from dashboard.ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from analytics.flags import Flag
from analytics.timeline import NOW_SECONDS
from dashboard import ids
from dashboard.figures import SPARKLINE_HEIGHT_PX, sparkline
from dashboard.formatting import duration, local_time, percent
from dashboard.live import DEFAULT_WINDOW_SECONDS, flag_id
from dashboard.theme import (
    ABSENT_COLOR,
    EMOTION_COLORS,
    EMOTION_TEXT_COLORS,
    engagement_color,
    engagement_text_color,
)
from db.queries import SessionInfo
from db.students import MAX_NAME_LENGTH
from vocabulary.emotions import EMOTIONS

REFRESH_MS = 2000
WINDOW_CHOICES = {"Last 15 min": str(DEFAULT_WINDOW_SECONDS), "Last hour": "3600", "Whole session": "all"}
STATIC_GRAPH = {"displayModeBar": False, "staticPlot": True}
# A flag raised this recently, and not acknowledged, stands out in the list.
NEW_FLAG_SECONDS = 60
# The "Now" panel's trend compares the class score with this long ago; a smaller change reads as steady.
TREND_SECONDS = 60
TREND_STEADY = 0.02
TIMELINE_GRAPH = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
PRINT_FIT = "print-fit"  # a chart that assets/print.js redraws at the printed page's width


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
                    # A real form post (not a Dash callback): the server clears the session cookie. Its CSRF
                    # token is filled in as it is sent (assets/sign_out.js).
                    html.Form(
                        [
                            dcc.Input(type="hidden", name="csrf_token", value=""),
                            html.Button("Sign out", id=ids.SIGN_OUT),
                        ],
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
                            html.P(id=ids.LIVE_ENGAGEMENT_NOW, className="engagement-now"),
                            dcc.Graph(id=ids.LIVE_NOW_CHART, config=STATIC_GRAPH),
                        ],
                        id=ids.LIVE_NOW,
                        className="card",
                    ),
                    html.Section(
                        [html.H2("Flags"), html.Ul(id=ids.FLAG_LIST, className="flag-list")],
                        id=ids.FLAGS_CARD,
                        className="card",
                    ),
                ],
                className="row",
            ),
            html.Section(
                [html.H2("Students"), html.Div(id=ids.STUDENT_GRID, className="student-grid")], className="card"
            ),
        ]
    )


def engagement_now(score: float | None, change: float | None) -> str:
    """The "Now" panel's line: the class score and how it moved since TREND_SECONDS ago."""
    if score is None:
        return "Class engagement: not measured yet."
    if change is None:
        return f"Class engagement {score:.2f}"
    arrow = "↑" if change > TREND_STEADY else "↓" if change < -TREND_STEADY else "→"
    return f"Class engagement {score:.2f} {arrow} {change:+.2f} in the last {TREND_SECONDS // 60} min"


def flag_list(flags: list[Flag], acknowledged: set[str], now: datetime) -> list[html.Li]:
    """One line per flag on now: who, what, since when, and an Acknowledge button. A flag raised in the last
    NEW_FLAG_SECONDS and not acknowledged stands out."""
    if not flags:
        return [html.Li("No flags: nobody needs attention right now.", className="absent")]
    return [_flag_item(flag, acknowledged, now) for flag in flags]


def _flag_item(flag: Flag, acknowledged_ids: set[str], now: datetime) -> html.Li:
    key = flag_id(flag.student, flag.rule, flag.start)
    acknowledged = key in acknowledged_ids
    new = not acknowledged and (pd.Timestamp(now) - flag.raised).total_seconds() <= NEW_FLAG_SECONDS
    action = (
        html.Span("acknowledged", className="absent")
        if acknowledged
        else html.Button("Acknowledge", id={"type": ids.FLAG_ACK, "index": key}, className="acknowledge")
    )
    return html.Li(
        [
            html.Strong(flag.name or flag.student, title=flag.student),
            html.Span(f" {flag.rule.replace('_', ' ')}", className="flag-rule"),
            html.Span(f" since {local_time(flag.start)}: {flag.reason}", className="flag-reason"),
            action,
        ],
        className="flag" + (" new" if new else "") + (" acknowledged" if acknowledged else ""),
        **{"data-student": flag.student, "data-rule": flag.rule},
    )


def student_cards(
    students: pd.DataFrame,
    sparklines: dict[str, pd.Series],
    start: datetime,
    end: datetime,
    scores: dict[str, float],
    flagged: set[str],
) -> list[html.Div]:
    """One card per student (analytics.timeline.student_states rows), flagged students first, each with a
    strip of their recent emotions and their engagement (`scores`, by student key)."""
    ordered = sorted(students.itertuples(index=False), key=lambda row: row.student not in flagged)
    return [
        student_card(row, sparklines.get(row.student), start, end, scores.get(row.student), row.student in flagged)
        for row in ordered
    ]


def student_card(
    student: Any, dominant: pd.Series | None, start: datetime, end: datetime, score: float | None, flagged: bool
) -> html.Div:
    """`student`: a student_states row; `dominant`: their emotion per recent bin, None when not seen lately;
    `score`: their current engagement, None when not scored; `flagged`: a flag is on for them."""
    strip = dominant if dominant is not None else pd.Series(dtype=object, index=pd.DatetimeIndex([], tz="UTC"))
    state = (
        emotion_badge(student.emotion)
        if student.emotion
        else html.Span(f"not seen in {NOW_SECONDS} s (last {local_time(student.last_seen)})", className="absent")
    )
    engagement = (
        html.Span("engagement –", className="absent")
        if score is None
        else html.Span(
            f"engagement {score:.2f}",
            className="badge",
            style={"backgroundColor": engagement_color(score), "color": engagement_text_color(score)},
        )
    )
    return html.Div(
        [
            html.Div(student.name or student.student, className="student-name", title=student.student),
            html.Div([state, engagement], className="badges"),
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
        className="student-card" + (" flagged" if flagged else ""),
        # The card's edge carries the engagement colour, so the grid reads at a glance.
        style={"borderLeft": f"6px solid {ABSENT_COLOR if score is None else engagement_color(score)}"},
        **{
            "data-student": student.student,
            "data-emotion": student.emotion or "absent",
            "data-engagement": "" if score is None else f"{score:.2f}",
            "data-flagged": str(flagged).lower(),
        },
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
        [
            html.Th(label)
            for label in ("Started", "Session", "Source", "Duration", "Students", "Engagement", "Observations", "")
        ]
    )
    return html.Div(
        [
            html.H1("Sessions"),
            dcc.Input(
                id=ids.SESSIONS_FILTER,
                type="search",
                placeholder="Filter by session, source, teacher or date (YYYY-MM-DD)",
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


def session_rows(summaries: pd.DataFrame) -> list[html.Tr]:
    """One table row per db.queries.session_summaries row; a message row when none is left by the filter."""
    if summaries.empty:
        return [html.Tr(html.Td("No session matches the filter.", colSpan=8))]
    return [_session_row(row) for row in summaries.itertuples(index=False)]


def no_sessions_page() -> html.Div:
    return message_page(
        "No sessions yet",
        "No class has been recorded in this database yet — start `python -m capture` and this page will show it.",
    )


def report_page(
    session: SessionInfo,
    timeline: go.Figure,
    heatmap: go.Figure,
    drops: pd.DataFrame,
    students: pd.DataFrame,
    notice: str = "",
) -> html.Div:
    """The whole-session report: timeline, engagement heatmap, the largest drops (analytics.report.
    engagement_drops), the per-student table (analytics.report.student_table, as its CSV download holds it),
    the CSV downloads, a print button and the student fix-ups (`notice`: what the last fix-up did)."""
    return html.Div(
        [
            dcc.Store(id=ids.REPORT_SESSION, data=session.name),
            _session_heading(session, {"Live view": live_path(session.name), "All sessions": "/sessions"}),
            html.Button("Print / Save as PDF", id=ids.REPORT_PRINT, className="print-button"),
            html.Section(
                [
                    html.H2("Class mood over the session"),
                    dcc.Graph(id=ids.REPORT_TIMELINE, figure=timeline, config=TIMELINE_GRAPH, className=PRINT_FIT),
                ],
                className="card",
            ),
            html.Section(
                [
                    html.H2("Engagement per student"),
                    dcc.Graph(id=ids.REPORT_HEATMAP, figure=heatmap, config=TIMELINE_GRAPH, className=PRINT_FIT),
                ],
                className="card",
            ),
            html.Section(
                [html.H2("Where class engagement dropped most"), _drops_list(drops)],
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
                    # Scrolls sideways on a narrow screen rather than spilling out of its card.
                    html.Div(_students_table(students), className="table-scroll"),
                ],
                className="card",
            ),
            student_fixes(students, notice),
        ]
    )


def student_fixes(students: pd.DataFrame, notice: str) -> html.Section:
    """Rename a student, or merge two students who are one person (db.students does both; a merge only once
    the session has ended). `students`: analytics.report.student_table rows; `notice`: the message line."""
    options = [{"label": _student_label(row), "value": row.student} for row in students.itertuples(index=False)]
    return html.Section(
        [
            html.H2("Fix student names"),
            html.Div(
                [
                    dcc.Dropdown(id=ids.RENAME_STUDENT, options=options, placeholder="Student", className="choice"),
                    dcc.Input(
                        id=ids.RENAME_NAME,
                        # Set, not left out: a redrawn page would otherwise keep showing the last name typed.
                        value="",
                        type="text",
                        placeholder="New name",
                        maxLength=MAX_NAME_LENGTH,
                    ),
                    html.Button("Rename", id=ids.RENAME_BUTTON),
                ],
                className="fix-row",
            ),
            html.Div(
                [
                    dcc.Dropdown(id=ids.MERGE_KEEP, options=options, placeholder="Keep", className="choice"),
                    dcc.Dropdown(
                        id=ids.MERGE_DROP, options=options, placeholder="Drop (its rows go to Keep)", className="choice"
                    ),
                    html.Button("Merge", id=ids.MERGE_BUTTON),
                ],
                className="fix-row",
            ),
            html.P(notice, id=ids.FIX_MESSAGE, role="status"),
        ],
        id=ids.STUDENT_FIXES,
        className="card no-print",
    )


def _student_label(student: Any) -> str:
    """'Name (tile-3)', or the key of a student without a name."""
    return f"{student.name} ({student.student})" if isinstance(student.name, str) else student.student


def _drops_list(drops: pd.DataFrame) -> html.Ol | html.P:
    if drops.empty:
        return html.P("Class engagement never dropped.", id=ids.REPORT_DROPS, className="absent")
    return html.Ol(
        [
            html.Li(
                f"{local_time(drop.start)} → {local_time(drop.end)}: {drop.before:.2f} → {drop.after:.2f} "
                f"(−{drop.drop:.2f})"
            )
            for drop in drops.itertuples(index=False)
        ],
        id=ids.REPORT_DROPS,
    )


def _students_table(students: pd.DataFrame) -> html.Table:
    header = [
        "Student",
        "Name",
        "First seen",
        "Last seen",
        "Time present",
        "Camera off",
        "Attentive",
        "Engagement",
        "Mostly",
        *EMOTIONS,
        "Flags",
    ]
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(label) for label in header])),
            html.Tbody([_student_row(row) for row in students.itertuples(index=False)]),
        ],
        id=ids.REPORT_STUDENTS,
        className="table",
    )


def _student_row(student: Any) -> html.Tr:
    """`student`: an analytics.report.student_table row; times and shares a student lacks stay empty."""
    shares = [html.Td(_share(getattr(student, f"share_{emotion}")), className="number") for emotion in EMOTIONS]
    return html.Tr(
        [
            html.Td(student.student),
            html.Td(student.name or ""),
            html.Td("" if pd.isna(student.first_seen) else local_time(student.first_seen)),
            html.Td("" if pd.isna(student.last_seen) else local_time(student.last_seen)),
            html.Td(duration(timedelta(seconds=student.seconds_present)), className="number"),
            html.Td(duration(timedelta(seconds=student.seconds_camera_off)), className="number"),
            # Of the time present.
            html.Td(_share(student.attentive_share), className="number"),
            html.Td(f"{student.engagement:.2f}", className="number"),
            html.Td(emotion_badge(student.dominant) if student.dominant else ""),
            *shares,
            html.Td(student.flags, className="number", title=student.flag_reasons),
        ],
        **{"data-student": student.student},
    )


def _share(value: float) -> str:
    return "" if pd.isna(value) else percent(value)


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


def _average_engagement(session: Any) -> html.Td:
    """The stored average (db.schema.SessionRecord.mean_engagement): kept when a session ends and when its
    report is computed, so it is missing only for a session still running or changed since."""
    if pd.isna(session.mean_engagement):
        waiting = "while the session runs" if pd.isna(session.ended_at) else "until its report is opened"
        return html.Td("—", className="number absent", title=f"not computed {waiting}")
    score = float(session.mean_engagement)
    colours = {"backgroundColor": engagement_color(score), "color": engagement_text_color(score)}
    return html.Td(f"{score:.2f}", className="number", style=colours)


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
            html.Td(session.students, className="number"),
            _average_engagement(session),
            html.Td(session.observations, className="number"),
            html.Td(dcc.Link("report", href=report_path(session.name))),
        ]
    )
