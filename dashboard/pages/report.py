"""The session report page: class mood, engagement per student, the largest drops and the students table,
with CSV downloads, a print button and the student fix-ups (rename, merge)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from analytics.export import export_table
from analytics.live import engagement_config
from analytics.report import CSV_FORMAT, engagement_drops, students_file
from dashboard import ids
from dashboard.checks import checked_session
from dashboard.components import (
    ELSEWHERE,
    TIMELINE_GRAPH,
    emotion_badge,
    live_path,
    message_page,
    session_heading,
)
from dashboard.figures import engagement_heatmap, mood_timeline
from dashboard.formatting import duration, local_time, percent
from dashboard.report_cache import report_tables
from db.errors import DatabaseError
from db.queries import SessionInfo, find_session, frame_count
from db.students import MAX_NAME_LENGTH, merge_students, rename_student
from vocabulary.emotions import EMOTIONS

PRINT_FIT = "print-fit"  # a chart that assets/print.js redraws at the printed page's width


def register(app: Dash, engine: Engine) -> None:
    app.callback(
        Output(ids.DOWNLOAD_STUDENTS, "data"),
        Input(ids.DOWNLOAD_STUDENTS_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: students_download(engine, checked_session(engine, {"name": name})["name"]))
    app.callback(
        Output(ids.DOWNLOAD_ROWS, "data"),
        Input(ids.DOWNLOAD_ROWS_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: rows_download(engine, checked_session(engine, {"name": name})["name"]))
    # The browser prints the page as it is; print styles (assets/style.css) and assets/print.js fit it to A4.
    app.clientside_callback(
        "function (clicks) { if (clicks) { window.print(); } }",
        Input(ids.REPORT_PRINT, "n_clicks"),
        prevent_initial_call=True,
    )
    # The router also fills the page; a fix-up redraws it so every table and chart shows the change.
    app.callback(
        Output(ids.PAGE, "children", allow_duplicate=True),
        Output(ids.FIX_MESSAGE, "children"),
        Input(ids.RENAME_BUTTON, "n_clicks"),
        Input(ids.MERGE_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        State(ids.RENAME_STUDENT, "value"),
        State(ids.RENAME_NAME, "value"),
        State(ids.MERGE_KEEP, "value"),
        State(ids.MERGE_DROP, "value"),
        prevent_initial_call=True,
    )(
        lambda renames, merges, name, student, new_name, keep, drop: fix_students(
            engine,
            checked_session(engine, {"name": name})["name"],
            _clicked(renames, merges),
            student,
            new_name,
            keep,
            drop,
        )
    )


def session_report(engine: Engine, session: SessionInfo, notice: str = "") -> html.Div:
    """The report page of `session`, or why it has nothing to show; `notice`: what the last student fix-up did.

    One read of the session's rows feeds every table and chart; an unchanged session's tables are kept
    (dashboard.report_cache).
    """
    tables = report_tables(engine, session, engagement_config())
    if tables.students["first_seen"].isna().all():
        return message_page(
            f"No faces in {session.name}",
            f"Session {session.name!r} has {frame_count(engine, session.id)} analysed frame(s) but no face was "
            "found in any of them. Check that the video call shows the gallery view and that the capture covers it.",
            ELSEWHERE,
        )
    line = None if tables.class_bins is None else tables.class_bins.set_index("bin")["score"]
    return layout(
        session,
        mood_timeline(tables.emotion_counts, engagement=line),
        engagement_heatmap(tables.student_bins),
        engagement_drops(tables.class_bins),
        tables.students,
        notice,
    )


def layout(
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
            session_heading(session, {"Live view": live_path(session.name), "All sessions": "/sessions"}),
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


def students_download(engine: Engine, session_name: str) -> dict[str, Any]:
    """The per-student table as `python -m analytics report` writes students.csv: times in ISO 8601 UTC,
    shares as fractions."""
    session = find_session(engine, session_name)
    table = students_file(report_tables(engine, session, engagement_config()).students)
    return dcc.send_data_frame(table.to_csv, f"{_file_stem(session_name)}-students.csv", **CSV_FORMAT)


def rows_download(engine: Engine, session_name: str) -> dict[str, Any]:
    """Every observation of the session, as `python -m analytics export` writes it."""
    session = find_session(engine, session_name)
    table = export_table(engine, session.id)
    return dcc.send_data_frame(table.to_csv, f"{_file_stem(session_name)}-rows.csv", index=False)


def fix_students(
    engine: Engine,
    session_name: str,
    button: str,
    student: str | None,
    new_name: str | None,
    keep: str | None,
    drop: str | None,
) -> tuple[Any, str]:
    """The rename (`button` ids.RENAME_BUTTON: `student` gets `new_name`) or merge (ids.MERGE_BUTTON: `drop`
    into `keep`) of students of the session called `session_name`, by their keys, as db.students does them.
    Returns the report page redrawn with a line saying what changed, or no update and a line saying why not
    (db.students refuses an empty name, an unknown student and a merge in a session still being captured)."""
    try:
        if button == ids.RENAME_BUTTON:
            if not student:
                return no_update, "Choose the student to rename."
            key = rename_student(engine, session_name, student, new_name or "")
            done = f"Renamed {key} to {new_name.strip()}."
        else:
            if not (keep and drop):
                return no_update, "Choose the student to keep and the one to merge into them."
            moved = merge_students(engine, session_name, keep, drop)
            done = f"Merged {drop} into {keep}: {moved} observation(s) moved."
        return session_report(engine, find_session(engine, session_name), done), done
    except DatabaseError as error:
        return no_update, f"Not changed: {error}."


def _clicked(*clicks: int | None) -> str:
    """The id of the button that fired the callback. Dash also fires it when the report page (buttons
    included) is drawn into the page slot, prevent_initial_call notwithstanding: then nothing was clicked."""
    if not any(clicks):
        raise PreventUpdate
    return callback_context.triggered_id


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


def _file_stem(session_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", session_name) or "session"
