"""The callbacks: URL -> page, the live page's refresh tick and flag acknowledgements, and the report's CSV
downloads, print button and student fix-ups.

Each callback is a plain function of the engine and its inputs (tested directly); `register_callbacks`
wires them to component ids. Database problems become a message on the page, never an error page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pandas as pd
from dash import MATCH, Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from analytics.export import export_table
from analytics.report import CSV_FORMAT, engagement_drops, students_file
from analytics.timeline import dominant_emotions
from dashboard import ids
from dashboard.access import current_user, visible_session, visible_sessions, visible_summaries
from dashboard.figures import engagement_heatmap, message_figure, mood_now_chart, mood_timeline
from dashboard.formatting import duration, local_time
from dashboard.layout import (
    TREND_SECONDS,
    engagement_now,
    flag_list,
    live_page,
    message_page,
    no_sessions_page,
    report_page,
    session_rows,
    sessions_page,
    student_cards,
)
from dashboard.live import SPARKLINE_SECONDS, LiveState, LiveView, engagement_config, parse_flag_id, refresh
from dashboard.report_cache import report_tables
from db.errors import DatabaseError
from db.queries import (
    SessionInfo,
    UnknownSessionError,
    acknowledge_flag,
    find_session,
    frame_count,
    session_summaries,
    student_rows,
)
from db.students import merge_students, rename_student
from db.users import User

# A running capture writes a frame every second or so; this much silence means it has stopped.
STALE_SECONDS = 10
WHOLE_SESSION = "all"
MAX_RULE_LENGTH = 20  # db.schema.FlagAcknowledgementRecord.rule
ELSEWHERE = {"All sessions": "/sessions", "Newest session": "/"}


def register_callbacks(app: Dash, engine: Engine) -> None:
    # Each callback serves the signed-in user only the sessions they may see (dashboard.access).
    app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "pathname"))(
        lambda pathname: render_page(engine, pathname, current_user())
    )
    app.callback(
        Output(ids.LIVE_STATE, "data"),
        Output(ids.LIVE_TIMELINE, "figure"),
        Output(ids.LIVE_STUDENT_COUNT, "children"),
        Output(ids.LIVE_NOW_CHART, "figure"),
        Output(ids.STUDENT_GRID, "children"),
        Output(ids.LIVE_BANNER, "children"),
        Output(ids.LIVE_BANNER, "hidden"),
        Output(ids.LIVE_ENGAGEMENT_NOW, "children"),
        Output(ids.FLAG_LIST, "children"),
        Input(ids.LIVE_INTERVAL, "n_intervals"),
        Input(ids.LIVE_WINDOW, "value"),
        State(ids.LIVE_SESSION, "data"),
        State(ids.LIVE_STATE, "data"),
    )(
        lambda _tick, window, session, stored: live_tick(
            engine, _checked(engine, session), window, stored, datetime.now(UTC)
        )
    )
    # Each button answers for itself; the next tick redraws the list from the database.
    app.callback(
        Output({"type": ids.FLAG_ACK, "index": MATCH}, "children"),
        Output({"type": ids.FLAG_ACK, "index": MATCH}, "disabled"),
        Input({"type": ids.FLAG_ACK, "index": MATCH}, "n_clicks"),
        State(ids.LIVE_SESSION, "data"),
        prevent_initial_call=True,
    )(
        lambda clicks, session: acknowledge(
            engine, _checked(engine, session), callback_context.triggered_id["index"], clicks, current_user()
        )
    )
    app.callback(Output(ids.SESSIONS_ROWS, "children"), Input(ids.SESSIONS_FILTER, "value"), prevent_initial_call=True)(
        lambda text: session_rows(filter_sessions(visible_summaries(session_summaries(engine), current_user()), text))
    )
    app.callback(
        Output(ids.DOWNLOAD_STUDENTS, "data"),
        Input(ids.DOWNLOAD_STUDENTS_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: students_download(engine, _checked(engine, {"name": name})["name"]))
    app.callback(
        Output(ids.DOWNLOAD_ROWS, "data"),
        Input(ids.DOWNLOAD_ROWS_BUTTON, "n_clicks"),
        State(ids.REPORT_SESSION, "data"),
        prevent_initial_call=True,
    )(lambda _clicks, name: rows_download(engine, _checked(engine, {"name": name})["name"]))
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
            _checked(engine, {"name": name})["name"],
            _clicked(renames, merges),
            student,
            new_name,
            keep,
            drop,
        )
    )


def filter_sessions(summaries: pd.DataFrame, text: str | None) -> pd.DataFrame:
    """The session_summaries rows whose name, source, teacher or local start date holds every word of `text`
    (case-insensitive, plain substrings: no pattern syntax reaches pandas or the database)."""
    words = (text or "").lower().split()
    if not words:
        return summaries
    haystack = (
        summaries["name"].fillna("")
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


def _checked(engine: Engine, session: dict[str, Any]) -> dict[str, Any]:
    """`session` ({"name", and "id" when given}) as the page sent it, if the signed-in user may see that session.

    The page's stores come from the browser, so they are checked again on every call; a refused call updates nothing.
    """
    try:
        visible = visible_session(engine, current_user(), session["name"])
    except UnknownSessionError:
        raise PreventUpdate from None
    if session.get("id", visible.id) != visible.id:
        raise PreventUpdate
    return session


def render_page(engine: Engine, pathname: str | None, viewer: User) -> html.Div:
    """The page for `pathname`: /, /live/<session>, /sessions, /report/<session>, or a helpful message.
    Only sessions `viewer` may see are shown or listed."""
    parts = [unquote(part) for part in (pathname or "/").strip("/").split("/") if part]
    try:
        match parts:
            case []:
                return _newest_live_page(engine, viewer)
            case ["sessions"]:
                return sessions_page(visible_summaries(session_summaries(engine), viewer))
            case ["live", name]:
                return live_page(visible_session(engine, viewer, name))
            case ["report", name]:
                return session_report(engine, visible_session(engine, viewer, name))
    except UnknownSessionError as error:
        return message_page("Unknown session", f"{error}.", ELSEWHERE)
    except DatabaseError as error:
        return message_page("Cannot read the database", str(error))
    return message_page("Page not found", f"There is no page at {pathname}.", ELSEWHERE)


def live_tick(
    engine: Engine, session: dict[str, Any], window: str, stored: dict[str, Any] | None, now: datetime
) -> tuple[Any, ...]:
    """One refresh of the live page: the state to keep, then the timeline, student count, mood chart,
    student grid, banner text, whether the banner is hidden, the class engagement line and the flag list."""
    window_s = None if window == WHOLE_SESSION else int(window)
    state = LiveState.from_json(stored) if stored else None
    if state is None or state.session_id != session["id"] or state.window_s != window_s:
        state = LiveState.start(session["id"], window_s)
    try:
        info = find_session(engine, session["name"])
        view = refresh(engine, state)
    except DatabaseError as error:
        problem = f"Cannot read the database: {error}"
        return (stored, message_figure(problem), "", message_figure(""), [], problem, False, "", [])
    banner = status_banner(info, view.latest_frame, now)
    return (
        view.state.to_json(),
        _live_timeline(view),
        f"{view.mood.students} student(s) seen, {view.mood.faces} face observation(s)",
        mood_now_chart(view.mood),
        _student_grid(view),
        banner,
        banner is None,
        engagement_now(*_engagement_trend(view.state.engagement)),
        flag_list(view.state.flags, view.acknowledged, view.latest_frame or now),
    )


def acknowledge(
    engine: Engine, session: dict[str, Any], flag: str, clicks: int | None, viewer: User
) -> tuple[str, bool]:
    """Store that `viewer` acknowledged `flag` (a dashboard.live.flag_id) of `session`; the button's new
    label and that it is disabled."""
    if not clicks:
        raise PreventUpdate
    try:
        student, rule, start = parse_flag_id(flag)
    except ValueError:
        raise PreventUpdate from None
    try:
        # The id comes from the browser: only a student of this session, and a rule name that fits its column.
        if student not in set(student_rows(engine, session["id"])["student"]) or len(rule) > MAX_RULE_LENGTH:
            raise PreventUpdate
        acknowledge_flag(engine, session["id"], student, rule, start, viewer.name)
    except DatabaseError:
        return "Not saved, try again", False
    return "Acknowledged", True


def status_banner(session: SessionInfo, latest_frame: datetime | None, now: datetime) -> str | None:
    """A plain sentence when the page is not showing a class as it happens; None when it is."""
    if latest_frame is None:
        return "Waiting for the first frame: capture has not sent any rows for this session yet."
    if session.ended_at is not None:
        return f"This session ended at {local_time(session.ended_at)}; showing its last recorded minutes."
    silence = now - latest_frame
    if silence > timedelta(seconds=STALE_SECONDS):
        return (
            f"Capture is not sending rows: the last one arrived at {local_time(latest_frame)} "
            f"({duration(silence)} ago). Check that `python -m capture` is still running."
        )
    return None


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


def _newest_live_page(engine: Engine, viewer: User) -> html.Div:
    newest = visible_sessions(engine, viewer)
    return live_page(newest[0]) if newest else no_sessions_page()


def _clicked(*clicks: int | None) -> str:
    """The id of the button that fired the callback. Dash also fires it when the report page (buttons
    included) is drawn into the page slot, prevent_initial_call notwithstanding: then nothing was clicked."""
    if not any(clicks):
        raise PreventUpdate
    return callback_context.triggered_id


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
    return report_page(
        session,
        mood_timeline(tables.emotion_counts, engagement=line),
        engagement_heatmap(tables.student_bins),
        engagement_drops(tables.class_bins),
        tables.students,
        notice,
    )


def _live_timeline(view: LiveView) -> Any:
    latest, window_s = view.latest_frame, view.state.window_s
    if latest is None:
        return message_figure("No frames yet.")
    shown = None if window_s is None else (latest - timedelta(seconds=window_s), latest)
    return mood_timeline(view.state.counts, shown, engagement=view.state.engagement)


def _engagement_trend(line: pd.Series) -> tuple[float | None, float | None]:
    """The latest class score, and its change since TREND_SECONDS before it (None without that history)."""
    if line.empty:
        return None, None
    latest = float(line.iloc[-1])
    earlier = line[line.index <= line.index[-1] - timedelta(seconds=TREND_SECONDS)]
    return latest, None if earlier.empty else latest - float(earlier.iloc[-1])


def _student_grid(view: LiveView) -> list[Any]:
    if view.students.empty:
        return [
            html.P(
                "No faces found yet in this session. Check that the video call shows the gallery view and that "
                "the capture covers it.",
                className="absent",
            )
        ]
    end = view.latest_frame or view.state.last_seen or datetime.now(UTC)
    dominant = dominant_emotions(view.state.student_counts)
    strips = {key: strip.droplevel("student") for key, strip in dominant.groupby(level="student")}
    flagged = {flag.student for flag in view.state.flags}
    return student_cards(
        view.students, strips, end - timedelta(seconds=SPARKLINE_SECONDS), end, view.state.scores, flagged
    )


def _file_stem(session_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", session_name) or "session"
