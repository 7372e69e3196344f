"""The session report page: class mood, engagement per student (camera off and away as states of their own),
the largest drops, attendance, the students table with their flags in words, CSV downloads and a print button.

From a student's row: their own timeline (a section opened at /report/<session>?student=<key>, so it can be
linked and reloaded) and a merge of other students into them, confirmed in a sentence naming everyone and their
minutes, and undoable (db.students keeps what the undo needs). A form renames a student."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import pandas as pd
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from analytics.export import export_table
from analytics.live import engagement_config
from analytics.report import (
    CSV_FORMAT,
    SessionTables,
    attendance_file,
    engagement_drops,
    student_timeline,
    students_file,
)
from dashboard import ids
from dashboard.access import current_user
from dashboard.checks import checked_session
from dashboard.components import (
    ELSEWHERE,
    TIMELINE_GRAPH,
    emotion_badge,
    live_path,
    message_page,
    report_path,
    session_heading,
)
from dashboard.figures import mood_timeline
from dashboard.formatting import duration, local_time, percent
from dashboard.report_cache import report_tables
from dashboard.report_figures import flag_sentence, state_heatmap, state_legend, student_timeline_figure
from db.errors import DatabaseError
from db.queries import SessionInfo, find_session, frame_count, student_rows
from db.students import (
    MAX_NAME_LENGTH,
    Merge,
    merge_many,
    merge_students,
    rename_student,
    standing_merges,
    undo_merges,
)

PRINT_FIT = "print-fit"  # a chart that assets/print.js redraws at the printed page's width

# The report's own components (dashboard.ids holds the ids other modules and tests share).
STUDENT_VIEW = "report-student-view"  # the section of one student's timeline, empty when none is open
STUDENT_TIMELINE = "report-student-timeline"
STUDENT_QUERY = "student"  # /report/<session>?student=<key> opens that student's section
ATTENDANCE = "report-attendance"
FLAGS_LIST = "report-flags"
DOWNLOAD_ATTENDANCE_BUTTON = "download-attendance-button"
DOWNLOAD_ATTENDANCE = "download-attendance"
MERGE_OPEN = "report-merge-open"  # each row's "Merge…" button: {"type": MERGE_OPEN, "index": student key}
MERGE_PANEL = "report-merge-panel"
MERGE_KEPT = "report-merge-kept"  # Store: the key of the student the panel merges into
MERGE_TITLE = "report-merge-title"
MERGE_WITH = "report-merge-with"  # Dropdown (several): the students who are the kept one too
MERGE_CONFIRM_TEXT = "report-merge-confirm-text"
MERGE_CONFIRM = "report-merge-confirm"
MERGE_CANCEL = "report-merge-cancel"
MERGE_NOTICE = "report-merge-notice"  # what the last merge or undo did, with its Undo button
UNDO_MERGE = "report-undo-merge"  # an Undo button: {"type": UNDO_MERGE, "index": "3,4" (db.students merge ids)}
UNDO_LISTED = "report-undo-listed"  # the same in the list of merges: {"type": UNDO_LISTED, "index": "3"}
MERGES_LIST = "report-merges"


def register(app: Dash, engine: Engine) -> None:
    app.callback(
        Output(ids.DOWNLOAD_STUDENTS, "data"),
        Input(ids.DOWNLOAD_STUDENTS_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: students_download(engine, checked_session(engine, {"name": name})["name"]))
    app.callback(
        Output(DOWNLOAD_ATTENDANCE, "data"),
        Input(DOWNLOAD_ATTENDANCE_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: attendance_download(engine, checked_session(engine, {"name": name})["name"]))
    app.callback(
        Output(ids.DOWNLOAD_ROWS, "data"),
        Input(ids.DOWNLOAD_ROWS_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: rows_download(engine, checked_session(engine, {"name": name})["name"]))
    # The browser prints the page as it is; print styles (assets/) and assets/print.js fit it to A4.
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
    # The session's store is new with every drawn report page, so this runs when the page is drawn as well
    # as when a row's link changes only the query.
    app.callback(
        Output(STUDENT_VIEW, "children"),
        Input(ids.URL, "search"),
        Input(ids.REPORT_SESSION, "data"),
    )(lambda search, name: student_view(engine, checked_session(engine, {"name": name})["name"], _student_key(search)))
    # A row's "View" is far down a long page: bring the opened section into sight.
    app.clientside_callback(
        f"""function (view) {{
            const shown = document.getElementById("{STUDENT_VIEW}");
            if (view && shown) {{ shown.scrollIntoView({{block: "start"}}); }}
            return window.dash_clientside.no_update;
        }}""",
        Output(STUDENT_VIEW, "className"),
        Input(STUDENT_VIEW, "children"),
        prevent_initial_call=True,
    )
    app.callback(
        Output(MERGE_PANEL, "hidden"),
        Output(MERGE_KEPT, "data"),
        Output(MERGE_WITH, "options"),
        Output(MERGE_WITH, "value"),
        Output(MERGE_TITLE, "children"),
        Input({"type": MERGE_OPEN, "index": ALL}, "n_clicks"),
        Input(MERGE_CANCEL, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda opens, _cancel, name: merge_panel(engine, checked_session(engine, {"name": name})["name"], opens))
    app.callback(
        Output(MERGE_CONFIRM_TEXT, "children"),
        Output(MERGE_CONFIRM, "disabled"),
        Output(MERGE_CONFIRM, "children"),
        Input(MERGE_WITH, "value"),
        State(MERGE_KEPT, "data"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(
        lambda chosen, kept, name: merge_confirmation(
            engine, checked_session(engine, {"name": name})["name"], _key(kept), _keys(chosen)
        )
    )
    app.callback(
        Output(ids.PAGE, "children", allow_duplicate=True),
        Input(MERGE_CONFIRM, "n_clicks"),
        State(MERGE_KEPT, "data"),
        State(MERGE_WITH, "value"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(
        lambda clicks, kept, chosen, name: merge_confirmed(
            engine, checked_session(engine, {"name": name})["name"], clicks, _key(kept), _keys(chosen)
        )
    )
    app.callback(
        Output(ids.PAGE, "children", allow_duplicate=True),
        Input({"type": UNDO_MERGE, "index": ALL}, "n_clicks"),
        Input({"type": UNDO_LISTED, "index": ALL}, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(
        lambda undos, listed, name: undo_clicked(
            engine, checked_session(engine, {"name": name})["name"], [*undos, *listed]
        )
    )


def session_report(engine: Engine, session: SessionInfo, notice: html.Div | str = "") -> html.Div:
    """The report page of `session`, or why it has nothing to show; `notice`: what the last student fix-up did
    (a line, or merge_notice's line with its Undo button).

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
        tables,
        mood_timeline(tables.emotion_counts, engagement=line),
        standing_merges(engine, session.id),
        notice,
    )


def layout(
    session: SessionInfo,
    tables: SessionTables,
    timeline: go.Figure,
    merges: list[Merge],
    notice: html.Div | str = "",
) -> html.Div:
    """The whole-session report: timeline, engagement heatmap with its legend, the largest drops (analytics.
    report.engagement_drops), then the students: attendance, the per-student table (as its CSV download holds
    it) with each row's view and merge buttons, and every flag in words; the CSV downloads, a print button,
    the student fix-ups and the merge panel (`merges`: the session's standing merges; `notice`: what the last
    fix-up did)."""
    students = tables.students
    return html.Div(
        [
            dcc.Store(id=ids.REPORT_SESSION, data=session.name),
            session_heading(session, {"Live view": live_path(session.name), "All sessions": "/sessions"}),
            html.Button("Print / Save as PDF", id=ids.REPORT_PRINT, className="print-button"),
            html.Div(id=STUDENT_VIEW),
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
                    dcc.Graph(
                        id=ids.REPORT_HEATMAP,
                        figure=state_heatmap(tables.states),
                        config=TIMELINE_GRAPH,
                        className=PRINT_FIT,
                    ),
                    state_legend(),
                ],
                className="card",
            ),
            html.Section(
                [html.H2("Where class engagement dropped most"), _drops_list(engagement_drops(tables.class_bins))],
                className="card",
            ),
            html.Section(
                [
                    html.Div(
                        [
                            html.H2("Attendance"),
                            html.Button("Download attendance (CSV)", id=DOWNLOAD_ATTENDANCE_BUTTON),
                            dcc.Download(id=DOWNLOAD_ATTENDANCE),
                        ],
                        className="section-heading",
                    ),
                    html.Div(_attendance_table(tables.attendance), className="table-scroll"),
                    html.Div(
                        [
                            html.H2("Students"),
                            html.Button("Download students (CSV)", id=ids.DOWNLOAD_STUDENTS_BUTTON),
                            html.Button("Download all rows (CSV)", id=ids.DOWNLOAD_ROWS_BUTTON),
                            dcc.Download(id=ids.DOWNLOAD_STUDENTS),
                            dcc.Download(id=ids.DOWNLOAD_ROWS),
                        ],
                        className="section-heading next",
                    ),
                    # Scrolls sideways on a narrow screen rather than spilling out of its card.
                    html.Div(_students_table(session.name, tables), className="table-scroll"),
                    html.H2("Flags raised", className="next"),
                    _flags_list(tables),
                ],
                className="card",
            ),
            student_fixes(students, notice if isinstance(notice, str) else "", merges),
            _merge_panel(),
            html.Div(notice if not isinstance(notice, str) else None, id=MERGE_NOTICE, className="no-print"),
        ]
    )


def student_fixes(students: pd.DataFrame, notice: str, merges: list[Merge] | None = None) -> html.Section:
    """Rename a student, merge two students who are one person (db.students does both; a merge only once
    the session has ended; each row's "Merge…" button does the same with a confirmation), and the merges that
    can be undone. `students`: analytics.report.student_table rows; `notice`: the message line."""
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
            _merges_list(merges or []),
        ],
        id=ids.STUDENT_FIXES,
        className="card no-print",
    )


def student_view(engine: Engine, session_name: str, key: str | None) -> html.Section | None:
    """The section of one student (`key`; None: no section): where they were, how attentive and engaged, the
    emotion they showed and how sure the model was, and their flags, over the session."""
    if key is None:
        return None
    session = find_session(engine, session_name)
    tables = report_tables(engine, session, engagement_config())
    people = student_rows(engine, session.id).set_index("student")
    close = dcc.Link("Close", href=report_path(session_name), className="close-view no-print")
    if key not in people.index:
        return html.Section(
            [html.H2("Student not found"), html.P(f"This session has no student {key!r} (merged away?)."), close],
            className="card student-view",
        )
    timeline = student_timeline(
        engine, session.id, int(people.loc[key, "student_id"]), tables.flags, engagement_config()
    )
    name = people.loc[key, "name"]
    attendance = tables.attendance.set_index("student")
    summary = _attendance_sentence(attendance.loc[key]) if key in attendance.index else ""
    flags = timeline.flags
    return html.Section(
        [
            html.Div([html.H2(_who_text(key, name)), close], className="section-heading"),
            html.P(summary, className="subtitle"),
            dcc.Graph(
                id=STUDENT_TIMELINE,
                figure=student_timeline_figure(timeline),
                config=TIMELINE_GRAPH,
                className=PRINT_FIT,
            ),
            state_legend(with_engagement=False),
            html.P(f"Bins of {timeline.bin_seconds} s.", className="subtitle"),
            html.H3("Flags"),
            html.Ul([html.Li(flag_sentence(flag)) for flag in flags])
            if flags
            else html.P("No flag was raised for this student.", className="absent"),
        ],
        className="card student-view",
        **{"data-student": key},
    )


def merge_panel(engine: Engine, session_name: str, opens: list[int | None]) -> tuple[bool, Any, Any, Any, str]:
    """The merge panel opened by a row's "Merge…" button for that student (the panel then offers every other
    student of the session, with their minutes present), or closed by Cancel."""
    triggered = callback_context.triggered_id
    if not isinstance(triggered, dict):  # Cancel
        return True, None, [], [], ""
    if not any(opens):  # the buttons were drawn, nobody clicked
        raise PreventUpdate
    kept = _key(triggered.get("index"))
    minutes = _minutes_present(engine, session_name)
    if kept not in minutes:
        raise PreventUpdate
    options = [{"label": label, "value": key} for key, label in minutes.items() if key != kept]
    return False, kept, options, [], f"Who else is {minutes[kept]}?"


def merge_confirmation(engine: Engine, session_name: str, kept: str, chosen: list[str]) -> tuple[Any, bool, str]:
    """The sentence that asks to confirm merging `chosen` into `kept`, naming them all with their minutes, and
    the confirm button (disabled until someone is chosen)."""
    minutes = _minutes_present(engine, session_name)
    if kept not in minutes:
        raise PreventUpdate
    others = [minutes[key] for key in chosen if key in minutes and key != kept]
    if not others:
        return f"Choose who else is {minutes[kept]}.", True, "Merge"
    return (
        [
            "Merge ",
            html.B(", ".join(others)),
            " into ",
            html.B(minutes[kept]),
            "? Their rows become one student's. You can undo this afterwards.",
        ],
        False,
        f"Yes, merge {len(others)} into 1",
    )


def merge_confirmed(engine: Engine, session_name: str, clicks: int | None, kept: str, chosen: list[str]) -> Any:
    """Merge `chosen` into `kept` (db.students.merge_many, by the signed-in user) and redraw the page with a line
    saying what moved and an Undo button, or with a line saying why not."""
    if not clicks or not chosen:
        raise PreventUpdate
    minutes = _minutes_present(engine, session_name)
    try:
        merges = merge_many(engine, session_name, kept, chosen, merged_by=current_user().name)
    except DatabaseError as error:
        return session_report(engine, find_session(engine, session_name), merge_notice(f"Not merged: {error}."))
    moved = sum(merge.moved for merge in merges)
    done = (
        f"Merged {', '.join(minutes.get(merge.dropped, merge.dropped) for merge in merges)} into "
        f"{minutes.get(kept, kept)}: {moved} observation(s) moved."
    )
    return session_report(engine, find_session(engine, session_name), merge_notice(done, [m.id for m in merges]))


def undo_clicked(engine: Engine, session_name: str, clicks: list[int | None]) -> Any:
    """Undo the merge(s) of the Undo button clicked and redraw the page saying who is back."""
    triggered = callback_context.triggered_id
    if not any(clicks) or not isinstance(triggered, dict):
        raise PreventUpdate
    try:
        merge_ids = [int(part) for part in str(triggered.get("index")).split(",")]
    except ValueError:
        raise PreventUpdate from None
    try:
        undone = undo_merges(engine, session_name, merge_ids)
    except DatabaseError as error:
        return session_report(engine, find_session(engine, session_name), merge_notice(f"Not undone: {error}."))
    back = ", ".join(_who_text(merge.dropped, merge.dropped_name) for merge in undone)
    return session_report(engine, find_session(engine, session_name), merge_notice(f"Undone: {back} back as before."))


def merge_notice(text: str, merge_ids: list[int] | None = None) -> html.Div:
    """The line a merge or an undo leaves at the foot of the window, with the merge's Undo button."""
    undo = (
        [html.Button("Undo", id={"type": UNDO_MERGE, "index": ",".join(map(str, merge_ids))}, className="undo")]
        if merge_ids
        else []
    )
    return html.Div([html.Span(text), *undo], className="merge-notice", role="status")


def attendance_download(engine: Engine, session_name: str) -> dict[str, Any]:
    """The attendance table as `python -m analytics report` writes attendance.csv: times in ISO 8601 UTC."""
    session = find_session(engine, session_name)
    table = attendance_file(report_tables(engine, session, engagement_config()).attendance)
    return dcc.send_data_frame(table.to_csv, f"{_file_stem(session_name)}-attendance.csv", **CSV_FORMAT)


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
            merge = merge_students(engine, session_name, keep, drop, merged_by=current_user().name)
            done = f"Merged {drop} into {keep}: {merge.moved} observation(s) moved."
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


def _minutes_present(engine: Engine, session_name: str) -> dict[str, str]:
    """Each student's key -> 'Ada Lovelace (tile-3, 12 min present)', in order of first appearance."""
    tables = report_tables(engine, find_session(engine, session_name), engagement_config())
    labels = {}
    for row in tables.attendance.itertuples(index=False):
        present = f"{duration(timedelta(seconds=row.seconds_present))} present"
        labels[row.student] = (
            f"{row.name} ({row.student}, {present})" if isinstance(row.name, str) else (f"{row.student} ({present})")
        )
    return labels


def _who_text(key: str, name: Any) -> str:
    """'Ada Lovelace (tile-3)', or the key of a student without a name."""
    return f"{name} ({key})" if isinstance(name, str) else key


def _student_key(search: Any) -> str | None:
    """The student named by the URL's query (?student=tile-3), if any."""
    if not isinstance(search, str):
        return None
    keys = parse_qs(search.lstrip("?")).get(STUDENT_QUERY)
    return keys[0] if keys else None


def _key(value: Any) -> str:
    """A student key as the browser sent it (a store or a button's id): text, or the callback does nothing."""
    if not isinstance(value, str) or not value:
        raise PreventUpdate
    return value


def _keys(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise PreventUpdate
    return value


def _merge_panel() -> html.Section:
    """The merge dialog at the foot of the window, hidden until a row's "Merge…" opens it."""
    return html.Section(
        [
            dcc.Store(id=MERGE_KEPT),
            html.H2("Merge students who are one person", id=MERGE_TITLE),
            dcc.Dropdown(id=MERGE_WITH, options=[], multi=True, placeholder="The same person as…", className="choice"),
            html.P(id=MERGE_CONFIRM_TEXT, role="status"),
            html.Div(
                [
                    html.Button("Merge", id=MERGE_CONFIRM, disabled=True, className="primary"),
                    html.Button("Cancel", id=MERGE_CANCEL),
                ],
                className="fix-row",
            ),
        ],
        id=MERGE_PANEL,
        hidden=True,
        className="card no-print merge-panel",
    )


def _merges_list(merges: list[Merge]) -> html.Div:
    if not merges:
        return html.Div(id=MERGES_LIST)
    return html.Div(
        [
            html.H3("Merges you can undo (the latest first)"),
            html.Ul(
                [
                    html.Li(
                        [
                            f"{_who_text(merge.dropped, merge.dropped_name)} into {merge.kept}, "
                            f"{merge.moved} observation(s), {local_time(merge.merged_at, with_date=True)}"
                            + (f" by {merge.merged_by} " if merge.merged_by else " "),
                            html.Button("Undo", id={"type": UNDO_LISTED, "index": str(merge.id)}, className="undo"),
                        ]
                    )
                    for merge in merges
                ]
            ),
        ],
        id=MERGES_LIST,
    )


def _attendance_sentence(row: Any) -> str:
    if pd.isna(row.joined):
        return "Never present (only an empty seat)."
    away = f", away {duration(timedelta(seconds=row.seconds_away))} ({row.times_away}×)" if row.times_away else ""
    return (
        f"Joined {local_time(row.joined)}, left {local_time(row.left)}: present "
        f"{duration(timedelta(seconds=row.seconds_present))}, camera off "
        f"{duration(timedelta(seconds=row.seconds_camera_off))}{away}."
    )


def _attendance_table(attendance: pd.DataFrame) -> html.Table:
    """analytics.attendance.attendance_table, as video-call apps' participant reports show it."""
    header = ["Student", "Joined", "Left", "Present", "Camera off", "Away", "Times away"]
    numbers = {"Present", "Camera off", "Away"}
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(label, className="number" if label in numbers else None) for label in header])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(_who_cell(row.student, row.name)),
                            html.Td("" if pd.isna(row.joined) else local_time(row.joined)),
                            html.Td("" if pd.isna(row.left) else local_time(row.left)),
                            html.Td(duration(timedelta(seconds=row.seconds_present)), className="number"),
                            html.Td(duration(timedelta(seconds=row.seconds_camera_off)), className="number"),
                            html.Td(duration(timedelta(seconds=row.seconds_away)), className="number"),
                            html.Td(
                                ", ".join(f"{local_time(start)}–{local_time(end)}" for start, end in row.away)
                                if row.times_away
                                else "–"
                            ),
                        ],
                        **{"data-student": row.student},
                    )
                    for row in attendance.itertuples(index=False)
                ]
            ),
        ],
        id=ATTENDANCE,
        className="table",
    )


def _who_cell(key: str, name: Any) -> list[Any]:
    return [name, html.Span(key, className="key")] if isinstance(name, str) else [key]


def _flags_list(tables: SessionTables) -> html.Ul | html.P:
    """Every flag in words, by student (a hover tooltip does not print)."""
    if not tables.flags:
        return html.P("No flag was raised.", id=FLAGS_LIST, className="absent")
    names = dict(zip(tables.students["student"], tables.students["name"], strict=True))
    by_student: dict[str, list[str]] = {}
    for flag in tables.flags:
        by_student.setdefault(flag.student, []).append(flag_sentence(flag))
    return html.Ul(
        [
            html.Li([html.B(_who_text(key, names.get(key))), ": ", "; ".join(sentences)], **{"data-student": key})
            for key, sentences in by_student.items()
        ],
        id=FLAGS_LIST,
        className="flag-reasons",
    )


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


def _students_table(session_name: str, tables: SessionTables) -> html.Table:
    """One row per student: time on camera, attentive share and engagement of that time, the emotion shown most
    (with its share of their faces), their flags in words, and the buttons that open their section and merge
    into them. Times in the call and with the camera off are the attendance table's; first and last face and
    every emotion's share are in the CSV download (on paper they would make the table wider than A4)."""
    header = ["Student", "Name", "On camera", "Attentive", "Engagement", "Mostly", "Flags", ""]
    numbers = {"On camera", "Attentive", "Engagement"}
    causes: dict[str, list[str]] = {}
    for flag in tables.flags:
        if flag.cause not in causes.setdefault(flag.student, []):
            causes[flag.student].append(flag.cause)
    return html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(label, className="number" if label in numbers else None if label else "actions")
                        for label in header
                    ]
                )
            ),
            html.Tbody(
                [
                    _student_row(session_name, row, causes.get(row.student, []))
                    for row in tables.students.itertuples(index=False)
                ]
            ),
        ],
        id=ids.REPORT_STUDENTS,
        className="table",
    )


def _student_row(session_name: str, student: Any, causes: list[str]) -> html.Tr:
    """`student`: an analytics.report.student_table row, `causes`: what their flags were about, in words."""
    view = f"{report_path(session_name)}?{urlencode({STUDENT_QUERY: student.student})}"
    mostly = (
        [emotion_badge(student.dominant), f" {_share(getattr(student, f'share_{student.dominant}'))}"]
        if student.dominant
        else ""
    )
    return html.Tr(
        [
            html.Td(student.student),
            html.Td(student.name or ""),
            html.Td(duration(timedelta(seconds=student.seconds_present)), className="number"),
            # Both of the time their face showed; none for a student whose face never did.
            html.Td(_share(student.attentive_share), className="number"),
            html.Td("–" if pd.isna(student.engagement) else f"{student.engagement:.2f}", className="number"),
            html.Td(mostly),
            html.Td(f"{student.flags}: {', '.join(causes)}" if causes else "–", title=student.flag_reasons),
            html.Td(
                [
                    dcc.Link("View", href=view, className="row-action"),
                    html.Button("Merge…", id={"type": MERGE_OPEN, "index": student.student}, className="row-action"),
                ],
                className="no-print actions",
            ),
        ],
        **{"data-student": student.student},
    )


def _share(value: float) -> str:
    return "" if pd.isna(value) else percent(value)


def _file_stem(session_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", session_name) or "session"
