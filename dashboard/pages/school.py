"""The school view, for admins: every class running now (analytics.school.SCHOOL_BOARD), refreshed every
[dashboard] school_refresh_seconds, and trends per teacher or class over weeks with a CSV download
(analytics/csv_file.py).

The running classes refresh as the live page does: the timer is off while a refresh runs (Dash's `running`),
so a slow server makes refreshes less frequent instead of queueing them. Every callback answers admins only
(dashboard.access.admin_only); the router shows teachers "Page not found" for the page itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html
from sqlalchemy import Engine

import config
from analytics.live import engagement_config
from analytics.school import (
    FLAG_EVERY,
    SCHOOL_BOARD,
    SILENCE,
    TREND_SECONDS,
    ClassNow,
    Grouping,
    bin_starts_ns,
    grouping_columns,
    session_trends,
    trends,
    trends_file,
)
from dashboard import row_values
from dashboard.access import admin_only
from dashboard.components import live_path, report_path
from dashboard.downloads import TextDownload, csv_download
from dashboard.formatting import duration, local_time, percent, zone_label
from dashboard.theme import engagement_color, engagement_text_color
from db.errors import DatabaseError

FILLING_MS = 1_000  # the next refresh while a class has no numbers yet
NOW_ROWS = "school-now-rows"
NOW_STATUS = "school-now-status"
INTERVAL = "school-interval"
TREND_BY = "school-trend-by"
TREND_WEEKS = "school-trend-weeks"
TREND_ROWS = "school-trend-rows"
DOWNLOAD_BUTTON = "school-download-button"
DOWNLOAD = "school-download"
WEEK_CHOICES = {"Last 4 weeks": 4, "Last 8 weeks": 8, "Last 13 weeks": 13, "Last 52 weeks": 52}
# Options typed as Dash declares them, so a misspelt key fails the type check, not silently in the browser.
WEEK_OPTIONS: list[dcc.Dropdown.Options] = [{"label": label, "value": weeks} for label, weeks in WEEK_CHOICES.items()]
GROUPING_OPTIONS: list[dcc.RadioItems.Options] = [
    {"label": "per teacher", "value": "teacher"},
    {"label": "per class", "value": "class"},
]
DEFAULT_WEEKS = 8
# The trend line's bars: one per time bin, as high as its score (0 to 1) times BAR_HEIGHT_PX.
BAR_WIDTH_PX, BAR_HEIGHT_PX = 4, 24
# Numbers from a frame this much older than the class's latest say when they are from.
LAG_SHOWN = timedelta(seconds=20)
# A change of engagement smaller than this over the trend line is "steady".
STEADY = 0.05
NOW_COLUMNS = (
    "Teacher",
    "Class",
    "Session",
    "Students",
    "Engagement now",
    "Last 5 minutes",
    "Open flags",
    "Last frame",
)
# The grouping's columns (analytics.school.grouping_columns) come after the week.
TREND_COLUMNS = ("Sessions", "Engagement", "Attendance", "Camera off")


def register(app: Dash, engine: Engine) -> None:
    app.callback(
        Output(NOW_ROWS, "children"),
        Output(NOW_STATUS, "children"),
        Output(INTERVAL, "interval"),
        Input(INTERVAL, "n_intervals"),
        running=[(Output(INTERVAL, "disabled"), True, False)],
    )(lambda _: running_now(engine))
    app.callback(Output(TREND_ROWS, "children"), Input(TREND_BY, "value"), Input(TREND_WEEKS, "value"))(
        lambda by, weeks: trend_rows(engine, by, weeks)
    )
    app.callback(
        Output(DOWNLOAD, "data"),
        Input(DOWNLOAD_BUTTON, "n_clicks"),
        State(TREND_BY, "value"),
        State(TREND_WEEKS, "value"),
        prevent_initial_call=True,
    )(lambda _, by, weeks: trends_download(engine, by, weeks))


def refresh_ms() -> int:
    """Milliseconds between refreshes of the running classes ([dashboard] school_refresh_seconds)."""
    return round(config.chosen().dashboard.school_refresh_seconds * 1000)


def layout() -> html.Div:
    return html.Div(
        [
            html.H1("School"),
            html.P(
                [
                    f"Every class running now and how classes went over the weeks. Times in {zone_label()}. ",
                    dcc.Link("Manage users and capture tokens", href="/admin"),
                ],
                className="subtitle",
            ),
            html.Div(
                [
                    html.Div(
                        [html.H2("Running now"), html.Span("Loading…", id=NOW_STATUS, className="absent")],
                        className="section-heading",
                    ),
                    html.Div(
                        html.Table(
                            [
                                html.Thead(html.Tr([html.Th(label) for label in NOW_COLUMNS])),
                                html.Tbody(_note_row("Loading…", len(NOW_COLUMNS)), id=NOW_ROWS),
                            ],
                            className="table",
                        ),
                        className="table-scroll",
                    ),
                    dcc.Interval(id=INTERVAL, interval=refresh_ms()),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Trends"),
                            dcc.RadioItems(
                                id=TREND_BY,
                                options=GROUPING_OPTIONS,
                                value="teacher",
                                inline=True,
                                className="window-choice",
                            ),
                            dcc.Dropdown(
                                id=TREND_WEEKS,
                                options=WEEK_OPTIONS,
                                value=DEFAULT_WEEKS,
                                clearable=False,
                                style={"width": "12rem"},
                            ),
                            html.Button("Download CSV", id=DOWNLOAD_BUTTON),
                            dcc.Download(id=DOWNLOAD),
                        ],
                        className="section-heading",
                    ),
                    html.P(
                        "Per week (Monday to Sunday, UTC) of the sessions started in it. Engagement: the mean of the "
                        "sessions' average class engagement, stored when a session ends (sessions without one are "
                        "counted in brackets). Attendance: students in the call, on average over the frames. "
                        "Camera off: the share of those student-frames with the camera off. A class is the one the "
                        "session was recorded for (capture --class), or else the session's name without a date at "
                        "its end; per class means per class and its teacher.",
                        className="subtitle",
                    ),
                    html.Div(html.P("Loading…", className="absent"), id=TREND_ROWS, className="table-scroll"),
                ],
                className="card",
            ),
        ]
    )


def running_now(engine: Engine) -> tuple[list[html.Tr], str, int]:
    """The running classes' rows, the line saying when they were read, and when to refresh next: soon while a
    class's flags have never been counted (a refresh does the counts its time allows: analytics.school), so an
    admin who opens the page sees every class filled in within seconds."""
    admin_only()
    try:
        classes = SCHOOL_BOARD.refresh(engine)
    except DatabaseError as error:
        return [_note_row(f"Cannot read the database: {error}", len(NOW_COLUMNS))], "", refresh_ms()
    filling = any(seen.flags_at is None for seen in classes)
    return *now_rows(classes), FILLING_MS if filling else refresh_ms()


def now_rows(classes: list[ClassNow]) -> tuple[list[html.Tr], str]:
    """analytics.school.SchoolBoard.refresh's classes as the page's rows, and the line saying when."""
    status = (
        f"{len(classes)} class(es) running (no end recorded, a frame in the last {SILENCE.seconds // 60} min) · "
        f"read at {local_time(datetime.now(UTC))}"
    )
    if not classes:
        return [_note_row("No class is running now.", len(NOW_COLUMNS))], status
    return [_class_row(seen) for seen in classes], status


def _class_row(seen: ClassNow) -> html.Tr:
    session = seen.session
    if seen.open_flags is None or seen.flags_at is None:
        flags = html.Td("counting…", className="absent")
    else:
        flags = html.Td(
            [str(seen.open_flags), _lag(seen.flags_at, session.latest_frame, FLAG_EVERY + LAG_SHOWN)],
            className="number",
            title=f"flags needing attention at {local_time(seen.flags_at)}",
        )
    students = html.Td(f"{seen.in_call} in the call, {seen.on_camera} on camera")
    score = _score_cell(seen.engagement)
    trend = html.Td([trend_bars(seen.line), " ", _change_text(seen.change)])
    return html.Tr(
        [
            html.Td(session.teacher or "(no teacher: admins only)"),
            html.Td(session.class_name) if session.class_name else html.Td("—", className="absent"),
            html.Td(
                [
                    dcc.Link(session.name, href=live_path(session.name)),
                    " · ",
                    dcc.Link("report", href=report_path(session.name)),
                ]
            ),
            students,
            score,
            trend,
            flags,
            html.Td(f"{local_time(session.latest_frame)} ({duration(datetime.now(UTC) - session.latest_frame)} ago)"),
        ]
    )


def _lag(at: datetime, latest: datetime, allowed: timedelta) -> html.Span | str:
    """A note when flags are from a frame more than `allowed` before the class's latest (a busy server counts
    the classes that waited longest first: analytics.school)."""
    if latest - at <= allowed:
        return ""
    return html.Span(f" as of {local_time(at)}", className="absent")


def trend_bars(line: pd.Series) -> html.Div:
    """The trend line as a bar per time bin at its place in the TREND_SECONDS (a bin without a score is a gap),
    its height and colour (the engagement scale) its score. One element whose CSS background draws every bar,
    a layer each: a hundred classes' bars as elements of their own cost the refresh more than all its reads."""
    bin_seconds = engagement_config().score.bin_seconds
    scores, starts_ns = line.to_numpy(float), bin_starts_ns(line)
    scored = ~np.isnan(scores)
    slots = (starts_ns[scored] - starts_ns[:1]) // (bin_seconds * 1_000_000_000)
    bars = [
        (int(slot) * (BAR_WIDTH_PX + 1), max(1, round(score * BAR_HEIGHT_PX)), engagement_color(score))
        for slot, score in zip(slots, scores[scored].tolist(), strict=True)
    ]
    return html.Div(
        title="class engagement per 10 s (bar height: 0 to 1)",
        style={
            "display": "inline-block",
            "height": f"{BAR_HEIGHT_PX}px",
            # A line holds a bin more than the TREND_SECONDS when they start mid-bin (analytics.school).
            "width": f"{(BAR_WIDTH_PX + 1) * (TREND_SECONDS // bin_seconds + 1)}px",
            "borderBottom": "1px solid #bbb",
            "verticalAlign": "middle",
            "backgroundImage": ", ".join(f"linear-gradient({colour}, {colour})" for _, _, colour in bars) or "none",
            "backgroundSize": ", ".join(f"{BAR_WIDTH_PX}px {height}px" for _, height, _ in bars) or "auto",
            "backgroundPosition": ", ".join(f"{left}px 100%" for left, _, _ in bars) or "0 0",
            "backgroundRepeat": "no-repeat",
        },
    )


def _change_text(change: float | None) -> str:
    if change is None:
        return "(too short for a trend)"
    if abs(change) < STEADY:
        return f"steady ({change:+.2f})"
    return f"{'rising' if change > 0 else 'falling'} ({change:+.2f})"


def _score_cell(score: float | None, extra: str = "") -> html.Td:
    if score is None or pd.isna(score):
        return html.Td("—" + extra, className="number absent")
    colours = {"backgroundColor": engagement_color(score), "color": engagement_text_color(score)}
    return html.Td(f"{score:.2f}{extra}", className="number", style=colours)


def trend_table(engine: Engine, by: Grouping, weeks: int, today: datetime | None = None) -> pd.DataFrame:
    """analytics.school.trends of the sessions of the last `weeks` weeks (this week included)."""
    if by not in ("teacher", "class") or not isinstance(weeks, int) or weeks not in WEEK_CHOICES.values():
        raise ValueError(f"unknown trend choice {by!r}, {weeks!r}")
    now = today or datetime.now(UTC)
    monday = pd.Timestamp(now).tz_convert("UTC").normalize() - timedelta(days=now.weekday())
    since = (monday - timedelta(weeks=weeks - 1)).to_pydatetime()
    return trends(session_trends(engine, since, now + timedelta(seconds=1)), by)


def trend_rows(engine: Engine, by: Grouping, weeks: int) -> html.Table | html.P:
    admin_only()
    try:
        table = trend_table(engine, by, weeks)
    except DatabaseError as error:
        return html.P(f"Cannot read the database: {error}", className="absent")
    if table.empty:
        return html.P("No session started in these weeks.", className="absent")
    keys = grouping_columns(by)
    header = html.Tr([html.Th(column) for column in ("Week of", *(key.capitalize() for key in keys), *TREND_COLUMNS)])
    body = [_trend_row(row) for row in TrendLine.rows(table, keys)]
    return html.Table([html.Thead(header), html.Tbody(body)], className="table")


@dataclass(frozen=True)
class TrendLine:
    """A row of analytics.school.trends, as the trends table shows it."""

    week: pd.Timestamp  # its Monday
    groups: list[str | None]  # the grouping's columns' values (analytics.school.grouping_columns)
    sessions: int
    scored: int  # sessions with a stored engagement
    engagement: float  # NaN: none scored
    attendance: float  # NaN: no frames
    camera_off: float  # likewise

    @classmethod
    def rows(cls, table: pd.DataFrame, keys: list[str]) -> list[TrendLine]:
        # The groups are read apart, as plain tuples: a row's named tuple renames "class", a Python keyword.
        groups = table[keys].itertuples(index=False, name=None)
        return [
            cls(
                row_values.moment(row.week),
                [row_values.text(value) for value in group],
                row_values.count(row.sessions),
                row_values.count(row.scored),
                row_values.number(row.engagement),
                row_values.number(row.attendance),
                row_values.number(row.camera_off),
            )
            for row, group in zip(table.itertuples(index=False), groups, strict=True)
        ]


def _trend_row(row: TrendLine) -> html.Tr:
    unscored = row.sessions - row.scored
    return html.Tr(
        [
            html.Td(row.week.strftime("%Y-%m-%d")),
            *(html.Td(group) for group in row.groups),
            html.Td(str(row.sessions), className="number"),
            _score_cell(row.engagement, f" ({unscored} unscored)" if unscored else ""),
            html.Td("—" if pd.isna(row.attendance) else f"{row.attendance:.1f}", className="number"),
            html.Td("—" if pd.isna(row.camera_off) else percent(row.camera_off), className="number"),
        ]
    )


def trends_download(engine: Engine, by: Grouping, weeks: int) -> TextDownload:
    """The trend table as a CSV file, through the one CSV writer."""
    admin_only()
    table = trends_file(trend_table(engine, by, weeks))
    return csv_download(table, f"classpulse-trends-per-{by}-{weeks}w.csv", float_format="%.4f")


def _note_row(text: str, columns: int) -> html.Tr:
    return html.Tr(html.Td(text, colSpan=columns, className="absent"))
