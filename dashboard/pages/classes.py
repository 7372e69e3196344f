"""The class pages: a class followed across a term (issue 15's roster).

/classes          the viewer's classes (an admin's: every teacher's), each with its lessons and roster counted
/classes/<id>     one class: its roster with each student's term (lessons attended, time in class, camera-off
                  share, engagement over the time their face showed, flags) and their engagement in each lesson,
                  linked to that lesson's report on them; and its lessons, each linked to its report
/classes/<id>/student/<roster id>
                  one roster student's term: per lesson attended or not, joined, left, attention, engagement and
                  flags, a trend chart, and the table as CSV (times ISO 8601 UTC with a Z)

Every number is the one that lesson's report shows for the student (analytics.term reads each lesson's report,
kept by dashboard.lesson_cache). A teacher sees only their own classes, and asking for another teacher's gets
the answer for a class that does not exist; signed-out visitors get nothing (dashboard.auth signs every request
in first).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from analytics.live import engagement_config
from analytics.report import CSV_FORMAT
from analytics.term import roster_table, student_term, term_file, term_rows
from dashboard.access import current_user, is_admin
from dashboard.components import STATIC_GRAPH, message_page, report_path
from dashboard.downloads import TextDownload, csv_download
from dashboard.formatting import duration, local_time, percent, zone_label
from dashboard.lesson_cache import lesson_table
from dashboard.pages.report import STUDENT_QUERY
from dashboard.report_figures import flag_sentence
from dashboard.theme import CHART_LAYOUT, ENGAGEMENT_LINE_COLOR, engagement_color, engagement_text_color
from db.class_reads import ClassInfo, class_lessons, class_overviews, find_class_by_id, roster_links
from db.classes import UnknownClassError
from db.errors import DatabaseError
from db.queries import SessionInfo
from db.users import User

PATH = "/classes"
CLASS_LIST = "classes-list"  # the table of classes
ROSTER = "class-roster"  # the roster table
LESSONS = "class-lessons"  # the table of lessons
TERM_TABLE = "term-table"  # a student's lessons
TERM_SUMMARY = "term-summary"  # their term in a few numbers
TERM_CHART = "term-chart"
TERM_FLAGS = "term-flags"  # every flag of the term, with its reason
TERM_STUDENT = "term-student"  # Store: {"class": id, "student": roster id}
DOWNLOAD_TERM_BUTTON = "download-term-button"
DOWNLOAD_TERM = "download-term"
ELSEWHERE = {"All classes": PATH, "All sessions": "/sessions"}
CHART_HEIGHT_PX = 260


def class_path(class_id: int) -> str:
    return f"{PATH}/{class_id}"


def student_path(class_id: int, class_student_id: int) -> str:
    return f"{PATH}/{class_id}/student/{class_student_id}"


def lesson_student_path(session_name: str, keys: str) -> str:
    """The lesson's report opened on the student (its first key, when two tiles were theirs)."""
    return f"{report_path(session_name)}?{STUDENT_QUERY}={quote(keys.split(', ')[0], safe='')}"


def nav_links() -> list[dcc.Link]:
    return [dcc.Link("Classes", href=PATH)]


def register(app: Dash, engine: Engine) -> None:
    app.callback(
        Output(DOWNLOAD_TERM, "data"),
        Input(DOWNLOAD_TERM_BUTTON, "n_clicks"),
        State(TERM_STUDENT, "data"),
        prevent_initial_call=True,
    )(lambda _, chosen: term_download(engine, current_user(), chosen))


def render(engine: Engine, parts: list[str], viewer: User) -> html.Div:
    """The page at /classes/<parts...> (dashboard.router); raises db.errors.DatabaseError."""
    try:
        match parts:
            case []:
                return class_list(engine, viewer)
            case [number] if number.isdigit():
                return class_page(engine, visible_class(engine, viewer, int(number)))
            case [number, "student", roster_id] if number.isdigit() and roster_id.isdigit():
                return term_page(engine, visible_class(engine, viewer, int(number)), int(roster_id))
    except UnknownClassError as error:
        return message_page("Unknown class", f"{error}.", ELSEWHERE)
    return message_page("Page not found", f"There is no page at {PATH}/{'/'.join(parts)}.", ELSEWHERE)


def visible_class(engine: Engine, viewer: User, class_id: int) -> ClassInfo:
    """The class if `viewer` may see it: an admin any, a teacher their own. Another teacher's class gets the
    same answer as one that does not exist (UnknownClassError)."""
    try:
        found = find_class_by_id(engine, class_id)
    except UnknownClassError:
        found = None
    if found is None or not (is_admin(viewer) or found.teacher == viewer.name):
        raise UnknownClassError(f"you have no class number {class_id}")
    return found


def class_list(engine: Engine, viewer: User) -> html.Div:
    overviews = class_overviews(engine, None if is_admin(viewer) else viewer.name)
    if not overviews:
        return message_page(
            "No classes yet",
            "A class is made by the first session captured with --class NAME (or a class named on the Start class "
            "page); its sessions then share a roster, and this page follows each student across them."
            + ("" if is_admin(viewer) else " Other teachers' classes are not shown to you."),
            {"All sessions": "/sessions"},
        )
    header = ["Class", "Teacher", "Lessons", "Students on the roster", "First lesson", "Latest lesson"]
    rows = [
        html.Tr(
            [
                html.Td(dcc.Link(overview.info.name, href=class_path(overview.info.id))),
                html.Td(overview.info.teacher or "—", className="" if overview.info.teacher else "absent"),
                html.Td(overview.lessons, className="number"),
                html.Td(overview.roster, className="number"),
                _date_cell(overview.first_lesson),
                _date_cell(overview.last_lesson),
            ]
        )
        for overview in overviews
    ]
    return html.Div(
        [
            html.H1("Classes"),
            html.P(f"Dates in {zone_label()}.", className="subtitle"),
            html.Div(
                html.Table(
                    [html.Thead(html.Tr([html.Th(label) for label in header])), html.Tbody(rows)],
                    id=CLASS_LIST,
                    className="table",
                ),
                className="card",
            ),
        ]
    )


def _date_cell(moment: Any) -> html.Td:
    return html.Td("—", className="absent") if moment is None else html.Td(local_time(moment, with_date=True)[:10])


def _term(engine: Engine, info: ClassInfo) -> tuple[list[SessionInfo], pd.DataFrame]:
    """The class's lessons and analytics.term.term_rows of its roster over them. Only lessons owned by the
    class's teacher count: a session an admin gave to another teacher stays out of sight of the class's."""
    lessons = _own_lessons(engine, info)
    config = engagement_config()
    per_lesson = {lesson.id: lesson_table(engine, lesson, config) for lesson in lessons}
    # Read again: computing a lesson's report stores its mean engagement (the lessons table shows it); a lesson
    # begun meanwhile waits for the next view.
    lessons = [lesson for lesson in _own_lessons(engine, info) if lesson.id in per_lesson]
    return lessons, term_rows(lessons, roster_links(engine, info.id), per_lesson)


def _own_lessons(engine: Engine, info: ClassInfo) -> list[SessionInfo]:
    return [lesson for lesson in class_lessons(engine, info.id) if lesson.teacher == info.teacher]


def _class_heading(info: ClassInfo, lessons: list[SessionInfo], links: dict[str, str]) -> html.Div:
    span = (
        f"{len(lessons)} lesson(s), {local_time(lessons[0].started_at, with_date=True)[:10]} to "
        f"{local_time(lessons[-1].started_at, with_date=True)[:10]}"
        if lessons
        else "no lessons yet"
    )
    return html.Div(
        [
            html.H1(info.name),
            html.P(
                [f"Teacher {info.teacher or '— (admins only)'} · {span} · ", html.Span(f"times in {zone_label()}")],
                className="subtitle",
            ),
            html.P([dcc.Link(label, href=href) for label, href in links.items()], className="links"),
        ],
        className="session-heading",
    )


def class_page(engine: Engine, info: ClassInfo) -> html.Div:
    lessons, rows = _term(engine, info)
    heading = _class_heading(info, lessons, ELSEWHERE)
    if rows.empty:
        text = (
            "No lessons of this class have been recorded yet."
            if not lessons
            else "No name has been read in its lessons yet, so its roster is empty."
        )
        return html.Div([heading, html.P(text, className="card placeholder")])
    roster = roster_table(rows)
    explained = html.P(
        "Each number is the one the lesson's report gives the student: time in class counts a face or a camera-off "
        "tile; engagement is the mean over the time their face showed; a lesson's cell opens its report on the "
        "student.",
        className="subtitle",
    )
    return html.Div(
        [
            heading,
            html.Div(
                [
                    html.H2("Students over the term"),
                    explained,
                    html.Div(_roster(info.id, roster, rows, lessons), className="table-scroll"),
                ],
                className="card",
            ),
            html.Div([html.H2("Lessons"), _lessons(rows, lessons)], className="card"),
        ],
        className="class-page",
    )


def _score_cell(score: Any) -> html.Td:
    if score is None or pd.isna(score):
        return html.Td("—", className="number absent", title="no face time to score")
    return html.Td(f"{float(score):.2f}", className="number", style=_score_style(float(score)))


def _score_style(score: float) -> dict[str, str]:
    return {"backgroundColor": engagement_color(score), "color": engagement_text_color(score)}


def _share_cell(share: Any) -> html.Td:
    return (
        html.Td("—", className="number absent")
        if share is None or pd.isna(share)
        else html.Td(percent(float(share)), className="number")
    )


def _seconds_cell(seconds: Any) -> html.Td:
    return html.Td(duration(timedelta(seconds=float(seconds))), className="number")


def _roster(class_id: int, roster: pd.DataFrame, rows: pd.DataFrame, lessons: list[SessionInfo]) -> html.Table:
    """The term of every roster student, then their engagement in each lesson (the lesson's report on them)."""
    fixed = ["Student", "Lessons attended", "In class", "Camera off", "Attentive", "Engagement", "Flags"]
    lesson_heads = [
        html.Th(
            dcc.Link(local_time(lesson.started_at, with_date=True)[5:10], href=report_path(lesson.name)),
            title=f"{lesson.name}: its report",
            className="lesson-column",
        )
        for lesson in lessons
    ]
    body = []
    for student in _records(roster):
        theirs = rows[rows["class_student_id"] == student.class_student_id].set_index("session_id")
        cells = [
            html.Td(dcc.Link(student.name, href=student_path(class_id, student.class_student_id))),
            html.Td(f"{student.attended} of {student.lessons}", className="number"),
            _seconds_cell(student.seconds_in_class),
            _share_cell(student.camera_off_share),
            _share_cell(student.attentive_share),
            _score_cell(student.engagement),
            html.Td(student.flags, className="number"),
        ]
        cells += [_lesson_cell(lesson, theirs.loc[lesson.id].to_dict()) for lesson in lessons]
        body.append(html.Tr(cells))
    header = html.Tr([html.Th(label) for label in fixed] + lesson_heads)
    return html.Table([html.Thead(header), html.Tbody(body)], id=ROSTER, className="table roster")


def _lesson_cell(lesson: SessionInfo, row: dict[Any, Any]) -> html.Td:
    """A roster student's engagement in one lesson, opening the lesson's report on them; "absent" when not in it."""
    if not row["attended"]:
        return html.Td("absent", className="number absent", title=f"not in {lesson.name}")
    link_to = lesson_student_path(lesson.name, row["students"])
    said = f"{lesson.name}: the report on them"
    score = row["engagement"]
    if score is None or pd.isna(score):
        return html.Td(dcc.Link("—", href=link_to), className="number absent", title=said)
    shown = dcc.Link(f"{float(score):.2f}", href=link_to, className="lesson-link")
    return html.Td(shown, className="number", style=_score_style(float(score)), title=said)


def _lessons(rows: pd.DataFrame, lessons: list[SessionInfo]) -> html.Table:
    header = ["Date", "Session", "Students attended", "Class engagement", ""]
    body = []
    for lesson in lessons:
        attended = int(rows.loc[rows["session_id"] == lesson.id, "attended"].sum())
        body.append(
            html.Tr(
                [
                    html.Td(local_time(lesson.started_at, with_date=True)),
                    html.Td(lesson.name),
                    html.Td(f"{attended} of {rows['class_student_id'].nunique()}", className="number"),
                    _score_cell(lesson.mean_engagement)
                    if lesson.mean_engagement is not None
                    else html.Td("—", className="number absent", title="computed when its report is opened"),
                    html.Td(dcc.Link("report", href=report_path(lesson.name))),
                ]
            )
        )
    return html.Table(
        [html.Thead(html.Tr([html.Th(label) for label in header])), html.Tbody(body)], id=LESSONS, className="table"
    )


def term_page(engine: Engine, info: ClassInfo, class_student_id: int) -> html.Div:
    """One roster student's term; an unknown roster student (or one of another class) gets a message."""
    lessons, rows = _term(engine, info)
    term = student_term(rows, class_student_id)
    if term.empty:
        return message_page(
            "Unknown student",
            f"Class {info.name} has no student number {class_student_id}.",
            {info.name: class_path(info.id)},
        )
    name = str(term["name"].iloc[0])
    totals = roster_table(term).iloc[0]
    heading = html.Div(
        [
            html.H1(name),
            html.P(
                [
                    f"{info.name} · teacher {info.teacher or '— (admins only)'} · ",
                    html.Span(f"times in {zone_label()}"),
                ],
                className="subtitle",
            ),
            html.P(
                [dcc.Link(f"Back to {info.name}", href=class_path(info.id)), dcc.Link("All classes", href=PATH)],
                className="links",
            ),
        ],
        className="session-heading",
    )
    return html.Div(
        [
            heading,
            dcc.Store(id=TERM_STUDENT, data={"class": info.id, "student": class_student_id}),
            html.Div(_term_summary(totals), id=TERM_SUMMARY, className="term-summary"),
            html.Div(
                [
                    html.H2("Engagement lesson by lesson"),
                    dcc.Graph(
                        id=TERM_CHART,
                        figure=term_chart(term),
                        config=STATIC_GRAPH,
                        style={"height": f"{CHART_HEIGHT_PX}px"},
                    ),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Lessons"),
                            html.Button("Download CSV", id=DOWNLOAD_TERM_BUTTON, className="no-print"),
                            dcc.Download(id=DOWNLOAD_TERM),
                        ],
                        className="section-heading",
                    ),
                    html.Div(_term_table(term), className="table-scroll"),
                ],
                className="card",
            ),
            html.Div([html.H2("Flags raised"), _flag_list(term)], className="card"),
        ],
        className="term-page",
    )


def _term_summary(totals: pd.Series) -> list[html.Div]:
    """The term in five numbers, each the sum or time-weighted mean of the lessons' (analytics.term)."""
    engagement = totals["engagement"]
    facts = [
        ("Lessons attended", f"{totals['attended']} of {totals['lessons']}"),
        ("Time in class", duration(timedelta(seconds=float(totals["seconds_in_class"])))),
        ("Camera off", "—" if pd.isna(totals["camera_off_share"]) else percent(float(totals["camera_off_share"]))),
        ("Attentive", "—" if pd.isna(totals["attentive_share"]) else percent(float(totals["attentive_share"]))),
        ("Engagement", "—" if pd.isna(engagement) else f"{float(engagement):.2f}"),
        ("Flags raised", str(totals["flags"])),
    ]
    return [
        html.Div([html.Span(label, className="fact-label"), html.Strong(value)], className="fact")
        for label, value in facts
    ]


def _term_table(term: pd.DataFrame) -> html.Table:
    header = [
        "Date",
        "Session",
        "Attended",
        "Joined",
        "Left",
        "In class",
        "Camera off",
        "Attentive",
        "Engagement",
        "Flags",
        "",
    ]
    body = []
    for row in _records(term):
        started = local_time(row.started_at, with_date=True)
        if not row.attended:
            body.append(
                html.Tr(
                    [html.Td(started), html.Td(row.session), html.Td("absent", className="absent")]
                    + [html.Td("") for _ in header[3:-1]]
                    + [html.Td(dcc.Link("report", href=report_path(row.session)))],
                    className="absent-row",
                )
            )
            continue
        flags = html.Td(row.flags, className="number", title="; ".join(map(flag_sentence, row.flag_list)) or "no flags")
        body.append(
            html.Tr(
                [
                    html.Td(started),
                    html.Td(row.session),
                    html.Td("yes"),
                    html.Td(local_time(row.joined)),
                    html.Td(local_time(row.left)),
                    _seconds_cell(row.seconds_in_class),
                    _seconds_cell(row.seconds_camera_off),
                    _share_cell(row.attentive_share),
                    _score_cell(row.engagement),
                    flags,
                    html.Td(dcc.Link("View in report", href=lesson_student_path(row.session, row.students))),
                ]
            )
        )
    return html.Table(
        [html.Thead(html.Tr([html.Th(label) for label in header])), html.Tbody(body)], id=TERM_TABLE, className="table"
    )


def _flag_list(term: pd.DataFrame) -> html.Ul | html.P:
    """Every flag of the term with its lesson, worded as the lesson's report words it: in the viewer's time
    zone, like the rest of the page (the CSV keeps ISO UTC)."""
    items = [
        html.Li([html.Strong(f"{row.session}: "), flag_sentence(flag)])
        for row in _records(term)
        for flag in row.flag_list
        if row.attended
    ]
    return html.Ul(items, id=TERM_FLAGS, className="flag-reasons") if items else html.P("None.", id=TERM_FLAGS)


def term_chart(term: pd.DataFrame) -> go.Figure:
    """Engagement and attentive share per lesson, lessons evenly spaced (a gap in the dates is no gap in the
    term); a lesson missed is marked on the axis, the lines drawn across it."""
    labels = [local_time(started, with_date=True)[:10] for started in term["started_at"]]
    present = term["attended"].astype(bool)
    figure = go.Figure()
    figure.add_scatter(
        x=labels,
        y=term["engagement"].astype(float).where(present),
        mode="lines+markers",
        name="engagement",
        line={"color": ENGAGEMENT_LINE_COLOR, "width": 3},
        connectgaps=True,
    )
    figure.add_scatter(
        x=labels,
        y=term["attentive_share"].astype(float).where(present),
        mode="lines+markers",
        name="attentive share",
        line={"color": ENGAGEMENT_LINE_COLOR, "width": 1.5, "dash": "dot"},
        connectgaps=True,
    )
    missed = [label for label, was in zip(labels, present, strict=True) if not was]
    if missed:
        figure.add_scatter(
            x=missed,
            y=[0.02] * len(missed),
            mode="markers+text",
            name="absent",
            marker={"color": ENGAGEMENT_LINE_COLOR, "symbol": "x", "size": 10},
            text=["absent"] * len(missed),
            textposition="top center",
        )
    figure.update_layout(
        CHART_LAYOUT,
        height=CHART_HEIGHT_PX,
        yaxis={"range": [0, 1.05], "title": "0 to 1"},
        xaxis={"type": "category", "title": None},
        legend={"orientation": "h", "y": 1.12},
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
    )
    return figure


def term_download(engine: Engine, viewer: User, chosen: Any) -> TextDownload:
    """The student's term as CSV (analytics.term.term_file), if `viewer` may see the class; otherwise nothing."""
    if (
        not isinstance(chosen, dict)
        or not isinstance(chosen.get("class"), int)
        or not isinstance(chosen.get("student"), int)
    ):
        raise PreventUpdate
    try:
        info = visible_class(engine, viewer, chosen["class"])
        term = student_term(_term(engine, info)[1], chosen["student"])
    except (UnknownClassError, DatabaseError):
        raise PreventUpdate from None
    if term.empty:
        raise PreventUpdate
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{info.name}-{term['name'].iloc[0]}")
    return csv_download(term_file(term), f"{stem}-term.csv", **CSV_FORMAT)


def _records(table: pd.DataFrame) -> list[Any]:
    """The table's rows as named tuples (pandas-stubs type their fields as any scalar at all)."""
    return list(table.itertuples(index=False))
