"""The session report page: class mood, engagement per student (camera off and away as states of their own),
the largest drops, attendance, the students table with their flags in words, CSV downloads and a print button.

From a student's row: their own timeline (a section opened at /report/<session>?student=<key>, so it can be
linked and reloaded) and a merge of other students into them, confirmed in a sentence naming everyone and their
minutes, and undoable (db.students keeps what the undo needs); and a rename, in a panel with their name ready to
change."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

import pandas as pd
import plotly.graph_objects as go
from dash import ALL, Dash, Input, NoUpdate, Output, State, callback_context, dcc, html, no_update
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
from dashboard import ids, row_values
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
from dashboard.data_attributes import with_data
from dashboard.downloads import TextDownload, csv_download
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
RENAME_OPEN = "report-rename-open"  # each row's "Rename…" button: {"type": RENAME_OPEN, "index": student key}
RENAME_PANEL = "report-rename-panel"
RENAME_KEPT = "report-rename-kept"  # Store: the key of the student the panel renames
RENAME_TITLE = "report-rename-title"
RENAME_CANCEL = "report-rename-cancel"


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
    app.clientside_callback(  # type: ignore[no-untyped-call]  # Dash 3.3 declares no types for clientside_callback
        "function (clicks) { if (clicks) { window.print(); } }",
        Input(ids.REPORT_PRINT, "n_clicks"),
        prevent_initial_call=True,
    )
    app.callback(
        Output(RENAME_PANEL, "hidden"),
        Output(RENAME_KEPT, "data"),
        Output(ids.RENAME_NAME, "value"),
        Output(RENAME_TITLE, "children"),
        Output(ids.FIX_MESSAGE, "children", allow_duplicate=True),
        # The last notice goes: it would show behind the panel, both at the foot of the window.
        Output(MERGE_NOTICE, "children"),
        Input({"type": RENAME_OPEN, "index": ALL}, "n_clicks"),
        Input(RENAME_CANCEL, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda opens, _cancel, name: rename_panel(engine, checked_session(engine, {"name": name})["name"], opens))
    # The router also fills the page; a rename redraws it so every table and chart shows the new name.
    app.callback(
        Output(ids.PAGE, "children", allow_duplicate=True),
        Output(ids.FIX_MESSAGE, "children", allow_duplicate=True),
        Input(ids.RENAME_BUTTON, "n_clicks"),
        State(RENAME_KEPT, "data"),
        State(ids.RENAME_NAME, "value"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(
        lambda clicks, key, new_name, name: rename_saved(
            engine, checked_session(engine, {"name": name})["name"], clicks, _key(key), new_name
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
    app.clientside_callback(  # type: ignore[no-untyped-call]  # Dash 3.3 declares no types for clientside_callback
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


@dataclass(frozen=True)
class Attendance:
    """A student's row of analytics.attendance.attendance_table."""

    student: str  # key
    name: str | None  # display name, if they have one
    joined: pd.Timestamp | None  # None, and no left: never present (only ever an empty seat)
    left: pd.Timestamp | None
    seconds_present: float
    seconds_camera_off: float
    seconds_away: float
    times_away: int
    away: list[tuple[pd.Timestamp, pd.Timestamp]]  # (start, end) of each spell away

    @classmethod
    def rows(cls, table: pd.DataFrame) -> list[Attendance]:
        return [
            cls(
                row_values.key(row.student),
                row_values.text(row.name),
                row_values.optional_moment(row.joined),
                row_values.optional_moment(row.left),
                row_values.number(row.seconds_present),
                row_values.number(row.seconds_camera_off),
                row_values.number(row.seconds_away),
                row_values.count(row.times_away),
                row_values.spells(row.away),
            )
            for row in table.itertuples(index=False)
        ]


@dataclass(frozen=True)
class StudentLine:
    """A student's row of analytics.report.student_table, as the students table shows it."""

    student: str  # key
    name: str | None  # display name, if they have one
    seconds_present: float
    attentive_share: float  # of their face time; NaN: their face never showed
    engagement: float  # likewise
    dominant: str | None  # the emotion they showed most of their face time; None: none shown
    dominant_share: float  # its share of their faces; NaN without one
    flags: int
    flag_reasons: str  # every flag, in words ("" without any)

    @classmethod
    def rows(cls, table: pd.DataFrame) -> list[StudentLine]:
        found = []
        for row in table.itertuples(index=False):
            dominant = row_values.text(row.dominant)
            found.append(
                cls(
                    row_values.key(row.student),
                    row_values.text(row.name),
                    row_values.number(row.seconds_present),
                    row_values.number(row.attentive_share),
                    row_values.number(row.engagement),
                    dominant,
                    math.nan if dominant is None else row_values.number(getattr(row, f"share_{dominant}")),
                    row_values.count(row.flags),
                    row_values.text(row.flag_reasons) or "",
                )
            )
        return found


def session_report(engine: Engine, session: SessionInfo, notice: html.Div | None = None) -> html.Div:
    """The report page of `session`, or why it has nothing to show; `notice`: what the last rename, merge or
    undo did (merge_notice's line, with a merge's Undo button).

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
    notice: html.Div | None = None,
) -> html.Div:
    """The whole-session report: timeline, engagement heatmap with its legend, the largest drops (analytics.
    report.engagement_drops), then the students: attendance, the per-student table (as its CSV download holds
    it) with each row's view, rename and merge buttons, and every flag in words; the CSV downloads, a print
    button, the merges that can be undone (`merges`: the session's standing ones), the rename and merge panels,
    and `notice`: what the last rename, merge or undo did."""
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
            _merges_list(merges),
            _rename_panel(),
            _merge_panel(),
            html.Div(notice, id=MERGE_NOTICE, className="no-print"),
        ]
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
        engine, session.id, row_values.count(people.loc[key, "student_id"]), tables.flags, engagement_config()
    )
    name = row_values.text(people.loc[key, "name"])
    attendance = {row.student: row for row in Attendance.rows(tables.attendance)}
    summary = _attendance_sentence(attendance[key]) if key in attendance else ""
    flags = timeline.flags
    view = html.Section(
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
    )
    return with_data(view, {"data-student": key})


def merge_panel(
    engine: Engine, session_name: str, opens: list[int | None]
) -> tuple[bool, str | None, list[dcc.Dropdown.Options], list[str], str]:
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
    options: list[dcc.Dropdown.Options] = [
        {"label": label, "value": key} for key, label in minutes.items() if key != kept
    ]
    return False, kept, options, [], f"Who else is {minutes[kept]}?"


def merge_confirmation(
    engine: Engine, session_name: str, kept: str, chosen: list[str]
) -> tuple[str | list[str | html.B], bool, str]:
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


def merge_confirmed(engine: Engine, session_name: str, clicks: int | None, kept: str, chosen: list[str]) -> html.Div:
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


def undo_clicked(engine: Engine, session_name: str, clicks: list[int | None]) -> html.Div:
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


def rename_panel(
    engine: Engine, session_name: str, opens: list[int | None]
) -> tuple[bool, str | None, str, str, str, None]:
    """The rename panel opened by a row's "Rename…" button for that student, their name (or nothing) ready
    to be changed, or closed by Cancel; either way without the last notice."""
    triggered = callback_context.triggered_id
    if not isinstance(triggered, dict):  # Cancel
        return True, None, "", "", "", None
    if not any(opens):  # the buttons were drawn, nobody clicked
        raise PreventUpdate
    key = _key(triggered.get("index"))
    people = student_rows(engine, find_session(engine, session_name).id).set_index("student")
    if key not in people.index:
        raise PreventUpdate
    name = row_values.text(people.loc[key, "name"])
    return False, key, name or "", f"Rename {_who_text(key, name)}", "", None


def rename_saved(
    engine: Engine, session_name: str, clicks: int | None, key: str, new_name: object
) -> tuple[html.Div | NoUpdate, str]:
    """Give student `key` the display name `new_name` (db.students.rename_student) and redraw the page with a
    line saying so; or leave the page as it is, with a line in the panel saying why not (db.students refuses
    an empty or too long name and an unknown student)."""
    if not clicks:
        raise PreventUpdate
    typed = new_name if isinstance(new_name, str) else ""
    try:
        rename_student(engine, session_name, key, typed)
    except DatabaseError as error:
        return no_update, f"Not changed: {error}."
    done = f"Renamed {key} to {typed.strip()}."
    return session_report(engine, find_session(engine, session_name), merge_notice(done)), done


def merge_notice(text: str, merge_ids: list[int] | None = None) -> html.Div:
    """The line a rename, a merge or an undo leaves at the foot of the window, with a merge's Undo button."""
    undo = (
        [html.Button("Undo", id={"type": UNDO_MERGE, "index": ",".join(map(str, merge_ids))}, className="undo")]
        if merge_ids
        else []
    )
    return html.Div([html.Span(text), *undo], className="merge-notice", role="status")


def attendance_download(engine: Engine, session_name: str) -> TextDownload:
    """The attendance table as `python -m analytics report` writes attendance.csv: times in ISO 8601 UTC."""
    session = find_session(engine, session_name)
    table = attendance_file(report_tables(engine, session, engagement_config()).attendance)
    return csv_download(table, f"{_file_stem(session_name)}-attendance.csv", **CSV_FORMAT)


def students_download(engine: Engine, session_name: str) -> TextDownload:
    """The per-student table as `python -m analytics report` writes students.csv: times in ISO 8601 UTC,
    shares as fractions."""
    session = find_session(engine, session_name)
    table = students_file(report_tables(engine, session, engagement_config()).students)
    return csv_download(table, f"{_file_stem(session_name)}-students.csv", **CSV_FORMAT)


def rows_download(engine: Engine, session_name: str) -> TextDownload:
    """Every observation of the session, as `python -m analytics export` writes it."""
    session = find_session(engine, session_name)
    table = export_table(engine, session.id)
    return csv_download(table, f"{_file_stem(session_name)}-rows.csv")


def _minutes_present(engine: Engine, session_name: str) -> dict[str, str]:
    """Each student's key -> 'Ada Lovelace (tile-3, 12 min present)', in order of first appearance."""
    tables = report_tables(engine, find_session(engine, session_name), engagement_config())
    labels = {}
    for row in Attendance.rows(tables.attendance):
        present = f"{duration(timedelta(seconds=row.seconds_present))} present"
        labels[row.student] = f"{row.name} ({row.student}, {present})" if row.name else f"{row.student} ({present})"
    return labels


def _who_text(key: str, name: object) -> str:
    """'Ada Lovelace (tile-3)', or the key of a student without a name."""
    return f"{name} ({key})" if isinstance(name, str) else key


def _student_key(search: object) -> str | None:
    """The student named by the URL's query (?student=tile-3), if any."""
    if not isinstance(search, str):
        return None
    keys = parse_qs(search.lstrip("?")).get(STUDENT_QUERY)
    return keys[0] if keys else None


def _key(value: object) -> str:
    """A student key as the browser sent it (a store or a button's id): text, or the callback does nothing."""
    if not isinstance(value, str) or not value:
        raise PreventUpdate
    return value


def _keys(value: object) -> list[str]:
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


def _rename_panel() -> html.Section:
    """The rename dialog at the foot of the window, hidden until a row's "Rename…" opens it."""
    return html.Section(
        [
            dcc.Store(id=RENAME_KEPT),
            html.H2("Rename", id=RENAME_TITLE),
            html.Div(
                [
                    dcc.Input(
                        id=ids.RENAME_NAME, value="", type="text", placeholder="New name", maxLength=MAX_NAME_LENGTH
                    ),
                    html.Button("Rename", id=ids.RENAME_BUTTON, className="primary"),
                    html.Button("Cancel", id=RENAME_CANCEL),
                ],
                className="fix-row",
            ),
            html.P(id=ids.FIX_MESSAGE, role="status"),
        ],
        id=RENAME_PANEL,
        hidden=True,
        className="card no-print merge-panel",
    )


def _merges_list(merges: list[Merge]) -> html.Section | html.Div:
    """The session's merges that can be undone, the latest first, each with its Undo button."""
    if not merges:
        return html.Div(id=MERGES_LIST)
    return html.Section(
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
        className="card no-print",
    )


def _attendance_sentence(row: Attendance) -> str:
    if row.joined is None or row.left is None:
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
                    with_data(
                        html.Tr(
                            [
                                html.Td(_who_cell(row.student, row.name)),
                                html.Td("" if row.joined is None else local_time(row.joined)),
                                html.Td("" if row.left is None else local_time(row.left)),
                                html.Td(duration(timedelta(seconds=row.seconds_present)), className="number"),
                                html.Td(duration(timedelta(seconds=row.seconds_camera_off)), className="number"),
                                html.Td(duration(timedelta(seconds=row.seconds_away)), className="number"),
                                html.Td(
                                    ", ".join(f"{local_time(start)}–{local_time(end)}" for start, end in row.away)
                                    if row.times_away
                                    else "–"
                                ),
                            ]
                        ),
                        {"data-student": row.student},
                    )
                    for row in Attendance.rows(attendance)
                ]
            ),
        ],
        id=ATTENDANCE,
        className="table",
    )


def _who_cell(key: str, name: str | None) -> list[str | html.Span]:
    return [key] if name is None else [name, html.Span(key, className="key")]


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
            with_data(
                html.Li([html.B(_who_text(key, names.get(key))), ": ", "; ".join(sentences)]), {"data-student": key}
            )
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
                f"{local_time(row_values.moment(drop.start))} → {local_time(row_values.moment(drop.end))}: "
                f"{drop.before:.2f} → {drop.after:.2f} "
                f"(−{drop.drop:.2f})"
            )
            for drop in drops.itertuples(index=False)
        ],
        id=ids.REPORT_DROPS,
    )


def _students_table(session_name: str, tables: SessionTables) -> html.Table:
    """One row per student: time on camera, attentive share and engagement of that time, the emotion shown most
    (with its share of their faces), their flags in words, and the buttons that open their section, rename
    them and merge into them. Times in the call and with the camera off are the attendance table's; first and
    last face and every emotion's share are in the CSV download (on paper they would make the table wider than
    A4)."""
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
                    for row in StudentLine.rows(tables.students)
                ]
            ),
        ],
        id=ids.REPORT_STUDENTS,
        className="table",
    )


def _student_row(session_name: str, student: StudentLine, causes: list[str]) -> html.Tr:
    """`causes`: what the student's flags were about, in words."""
    view = f"{report_path(session_name)}?{urlencode({STUDENT_QUERY: student.student})}"
    mostly: list[html.Span | str] | str = (
        [emotion_badge(student.dominant), f" {_share(student.dominant_share)}"] if student.dominant else ""
    )
    row = html.Tr(
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
                    html.Button("Rename…", id={"type": RENAME_OPEN, "index": student.student}, className="row-action"),
                    html.Button("Merge…", id={"type": MERGE_OPEN, "index": student.student}, className="row-action"),
                ],
                className="no-print actions",
            ),
        ]
    )
    return with_data(row, {"data-student": student.student})


def _share(value: float) -> str:
    return "" if pd.isna(value) else percent(value)


def _file_stem(session_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", session_name) or "session"
