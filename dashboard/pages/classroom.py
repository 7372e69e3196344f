"""The "Start class" page: on the teacher's own computer, choose the screen (or a part of it, dragged over the
preview) or the window the video call is on, see a live preview with the tiles and faces the real pipeline finds
outlined, start and stop the capture (dashboard.capture_control: `python -m capture` as a child process writing
into this dashboard's database) and follow its status: frames recorded, faces, the last frame's time, and errors
in capture's own words.

Offered only where the dashboard is the teacher's own ([dashboard.classroom] enabled, served on a loopback host
and not behind a TLS proxy): a dashboard other computers reach must never watch its own screen for them.
A teacher sees and stops only the capture they started; an admin any; signed-out visitors get nothing
(dashboard.auth signs every request in first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

import config
from capture.errors import CaptureError
from dashboard.__main__ import is_loopback
from dashboard.access import can_see, current_user, is_admin
from dashboard.capture_control import CaptureControl, CaptureRequest, CaptureRun, CaptureStartError
from dashboard.components import live_path, message_page
from dashboard.data_attributes import with_data
from dashboard.formatting import local_time, zone_label
from dashboard.preview import Choice, Preview, choices, monitors, part_from_drag, source_spec
from db.classes import list_classes
from db.errors import DatabaseError
from db.queries import UnknownSessionError, find_session
from db.users import User

PATH = "/classroom"
SOURCE = "classroom-source"  # Dropdown: a screen or a window (preview.Choice's value: a capture.sources spec)
PART = "classroom-part"  # the four inputs of a part of the screen: f"{PART}-x", -y, -w, -h
PART_FIELDS = ("x", "y", "w", "h")
DRAG = "classroom-drag"  # Store: the rectangle dragged over the preview, as fractions (assets/classroom_region.js)
WHOLE = "classroom-whole"  # Button: forget the part, watch the whole screen
SESSION = "classroom-session"  # Input: the session's name
CLASS = "classroom-class"  # Input: the class it belongs to (optional), offered the viewer's classes
CLASS_CHOICES = "classroom-class-choices"  # the Datalist of the viewer's classes
START = "classroom-start"
STOP = "classroom-stop"
MESSAGE = "classroom-message"  # what the last Start or Stop did, or why it did nothing
FIRST_FRAME_COMING = "the first frame comes once the models have loaded (a few seconds)."
STOPPING = "Stopping: the last frames are being written."
STATUS = "classroom-status"
STATE = "classroom-state"  # one line; data-state: idle, busy, starting, running, stopping, ended, failed
FRAMES = "classroom-frames"
FACES = "classroom-faces"
LAST_FRAME = "classroom-last-frame"
ERRORS = "classroom-errors"
LIVE_LINK = "classroom-live-link"
PREVIEW = "classroom-preview"  # the img
PREVIEW_CLASS = "classroom-preview"  # its class; with "paused" while a capture runs, "croppable" for a screen
PREVIEW_NOTE = "classroom-preview-note"  # what the preview found, or why there is none
TICK = "classroom-tick"
# The part of the screen as the page's four inputs give it: x, y, width, height, each None when empty.
Part = tuple[int | None, int | None, int | None, int | None]


def offered() -> bool:
    """Whether this dashboard may watch its own screen: see the module docstring and [dashboard.classroom]."""
    served = config.chosen().dashboard
    return served.classroom.enabled and is_loopback(served.host) and not served.behind_tls_proxy


def nav_links() -> list[dcc.Link]:
    """The navigation bar's link to this page, where it is offered."""
    return [dcc.Link("Start class", href=PATH)] if offered() else []


def layout(engine: Engine, viewer: User) -> html.Div:
    if not offered():
        return message_page(
            "Start class is not available here",
            "This dashboard is reached from other computers, so it never watches its own screen. Start the class "
            "on the teacher's computer: its own dashboard (python -m dashboard) has this page, or run python -m "
            "capture there.",
            {"All sessions": "/sessions"},
        )
    try:
        offered_now = choices()
        problem = ""
    except CaptureError as error:
        offered_now, problem = [], str(error)
    try:
        classes = [found.name for found in list_classes(engine, viewer.name)]
    except DatabaseError:
        classes = []  # only the suggestions are missing: a class can still be typed
    return html.Div(
        [
            html.H1("Start class"),
            html.P(
                "ClassPulse watches this computer's screen, where the video call's gallery is, about once a second, "
                "and keeps numbers only: who is there, looking, eyes open, expression likelihoods. No picture of "
                "the screen or of a face is ever stored.",
                className="subtitle",
            ),
            html.Div(
                [
                    html.Div(
                        [_controls(viewer, offered_now, problem, classes), _status_card()], className="classroom-side"
                    ),
                    _preview_card(),
                ],
                className="classroom",
            ),
            dcc.Interval(id=TICK, interval=config.chosen().dashboard.classroom.preview_seconds * 1000),
            dcc.Store(id=DRAG),
        ]
    )


def _controls(viewer: User, offered_now: list[Choice], problem: str, classes: list[str]) -> html.Div:
    part_inputs = [
        html.Label(
            [label, dcc.Input(id=f"{PART}-{name}", type="number", min=0, step=1, debounce=True)],
            className="part-field",
        )
        for name, label in zip(PART_FIELDS, ("x", "y", "width", "height"), strict=True)
    ]
    return html.Div(
        [
            html.H2("1. What to watch"),
            html.Label("Screen or window with the video call", htmlFor=SOURCE),
            dcc.Dropdown(
                id=SOURCE,
                options=_options(offered_now),
                value=offered_now[0].value if offered_now else None,
                clearable=False,
                searchable=True,
                optionHeight=52,  # two lines: a window's title with its size
            ),
            html.P(
                "A window is followed wherever it is moved; keep it in view (a window covered by another is "
                "watched covered).",
                className="hint",
            ),
            html.P(problem, className="classroom-problem") if problem else None,
            html.Details(
                [
                    html.Summary("Only part of the screen (optional)"),
                    html.P(
                        "Drag over the preview around the gallery, or give pixels from the screen's top-left corner; "
                        "all four empty: the whole screen.",
                        className="hint",
                    ),
                    html.Div(part_inputs, className="part-fields"),
                    html.Button("Watch the whole screen", id=WHOLE, className="whole"),
                ]
            ),
            html.H2("2. Session"),
            html.Label("Session name", htmlFor=SESSION),
            dcc.Input(id=SESSION, type="text", value=default_session_name(viewer), className="session-name"),
            html.Label("Class (optional)", htmlFor=CLASS),
            dcc.Input(id=CLASS, type="text", list=CLASS_CHOICES, placeholder="e.g. 7B maths", className="session-name"),
            html.Datalist([html.Option(value=name) for name in classes], id=CLASS_CHOICES),
            html.P(
                f"Recorded as {viewer.name}'s. A class's lessons share one list of students, so a name fixed "
                "in one lesson stays fixed in the next.",
                className="hint",
            ),
            html.Div(
                [
                    html.Button("Start class", id=START, className="primary start"),
                    html.Button("Stop class", id=STOP, className="stop", disabled=True),
                ],
                className="classroom-buttons",
            ),
            html.P(id=MESSAGE, className="classroom-message", role="status"),
        ],
        className="card classroom-controls",
    )


def _options(offered_now: list[Choice]) -> list[dcc.Dropdown.Options]:
    return [{"label": choice.label, "value": choice.value} for choice in offered_now]


def _status_card() -> html.Div:
    return html.Div([html.H2("Status"), html.Div(id=STATUS)], className="card classroom-status")


def _preview_card() -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.H2("Preview: what ClassPulse will watch"),
                    html.Span(
                        [
                            html.Span(className="swatch tile-swatch"),
                            "student tile",
                            html.Span(className="swatch face-swatch"),
                            "face found",
                        ],
                        className="legend",
                    ),
                ],
                className="section-heading",
            ),
            html.P("Looking at the screen…", id=PREVIEW_NOTE, className="hint"),
            html.Div(
                html.Img(
                    id=PREVIEW,
                    className=PREVIEW_CLASS,
                    alt="the chosen screen with tiles and faces outlined",
                    draggable="false",
                ),
                className="classroom-preview-frame",
            ),
            html.P(
                "This picture is drawn live for this page only: it is never saved, recorded or sent anywhere else.",
                className="hint never-stored",
            ),
        ],
        className="card classroom-preview-card",
    )


def default_session_name(viewer: User) -> str:
    return f"{viewer.name} {datetime.now():%Y-%m-%d %H:%M}"


def register(app: Dash, engine: Engine) -> None:
    if not offered():
        return
    settings = config.chosen()
    control = CaptureControl(engine, settings.dashboard.classroom)
    preview = Preview(settings.capture)
    # Start and Stop answer in a callback of their own: Dash drops the answer of a callback that is asked again
    # before it returns, so a Start slower than one tick (a busy laptop spawning the capture) would lose its message.
    app.callback(
        Output(STATUS, "children"),
        Output(START, "disabled"),
        Output(STOP, "disabled"),
        Output(MESSAGE, "children", allow_duplicate=True),
        Input(TICK, "n_intervals"),
        State(MESSAGE, "children"),
        prevent_initial_call="initial_duplicate",
    )(lambda _tick, message: shown_status(control, current_user(), message))
    app.callback(
        Output(STATUS, "children", allow_duplicate=True),
        Output(MESSAGE, "children"),
        Output(START, "disabled", allow_duplicate=True),
        Output(STOP, "disabled", allow_duplicate=True),
        Input(START, "n_clicks"),
        Input(STOP, "n_clicks"),
        State(SOURCE, "value"),
        *(State(f"{PART}-{name}", "value") for name in PART_FIELDS),
        State(SESSION, "value"),
        State(CLASS, "value"),
        prevent_initial_call=True,
    )(
        lambda _start, _stop, source, x, y, w, h, session, class_name: act(
            engine,
            control,
            current_user(),
            callback_context.triggered_id,
            source,
            (x, y, w, h),
            session,
            class_name,
        )
    )
    app.callback(
        Output(PREVIEW, "src"),
        Output(PREVIEW, "className"),
        Output(PREVIEW_NOTE, "children"),
        Input(TICK, "n_intervals"),
        Input(SOURCE, "value"),
        *(Input(f"{PART}-{name}", "value") for name in PART_FIELDS),
    )(lambda _tick, source, x, y, w, h: look(control, preview, source, (x, y, w, h)))
    app.callback(
        Output(SOURCE, "options"),
        Input(TICK, "n_intervals"),
        State(SOURCE, "options"),
    )(lambda _tick, shown: refreshed_options(shown))
    app.callback(
        *(Output(f"{PART}-{name}", "value") for name in PART_FIELDS),
        Input(DRAG, "data"),
        Input(WHOLE, "n_clicks"),
        Input(SOURCE, "value"),
        prevent_initial_call=True,
    )(lambda drag, _whole, source: chosen_part(callback_context.triggered_id, drag, source))


@dataclass(frozen=True)
class Answer:
    """The status card, the action's message, and whether Start and Stop are disabled."""

    status: html.Div
    message: str
    start_disabled: bool
    stop_disabled: bool


def shown_status(control: CaptureControl, viewer: User, message: object) -> tuple[html.Div, bool, bool, object]:
    """The status card, whether Start and Stop are disabled, and the message, as a tick shows them. A message
    that says what is under way goes once the status shows it done (Start's "the first frame comes…" once a
    frame came or the capture ended, Stop's once it ended); any other is left as it is."""
    run = control.current()
    answer = status(run, viewer, "")
    ended = run is None or not run.running
    framed = run is not None and run.frames > 0
    done = (message == STOPPING and ended) or (
        isinstance(message, str) and message.endswith(FIRST_FRAME_COMING) and (ended or framed)
    )
    return answer.status, answer.start_disabled, answer.stop_disabled, "" if done else no_update


def act(
    engine: Engine,
    control: CaptureControl,
    viewer: User,
    trigger: object,
    source: str | None,
    part: Part,
    session: object,
    class_name: object = None,
) -> tuple[html.Div, str, bool, bool]:
    """Start or Stop as `viewer` asked (`trigger`: the button's id), then the status as they may see it."""
    message = ""
    if trigger == START:
        message = start(engine, control, viewer, source, part, session, class_name)
    elif trigger == STOP:
        message = stop(control, viewer)
    answer = status(control.current(), viewer, message)
    return answer.status, answer.message, answer.start_disabled, answer.stop_disabled


def start(
    engine: Engine,
    control: CaptureControl,
    viewer: User,
    source: str | None,
    part: Part,
    session: object,
    class_name: object = None,
) -> str:
    """Start a capture for `viewer` (the session's owner) of `source` (a preview.Choice's value) or `part` of it;
    what happened, or why nothing did, in one line."""
    name = _text(session) or default_session_name(viewer)
    try:
        spec = capture_spec(source, _whole_or_part(part))
        continued = _continues_their_session(engine, viewer, name)
        control.start(CaptureRequest(spec, name, viewer.name, _text(class_name) or None))
    except (CaptureError, CaptureStartError, DatabaseError) as error:
        return f"Not started: {error}."
    how = "Continuing" if continued else "Starting"
    return f"{how} {name!r}: {FIRST_FRAME_COMING}"


def stop(control: CaptureControl, viewer: User) -> str:
    run = control.current()
    if run is None or not run.running:
        return "Nothing to stop: no class is being captured."
    if not _may_see(viewer, run):
        return "Not stopped: this capture was started by someone else; only they or an admin can stop it."
    control.stop()
    return STOPPING


def status(run: CaptureRun | None, viewer: User, message: str) -> Answer:
    """The status card for `viewer`: their own capture in full, another teacher's only as "busy"."""
    if run is None or (not _may_see(viewer, run) and not run.running):
        idle = "Not capturing. Choose the screen, check the preview, then press Start class."
        return Answer(_state("idle", idle), message, False, True)
    if not _may_see(viewer, run):
        busy = "Another class is being captured on this computer. One capture at a time: it must stop first."
        return Answer(_state("busy", busy), message, True, True)
    name = run.request.session
    if run.running and run.stop_requested:
        state = _state("stopping", f"Stopping {name!r}: writing the last frames…")
    elif run.running and not run.frames:
        state = _state("starting", f"Starting {name!r}: loading the face and expression models…")
    elif run.running:
        state = _state("running", f"Capturing {name!r} since {local_time(run.started_at)}.")
    else:
        state = _state("ended" if run.exit_code == 0 or run.stop_requested else "failed", run.outcome())
    last = "—" if run.last_frame_at is None else f"{local_time(run.last_frame_at)} ({zone_label()})"
    facts = html.Dl(
        [
            html.Dt("Frames recorded"),
            html.Dd(str(run.frames), id=FRAMES),
            html.Dt("Faces in the last frame"),
            html.Dd("—" if run.last_faces is None else str(run.last_faces), id=FACES),
            html.Dt("Last frame"),
            html.Dd(last, id=LAST_FRAME),
        ],
        className="classroom-facts",
    )
    parts: list[html.Div | html.Dl | html.P | html.Pre] = [state, facts]
    if run.frames:
        parts.append(html.P(dcc.Link(f"Open the live page of {name}", href=live_path(name), id=LIVE_LINK)))
    if run.errors:
        parts.append(html.Pre("\n".join(run.errors), id=ERRORS, className="classroom-errors"))
    return Answer(html.Div(parts), message, run.running, not run.running or run.stop_requested)


def look(control: CaptureControl, preview: Preview, source: str | None, part: Part) -> tuple[object, str, str]:
    """The preview's picture (None: none; no_update: keep the one shown), its class and its note. Paused while
    a capture runs, the last picture dimmed: the capture is watching, and the teacher's laptop needs its cores
    for the call and the capture."""
    run = control.current()
    if run is not None and run.running:
        paused = "Preview paused while the class is captured: the status shows what the capture finds."
        return no_update, PREVIEW_CLASS + " paused", paused
    try:
        chosen = _chosen(source)
        whole_or_part = _whole_or_part(part)
        if whole_or_part is not None:
            capture_spec(source, whole_or_part)  # the same refusal as Start's, for a part that does not fit
        picture = preview.look(chosen.value, whole_or_part)
    except CaptureError as error:
        return None, PREVIEW_CLASS, f"No preview: {error}."
    if picture is None:
        raise PreventUpdate  # another tab's look is under way: this one keeps its picture until the next tick
    shown_as = PREVIEW_CLASS if chosen.is_window else f"{PREVIEW_CLASS} croppable"
    note = (
        f"{picture.tiles} student tile(s) and {picture.faces} face(s) found on this {picture.width}×{picture.height} "
        f"area ({picture.layout} layout)."
    )
    if not picture.tiles and not picture.faces:
        note += " Is the video call's gallery on this screen?"
    return picture.uri, shown_as, note


def refreshed_options(shown: object) -> object:
    """The screens and windows there are now (a window opened or closed since the page was), or no_update when
    they are what the list already shows: a list redrawn under a teacher's pointer would close on them."""
    try:
        now = _options(choices())
    except CaptureError:
        return no_update
    return no_update if now == shown else now


def chosen_part(trigger: object, drag: object, source: str | None) -> tuple[int | None, ...]:
    """The part inputs' values after a drag over the preview (in the screen's pixels), or all empty after "Watch
    the whole screen" or another screen or window chosen (a part of one is no part of another). A drag over a
    window's preview, or one too small, changes nothing."""
    if trigger in (WHOLE, SOURCE):
        return (None,) * len(PART_FIELDS)
    try:
        chosen = _chosen(source)
    except CaptureError:
        raise PreventUpdate from None
    part = None if chosen.is_window else part_from_drag(drag, chosen.width, chosen.height)
    if part is None:
        raise PreventUpdate
    return part


def capture_spec(source: str | None, part: tuple[int, int, int, int] | None) -> str:
    """capture's --source for the screen or window `source` names, or `part` of that screen; CaptureError (one
    line) for one that is gone or a part that does not fit."""
    chosen = _chosen(source)
    if not chosen.is_window:
        number = int(chosen.value.removeprefix("screen:"))
        return source_spec(next(m for m in monitors() if m.number == number), part)
    if part is not None:
        raise CaptureError(
            "a window is watched whole, wherever it moves: for part of it, choose its screen and drag over the part"
        )
    return chosen.value


def _text(value: object) -> str:
    """A text field's value, stripped; a request may carry another type (a number), which is taken as written."""
    return "" if value is None else str(value).strip()


def _may_see(viewer: User, run: CaptureRun) -> bool:
    return is_admin(viewer) or run.request.teacher == viewer.name


def _state(kind: str, text: str) -> html.Div:
    return with_data(html.Div(text, id=STATE, className=f"classroom-state {kind}"), {"data-state": kind})


def _chosen(source: str | None) -> Choice:
    """The screen or window `source` names as it is now; CaptureError when it is gone (or none was chosen)."""
    if not source:
        raise CaptureError("choose the screen or window with the video call")
    found = [choice for choice in choices() if choice.value == source]
    if found:
        return found[0]
    if source.startswith("screen:"):
        raise CaptureError(f"there is no screen {source.removeprefix('screen:')} on this computer now; choose one")
    raise CaptureError("that window is closed or hidden now; choose it again from the list")


def _whole_or_part(part: Part) -> tuple[int, int, int, int] | None:
    given = [value for value in part if value is not None]
    if not given:
        return None
    if len(given) < len(part):
        raise CaptureError("give all four numbers of the part (x, y, width, height), or none for the whole screen")
    x, y, w, h = (int(value) for value in given)
    return x, y, w, h


def _continues_their_session(engine: Engine, viewer: User, name: str) -> bool:
    """Whether `name` is a session of `viewer`'s that capture will continue. A name that is another teacher's
    session is refused (CaptureError): capture would continue it, into their class."""
    try:
        existing = find_session(engine, name)
    except UnknownSessionError:
        return False
    if not can_see(viewer, existing):
        raise CaptureError(f"the name {name!r} is taken by another teacher's session; choose another")
    return True
