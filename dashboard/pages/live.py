"""The live class page, refreshed every [dashboard] live_refresh_seconds from analytics.live. Above the fold on a
laptop: the class now (engagement, its trend, who is there and attentive) and what needs attention (the flags grouped by
kind, most serious and longest first, a handful of lines), then a card per student saying in words what happened and
since when. Below: the class mood over time with its engagement line and the share of faces the model was unsure about,
the emotions of the last seconds with their 95 % bands, and every flag with what the teacher can do about it:
acknowledge it, snooze its student for [dashboard] snooze_minutes, or mute its kind for the class; the snoozes and mutes
in force are named under the needs-attention list, each with its undo. These decisions are stored (db.queries), so they
hold after a reload and in other tabs.

The class's tables are the server's, shared by every browser on the session (analytics.live.LiveHub), and so
is the page drawn from them: a browser keeps only the token of the page it shows, and a refresh that finds
nothing new sends only the banner; one that does sends only what changed since the page the browser shows
(dashboard.patches: a few cards' badges, the chart's newest bin), about a third of the page.
"Show emotions" is each user's own setting, kept in the browser's local storage under their name (not in the
database): without it, no emotion chart, strip, badge or emotion-based flag is drawn.

A refresh never starts while the previous one runs: the timer is switched off for the length of each
refresh (Dash's `running`), so a slow server or a busy machine makes refreshes less frequent instead of
queueing them. Every chart has a fixed height and shows "Loading…" until its first refresh answers.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import MATCH, Dash, Input, NoUpdate, Output, Patch, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Column, Engine, String

import config
from analytics.flags import EMOTION_RULES, Flag
from analytics.live import (
    ATTENTIVE,
    LIVE_HUB,
    SPARKLINE_SECONDS,
    SURE_PROBABILITY,
    LiveState,
    LiveView,
    engagement_config,
)
from analytics.live_flags import RULE_ORDER, ShownFlag, decided
from analytics.timeline import BIN_SECONDS, NOW_SECONDS, dominant_emotions
from dashboard import ids, row_values
from dashboard.access import current_user
from dashboard.checks import checked_session
from dashboard.components import STATIC_GRAPH, TIMELINE_GRAPH, emotion_badge, report_path, session_heading
from dashboard.data_attributes import with_data
from dashboard.figures import engagement_timeline, message_figure, mood_now_chart, mood_timeline, sparkline
from dashboard.formatting import duration, local_time, local_zone
from dashboard.patches import patch_for
from dashboard.report_cache import warm_report
from dashboard.theme import ABSENT_COLOR, EMOTION_COLORS, engagement_color, engagement_text_color
from db.errors import DatabaseError
from db.queries import (
    FlagSilence,
    SessionInfo,
    UnknownSilenceError,
    acknowledge_flag,
    acknowledged_flags,
    find_session,
    flag_silences_of,
    lift_silence,
    silence_flags,
    student_rows,
)
from db.schema import flag_acknowledgements, flag_silences
from db.users import User
from vocabulary.emotions import EMOTIONS

DEFAULT_WINDOW_SECONDS = 15 * 60
WHOLE_SESSION = "all"
WINDOW_CHOICES = {"Last 15 min": str(DEFAULT_WINDOW_SECONDS), "Last hour": "3600", "Whole session": WHOLE_SESSION}
# Options typed as Dash declares them, so a misspelt key fails the type check, not silently in the browser.
WINDOW_OPTIONS: list[dcc.RadioItems.Options] = [{"label": k, "value": v} for k, v in WINDOW_CHOICES.items()]
# Fixed chart heights: a graph sized by its container grew on every refresh while the page loaded.
TIMELINE_HEIGHT_PX = 360
NOW_CHART_HEIGHT_PX = 260
# A running capture writes a frame every second or so; this much silence means it has stopped.
STALE_SECONDS = 10
# A flag raised this recently, and not acknowledged, stands out in the list.
NEW_FLAG_SECONDS = 60
# The "Now" panel's trend compares the class score with this long ago; a smaller change reads as steady.
TREND_SECONDS = 60
TREND_STEADY = 0.02
# Student cards kept built (student_card): a few classes' worth, each card as one scoring pass left it.
CARDS_KEPT = 1024
# The "needs attention" list: at most this many kinds of flag, and this many names on a line.
ATTENTION_LINES = 5
NAMES_PER_LINE = 3
# How a flag's rule reads, for every flag of it (a mute, the "needs attention" list's count); a card and the flag
# list say what happened to that student (analytics.flags.Flag.cause).
RULE_WORDS: dict[str, tuple[str, str, str]] = {
    "absent": ("away", "student away", "students away"),
    "camera_off": ("camera off", "camera off", "cameras off"),
    "eyes_closed": ("eyes closed", "student with eyes closed", "students with eyes closed"),
    "looking_away": ("looking away", "student looking away", "students looking away"),
    "drop": ("engagement dropped", "engagement drop", "engagement drops"),
    "negative": ("looking unhappy", "student looking unhappy", "students looking unhappy"),
}
# How a student's state (analytics.live.LiveState.states) reads on their card when they show no face.
UNSEEN_STATES = {"camera_off": "camera off", "empty": "seat empty", "absent": "not in the call"}
# ... and with a face, for a viewer who hides emotions (the badge shows the emotion otherwise).
SEEN_STATES = {ATTENTIVE: "attentive", "face": "head turned away"}


def _stored_length(column: Column[Any]) -> int:
    """The most characters `column` (a bounded String column of db.schema) stores."""
    kind = column.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} is not a String column of bounded length")
    return kind.length


# The longest rule name an acknowledgement and a mute can store: a longer one in a browser's button id is refused.
MAX_RULE_LENGTH = min(_stored_length(flag_acknowledgements.c.rule), _stored_length(flag_silences.c.rule))
# The user's "show emotions" setting, by this name in the browser's preferences store and the switch.
SHOW_EMOTIONS_KEY = "show_emotions"
SHOW_EMOTIONS_OPTIONS: list[dcc.Checklist.Options] = [{"label": " Show emotions", "value": SHOW_EMOTIONS_KEY}]
# The page's frame, and its class when the viewer hides emotions (assets/live_preferences.css hides the rest).
PAGE_CLASS = "live-page"
HIDE_EMOTIONS_CLASS = "hide-emotions"


def flag_id(student: str, rule: str, start: datetime) -> str:
    """What names one flag (analytics.flags.Flag) to the browser: student key, rule and start (ISO 8601 UTC)."""
    return f"{student}|{rule}|{pd.Timestamp(start).isoformat()}"


def parse_flag_id(text: str) -> tuple[str, str, datetime]:
    """flag_id's (student, rule, start); student keys may hold "|", rules and times do not."""
    student, rule, start = text.rsplit("|", 2)
    return student, rule, datetime.fromisoformat(start)


def _shows(component: str, prop: str) -> Any:
    # Any as dataclasses.field gives it: one helper serves fields of every type.
    return field(metadata={"output": (component, prop)})


@dataclass(frozen=True)
class LiveOutputs:
    """What one refresh puts on the page: each field is the Dash output named in its metadata, so the
    callback's outputs and its answer come from one declaration (Dash takes them in field order). Any field may
    be Dash's no_update: what the browser shows stays (LiveOutputs.unchanged)."""

    state: str | None | NoUpdate = _shows(ids.LIVE_STATE, "data")  # names the page drawn: live_tick's token
    timeline: go.Figure | Patch | NoUpdate = _shows(ids.LIVE_TIMELINE, "figure")
    student_count: str | NoUpdate = _shows(ids.LIVE_STUDENT_COUNT, "children")
    now_chart: go.Figure | Patch | NoUpdate = _shows(ids.LIVE_NOW_CHART, "figure")
    student_grid: list[html.Div] | list[html.P] | Patch | NoUpdate = _shows(ids.STUDENT_GRID, "children")
    banner: str | None | NoUpdate = _shows(ids.LIVE_BANNER, "children")
    banner_hidden: bool | NoUpdate = _shows(ids.LIVE_BANNER, "hidden")
    presence: str | NoUpdate = _shows(ids.LIVE_PRESENCE, "children")
    page_class: str | NoUpdate = _shows(ids.LIVE_PAGE, "className")
    mood_card_hidden: bool | NoUpdate = _shows(ids.LIVE_MOOD_CARD, "hidden")
    needs_attention: list[html.Li] | Patch | NoUpdate = _shows(ids.NEEDS_ATTENTION, "children")
    engagement_now: str | NoUpdate = _shows(ids.LIVE_ENGAGEMENT_NOW, "children")
    flag_list: list[html.Li] | Patch | NoUpdate = _shows(ids.FLAG_LIST, "children")
    silenced: list[html.Span | str] | Patch | NoUpdate = _shows(ids.SILENCED, "children")

    @classmethod
    def outputs(cls) -> list[Output]:
        return [Output(*item.metadata["output"]) for item in fields(cls)]

    @classmethod
    def unchanged(cls) -> LiveOutputs:
        """Every output left as the browser has it."""
        return cls(*(no_update for _ in fields(cls)))

    def __iter__(self) -> Iterator[object]:
        # Not dataclasses.astuple: it deep-copies every figure.
        return iter([getattr(self, item.name) for item in fields(self)])

    def since(self, shown: LiveOutputs) -> LiveOutputs:
        """This page for a browser that shows `shown` (both drawn pages): each part the same there left as it is,
        each changed one sent as what changed (dashboard.patches); the token and banner as they are."""
        kept = {"state", "banner", "banner_hidden"}
        return LiveOutputs(
            *(
                getattr(self, item.name)
                if item.name in kept
                else patch_for(getattr(shown, item.name), getattr(self, item.name))
                for item in fields(self)
            )
        )


def register(app: Dash, engine: Engine) -> None:
    app.callback(
        *LiveOutputs.outputs(),
        Input(ids.LIVE_INTERVAL, "n_intervals"),
        Input(ids.LIVE_WINDOW, "value"),
        Input(ids.LIVE_PREFERENCES, "data"),
        State(ids.LIVE_SESSION, "data"),
        State(ids.LIVE_STATE, "data"),
        running=[(Output(ids.LIVE_INTERVAL, "disabled"), True, False)],
    )(
        lambda _tick, window, preferences, session, shown: tuple(
            live_tick(
                engine,
                checked_session(engine, session),
                window,
                shown,
                datetime.now(UTC),
                shows_emotions(preferences, current_user()),
                # Only the timer's refreshes, which never overlap, are sent as changes to the page shown.
                patch=callback_context.triggered_id == ids.LIVE_INTERVAL,
            )
        )
    )
    app.callback(
        Output(ids.LIVE_PREFERENCES, "data"),
        Output(ids.SHOW_EMOTIONS, "value"),
        Input(ids.SHOW_EMOTIONS, "value"),
        Input(ids.LIVE_PREFERENCES, "modified_timestamp"),
        State(ids.LIVE_PREFERENCES, "data"),
    )(lambda value, _stored_at, preferences: show_emotions_setting(value, preferences, current_user()))
    # Each button answers for itself; the next refresh redraws the lists from the database. The session is
    # checked again at every click: the store, and the button's id, come from the browser.
    for button, act in (
        (ids.FLAG_ACK, acknowledge),
        (ids.FLAG_SNOOZE, snooze),
        (ids.FLAG_MUTE, mute),
        (ids.LIFT_SILENCE, lift),
    ):
        app.callback(
            Output({"type": button, "index": MATCH}, "children"),
            Output({"type": button, "index": MATCH}, "disabled"),
            Input({"type": button, "index": MATCH}, "n_clicks"),
            State(ids.LIVE_SESSION, "data"),
            prevent_initial_call=True,
        )(
            lambda clicks, session, act=act: act(
                engine, checked_session(engine, session), callback_context.triggered_id["index"], clicks, current_user()
            )
        )


def shows_emotions(preferences: object, viewer: User) -> bool:
    """Whether `viewer` wants the emotion figures and flags, by the browser's preferences store (keyed by user
    name, as the browser sends it: anything but a clear "no" shows them)."""
    if not isinstance(preferences, dict):
        return True
    mine = preferences.get(viewer.name)
    return not (isinstance(mine, dict) and mine.get(SHOW_EMOTIONS_KEY) is False)


def show_emotions_setting(
    value: object, preferences: object, viewer: User
) -> tuple[dict[str, object] | NoUpdate, list[str] | NoUpdate]:
    """The "show emotions" switch and the browser's preferences store kept in step: a click is written to the
    store under `viewer`'s name (other users of the browser keep theirs); on opening the page, the switch
    shows what the store holds."""
    if callback_context.triggered_id == ids.SHOW_EMOTIONS:
        kept = dict(preferences) if isinstance(preferences, dict) else {}
        kept[viewer.name] = {SHOW_EMOTIONS_KEY: isinstance(value, list) and SHOW_EMOTIONS_KEY in value}
        return kept, no_update
    return no_update, [SHOW_EMOTIONS_KEY] if shows_emotions(preferences, viewer) else []


def layout(session: SessionInfo) -> html.Div:
    """The live class page, its charts and lists saying "Loading…" until the first refresh fills them."""
    return html.Div(
        [
            dcc.Store(id=ids.LIVE_SESSION, data={"id": session.id, "name": session.name}),
            dcc.Store(id=ids.LIVE_STATE),
            # In the browser, not the database: a user's own view of the page, kept across reloads and tabs.
            dcc.Store(id=ids.LIVE_PREFERENCES, storage_type="local"),
            dcc.Interval(id=ids.LIVE_INTERVAL, interval=round(config.chosen().dashboard.live_refresh_seconds * 1000)),
            session_heading(session, {"Session report": report_path(session.name), "All sessions": "/sessions"}),
            html.Div(id=ids.LIVE_BANNER, className="banner", hidden=True),
            html.Div(
                [
                    html.Section(
                        [
                            html.H2("The class now"),
                            html.P(id=ids.LIVE_ENGAGEMENT_NOW, className="engagement-now"),
                            html.P("Loading…", id=ids.LIVE_PRESENCE, className="presence"),
                            html.P(id=ids.LIVE_STUDENT_COUNT, className="absent"),
                            dcc.Checklist(
                                id=ids.SHOW_EMOTIONS,
                                options=SHOW_EMOTIONS_OPTIONS,
                                value=[SHOW_EMOTIONS_KEY],
                                className="show-emotions",
                            ),
                        ],
                        id=ids.LIVE_NOW,
                        className="card",
                    ),
                    html.Section(
                        [
                            html.H2("Needs attention"),
                            html.Ul(html.Li("Loading…", className="absent"), id=ids.NEEDS_ATTENTION),
                            html.P(id=ids.SILENCED, className="silenced-line"),
                            # The buttons are on each flag, below the fold on a laptop.
                            html.A(
                                "Acknowledge, snooze or mute a flag ↓", href=f"#{ids.FLAGS_CARD}", className="to-flags"
                            ),
                        ],
                        className="card needs-attention",
                    ),
                ],
                className="row now-row",
            ),
            html.Section(
                [
                    html.Div([html.H2("Students"), _legend()], className="section-heading"),
                    html.Div(html.P("Loading…", className="absent"), id=ids.STUDENT_GRID, className="student-grid"),
                ],
                className="card",
            ),
            html.Section(
                [
                    html.Div(
                        [
                            # Hidden with the emotions, the heading reads "Class engagement".
                            html.H2(["Class ", html.Span("mood and ", className="legend-emotion"), "engagement"]),
                            dcc.RadioItems(
                                id=ids.LIVE_WINDOW,
                                options=WINDOW_OPTIONS,
                                value=str(DEFAULT_WINDOW_SECONDS),
                                inline=True,
                                className="window-choice",
                            ),
                        ],
                        className="section-heading",
                    ),
                    _fixed_graph(ids.LIVE_TIMELINE, TIMELINE_HEIGHT_PX, TIMELINE_GRAPH),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.Section(
                        [
                            html.H2(f"Emotions in the last {NOW_SECONDS} s"),
                            _fixed_graph(ids.LIVE_NOW_CHART, NOW_CHART_HEIGHT_PX, STATIC_GRAPH),
                        ],
                        id=ids.LIVE_MOOD_CARD,
                        className="card",
                    ),
                    html.Section(
                        [
                            html.H2("Flags"),
                            html.Ul(html.Li("Loading…", className="absent"), id=ids.FLAG_LIST, className="flag-list"),
                        ],
                        id=ids.FLAGS_CARD,
                        className="card",
                    ),
                ],
                className="row",
            ),
        ],
        id=ids.LIVE_PAGE,
        className=PAGE_CLASS,
    )


def _legend() -> html.Div:
    """What the cards' colours mean: the engagement scale of their edge and badge, and the emotions of
    their strip."""
    steps = [engagement_color(step / 10) for step in range(11)]
    return html.Div(
        [
            html.Span("engagement 0", className="legend-end"),
            html.Span(className="legend-scale", style={"background": f"linear-gradient(to right, {', '.join(steps)})"}),
            html.Span("1", className="legend-end"),
            html.Span(className="legend-swatch", style={"background": ABSENT_COLOR}),
            html.Span("not measured (camera off, away)", className="legend-end"),
            html.Span(
                f"· strip: last {SPARKLINE_SECONDS // 60} min, by emotion ("
                f"“?”: model below {SURE_PROBABILITY:.0%} sure)",
                className="legend-end legend-emotion",
            ),
            *[
                html.Span(
                    [html.Span(className="legend-swatch", style={"background": EMOTION_COLORS[emotion]}), emotion],
                    className="legend-end legend-emotion",
                )
                for emotion in EMOTIONS
            ],
        ],
        className="legend",
    )


def _fixed_graph(graph_id: str, height_px: int, config: dcc.Graph.Config) -> dcc.Graph:
    """A chart of a fixed height that says it is loading until a refresh draws it."""
    return dcc.Graph(
        id=graph_id,
        figure=message_figure("Loading…"),
        config=config,
        responsive=True,
        style={"height": f"{height_px}px"},
    )


def live_tick(
    engine: Engine,
    session: dict[str, Any],
    window: str,
    shown: object,
    now: datetime,
    show_emotions: bool = True,
    patch: bool = False,
) -> LiveOutputs:
    """One refresh of the live page of `session` (checked by the caller) for a browser that shows the page
    named by the token `shown` (LiveOutputs.state; anything else: nothing yet). The class's tables come
    from analytics.live.LIVE_HUB, shared by every browser on the session; the page drawn from them is kept
    too (_drawn), so browsers in step draw it once. When the browser already shows it, only the banner,
    which ages with the clock, is sent. With `patch`, a browser showing a page still kept is sent only what
    differs from it (LiveOutputs.since): a refresh changes a few cards and the chart's last bin, and sending
    the whole page cost more than drawing it."""
    window_s = None if window == WHOLE_SESSION else int(window)
    try:
        info = find_session(engine, session["name"])
        # The lesson is over: its report is computed now, before the teacher opens it.
        warm_report(engine, info, engagement_config())
        shared = LIVE_HUB.view(engine, info, window_s)
        # The flags come from the last scoring pass; the decisions about them are read at every refresh.
        acknowledged = frozenset(acknowledged_flags(engine, session["id"]))
        silences = tuple(flag_silences_of(engine, session["id"]))
    except DatabaseError as error:
        problem = f"Cannot read the database: {error}"
        return LiveOutputs(
            state=None,
            timeline=message_figure(problem),
            student_count="",
            now_chart=message_figure(""),
            student_grid=[],
            banner=problem,
            banner_hidden=False,
            presence="",
            page_class=PAGE_CLASS,
            mood_card_hidden=True,
            needs_attention=[],
            engagement_now="",
            flag_list=[],
            silenced=[],
        )
    banner = status_banner(info, shared.view.latest_frame, now)
    # The page's times are in the viewer's zone: browsers in other zones get pages of their own.
    key = (shared.token, acknowledged, silences, show_emotions, str(local_zone()))
    token = f"{shared.token}-{hash(key[1:]) & 0xFFFFFFFF:x}"
    if shown == token:
        return dataclasses.replace(LiveOutputs.unchanged(), banner=banner, banner_hidden=banner is None)
    page = _drawn(key, token, lambda: _draw(shared.view, acknowledged, silences, show_emotions))
    before = _drawn.shown(shown) if patch else None
    if before is not None:
        page = page.since(before)
    return dataclasses.replace(page, state=token, banner=banner, banner_hidden=banner is None)


def _draw(
    view: LiveView,
    acknowledged: frozenset[tuple[str, str, datetime]],
    silences: tuple[FlagSilence, ...],
    show_emotions: bool,
) -> LiveOutputs:
    """The page of `view` with the teacher's decisions; the banner and token are the caller's. Without emotions
    (the viewer's setting), no emotion chart, strip or badge is drawn and no flag judged on emotions shown."""
    flags = [flag for flag in view.state.flags if show_emotions or flag.rule not in EMOTION_RULES]
    board = decided(flags, set(acknowledged), list(silences), view.latest_frame)
    at = view.latest_frame or view.state.last_seen or datetime.now(UTC)
    return LiveOutputs(
        state=None,
        timeline=_live_timeline(view, show_emotions),
        student_count=f"{view.mood.students} student(s) seen, {view.mood.faces} face observation(s)",
        now_chart=mood_now_chart(view.confidence) if show_emotions else message_figure(""),
        student_grid=_student_grid(view, board, show_emotions),
        banner=None,
        banner_hidden=True,
        presence=presence_line(view.state.states),
        needs_attention=needs_attention([shown.flag for shown in board if shown.needs_attention], at),
        engagement_now=engagement_now(*_engagement_trend(view.state.engagement)),
        flag_list=flag_list(board, at),
        silenced=silenced_line(list(silences), _names(view.students), at),
        page_class=PAGE_CLASS if show_emotions else f"{PAGE_CLASS} {HIDE_EMOTIONS_CLASS}",
        mood_card_hidden=not show_emotions,
    )


class _DrawnPages:
    """The last few pages drawn, by what they were drawn from: browsers in step with one another are sent
    the same page, drawn once (cards and charts cost more than reading the session's new rows); and by their
    token, so that a browser's next page can be sent as what changed since the one it shows."""

    def __init__(self, kept: int = 16) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, LiveOutputs] = OrderedDict()
        self._tokens: OrderedDict[str, LiveOutputs] = OrderedDict()

    def __call__(self, key: Hashable, token: str, draw: Callable[[], LiveOutputs]) -> LiveOutputs:
        with self._lock:
            page = self._pages.get(key)
        if page is None:
            # Drawn outside the lock: two browsers may both draw a new page, but neither waits on another session's.
            page = draw()
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            self._tokens[token] = page
            self._tokens.move_to_end(token)
            for pages in (self._pages, self._tokens):
                while len(pages) > self._kept:
                    pages.popitem(last=False)
        return page

    def shown(self, token: object) -> LiveOutputs | None:
        """The page a browser holding `token` shows, if still kept."""
        if not isinstance(token, str):
            return None
        with self._lock:
            return self._tokens.get(token)


_drawn = _DrawnPages()


def acknowledge(
    engine: Engine, session: dict[str, Any], flag: str, clicks: int | None, viewer: User
) -> tuple[str, bool]:
    """Store that `viewer` acknowledged `flag` (a flag_id) of `session`; the button's new label and that
    it is disabled."""
    try:
        student, rule, start = _clicked_flag(engine, session, flag, clicks)
        acknowledge_flag(engine, session["id"], student, rule, start, viewer.name)
    except DatabaseError:
        return "Not saved, try again", False
    return "Acknowledged", True


def snooze(engine: Engine, session: dict[str, Any], flag: str, clicks: int | None, viewer: User) -> tuple[str, bool]:
    """Silence every flag of `flag`'s student for [dashboard] snooze_minutes (of the session's time): a teacher who
    has seen to a student wants no more about them for a while, whatever the rule. The button's new label and that
    it is disabled."""
    try:
        student, _, _ = _clicked_flag(engine, session, flag, clicks)
        minutes = config.chosen().dashboard.snooze_minutes
        silence_flags(engine, session["id"], viewer.name, student=student, seconds=minutes * 60)
    except DatabaseError:
        return "Not saved, try again", False
    return "Snoozed", True


def mute(engine: Engine, session: dict[str, Any], flag: str, clicks: int | None, viewer: User) -> tuple[str, bool]:
    """Silence `flag`'s rule for every student for the rest of the session; the button's new label and that
    it is disabled."""
    try:
        _, rule, _ = _clicked_flag(engine, session, flag, clicks)
        silence_flags(engine, session["id"], viewer.name, rule=rule)
    except DatabaseError:
        return "Not saved, try again", False
    return "Muted", True


def lift(engine: Engine, session: dict[str, Any], silence: str, clicks: int | None, viewer: User) -> tuple[str, bool]:
    """Undo the snooze or mute whose id is `silence`; the button's new label and that it is disabled."""
    if not clicks or not silence.isdigit():
        raise PreventUpdate
    try:
        lift_silence(engine, session["id"], int(silence), viewer.name)
    except UnknownSilenceError:  # another session's, or made up in the browser
        raise PreventUpdate from None
    except DatabaseError:
        return "Not saved, try again", False
    return "Undone", True


def _clicked_flag(engine: Engine, session: dict[str, Any], flag: str, clicks: int | None) -> tuple[str, str, datetime]:
    """parse_flag_id of a clicked button's `flag`, if it names a student of `session` and a rule name that
    fits the columns (the id comes from the browser); else the callback updates nothing."""
    if not clicks:
        raise PreventUpdate
    try:
        student, rule, start = parse_flag_id(flag)
    except ValueError:
        raise PreventUpdate from None
    if student not in set(student_rows(engine, session["id"])["student"]) or len(rule) > MAX_RULE_LENGTH:
        raise PreventUpdate
    return student, rule, start


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


def engagement_now(score: float | None, change: float | None) -> str:
    """The "Now" panel's line: the class score and how it moved since TREND_SECONDS ago."""
    if score is None:
        return "Class engagement: not measured yet."
    if change is None:
        return f"Class engagement {score:.2f}"
    arrow = "↑" if change > TREND_STEADY else "↓" if change < -TREND_STEADY else "→"
    change = round(change, 2) + 0.0  # a change that rounds to zero reads +0.00, not -0.00
    return f"Class engagement {score:.2f} {arrow} {change:+.2f} in the last {TREND_SECONDS // 60} min"


def presence_line(states: dict[str, str]) -> str:
    """How many students are in the call, attentive, with their camera off, and away (analytics.live states)."""
    if not states:
        return "Nobody measured yet."
    counted = Counter(states.values())
    parts = [f"{len(states) - counted['absent']} of {len(states)} in the call", f"{counted[ATTENTIVE]} attentive"]
    others = {"camera_off": "camera(s) off", "empty": "seat(s) empty", "absent": "not in the call"}
    parts += [f"{counted[state]} {words}" for state, words in others.items() if counted[state]]
    return " · ".join(parts)


def needs_attention(flags: list[Flag], now: datetime) -> list[html.Li]:
    """The flags needing attention (not acknowledged, snoozed or muted), one line per kind ("5 cameras off"):
    the most serious kind first (analytics.live_flags.RULE_ORDER), then the one standing longest; at most
    ATTENTION_LINES lines."""
    if not flags:
        return [html.Li("Nobody needs attention right now.", className="absent")]
    kinds: dict[str, list[Flag]] = {}
    for flag in sorted(flags, key=lambda flag: flag.start):
        kinds.setdefault(flag.rule, []).append(flag)
    order = sorted(kinds, key=lambda rule: (_severity(rule), kinds[rule][0].start))
    lines = [_attention_line(rule, kinds[rule], now) for rule in order[:ATTENTION_LINES]]
    if len(order) > ATTENTION_LINES:
        more = sum(len(kinds[rule]) for rule in order[ATTENTION_LINES:])
        lines.append(html.Li(f"and {more} more flag(s) in the list below", className="absent"))
    return lines


def _attention_line(rule: str, flags: list[Flag], now: datetime) -> html.Li:
    """`flags`: one rule's, longest-standing first."""
    _, one, many = _rule_words(rule)
    names = [flag.name or flag.student for flag in flags]
    shown = ", ".join(names[:NAMES_PER_LINE]) + (
        f" +{len(names) - NAMES_PER_LINE}" if len(names) > NAMES_PER_LINE else ""
    )
    line = html.Li(
        [
            html.Strong(f"{len(flags)} {one if len(flags) == 1 else many}"),
            html.Span(f" {shown}", className="attention-names"),
            html.Span(f" · longest {duration(pd.Timestamp(now) - flags[0].start)}", className="absent"),
        ],
        className="attention",
    )
    return with_data(line, {"data-rule": rule, "data-count": str(len(flags))})


def _rule_words(rule: str) -> tuple[str, str, str]:
    """RULE_WORDS' words, or the rule's own name for a rule analytics.flags has added since."""
    return RULE_WORDS.get(rule, (rule.replace("_", " "),) * 3)


def _severity(rule: str) -> int:
    return RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER)


def flag_list(board: list[ShownFlag], now: datetime) -> list[html.Li]:
    """One line per flag on now (analytics.live_flags.decided's order): who, what, since when, and what can be
    done about it, or what was. A flag raised in the last NEW_FLAG_SECONDS that needs attention stands out."""
    if not board:
        return [html.Li("No flags: nobody needs attention right now.", className="absent")]
    return [_flag_item(shown, now) for shown in board]


def _flag_item(shown: ShownFlag, now: datetime) -> html.Li:
    flag = shown.flag
    key = flag_id(flag.student, flag.rule, flag.start)
    new = shown.needs_attention and (pd.Timestamp(now) - flag.raised).total_seconds() <= NEW_FLAG_SECONDS
    kind = _rule_words(flag.rule)[0]
    if not shown.needs_attention:
        actions: list[html.Span | html.Button] = [html.Span(_decision(shown, now), className="absent")]
    else:
        minutes = config.chosen().dashboard.snooze_minutes
        actions = [
            html.Button("Acknowledge", id={"type": ids.FLAG_ACK, "index": key}, className="acknowledge"),
            html.Button(
                f"Snooze {minutes} min",
                id={"type": ids.FLAG_SNOOZE, "index": key},
                className="snooze",
                title=f"No flags about {flag.name or flag.student} for {minutes} minutes",
            ),
            html.Button(
                f"Mute “{kind}” for all",
                id={"type": ids.FLAG_MUTE, "index": key},
                className="mute",
                title=f"No more “{kind}” flags for anyone in this lesson",
            ),
        ]
    quiet = " acknowledged" if shown.acknowledged else " silenced" if shown.silenced_by is not None else ""
    item = html.Li(
        [
            html.Strong(flag.name or flag.student, title=flag.student),
            html.Span(f" {flag.cause}", className="flag-rule"),
            html.Div(actions, className="flag-actions"),
            html.Span(f"since {local_time(flag.start)}: {flag.reason}", className="flag-reason"),
        ],
        className="flag" + (" new" if new else "") + quiet,
    )
    return with_data(item, {"data-student": flag.student, "data-rule": flag.rule})


def silenced_line(silences: list[FlagSilence], names: dict[str, str], now: datetime) -> list[html.Span | str]:
    """The snoozes and mutes in force at `now` (db.queries.flag_silences_of; `names`: display name by
    student key), each with its undo button; nothing when there are none."""
    held = [silence for silence in silences if silence.until is None or silence.until > now]
    if not held:
        return []
    items: list[html.Span | str] = ["Silenced: "]
    for silence in held:
        undo = "Unmute" if silence.until is None else "Unsnooze"
        line = html.Span(
            [
                _silence_words(silence, names, now),
                html.Button(
                    undo, id={"type": ids.LIFT_SILENCE, "index": str(silence.id)}, className="lift", title=undo
                ),
            ],
            className="silence",
        )
        items.append(with_data(line, {"data-student": silence.student or "", "data-rule": silence.rule or ""}))
    return items


def _silence_words(silence: FlagSilence, names: dict[str, str], now: datetime) -> str:
    """What a snooze or mute does, in words: "Ana snoozed, 9 min left", "“looking away” muted"."""
    who = "" if silence.student is None else names.get(silence.student, silence.student) + " "
    what = "" if silence.rule is None else f"“{_rule_words(silence.rule)[0]}” "
    return who + what + _silence_state(silence, now)


def _silence_state(silence: FlagSilence, now: datetime) -> str:
    if silence.until is None:
        return "muted"
    left = max(pd.Timestamp(silence.until) - pd.Timestamp(now), pd.Timedelta(0))
    return f"snoozed, {duration(left)} left"


def _decision(shown: ShownFlag, now: datetime | None = None) -> str:
    """What the teacher did about a flag that no longer needs attention: "acknowledged", "muted", "snoozed"
    (with the time left when `now` is given)."""
    if shown.acknowledged:
        return "acknowledged"
    assert shown.silenced_by is not None
    if now is None:
        return "muted" if shown.silenced_by.until is None else "snoozed"
    return _silence_state(shown.silenced_by, now)


def _names(students: pd.DataFrame) -> dict[str, str]:
    """Display names by student key (analytics.timeline.student_states rows), for students who have one."""
    named = students.dropna(subset=["name"])
    return dict(zip(named["student"], named["name"], strict=True))


@dataclass(frozen=True)
class CardStudent:
    """A student as their card shows them: a row of analytics.timeline.student_states."""

    student: str  # key
    name: str | None  # display name, if they have one
    emotion: str | None  # the one shown most in the last NOW_SECONDS; None: not seen in them
    last_seen: pd.Timestamp

    @classmethod
    def rows(cls, students: pd.DataFrame) -> list[CardStudent]:
        return [
            cls(
                row_values.key(row.student),
                row_values.text(row.name),
                row_values.text(row.emotion),
                row_values.moment(row.last_seen),
            )
            for row in students.itertuples(index=False)
        ]


def student_cards(
    students: pd.DataFrame,
    sparklines: dict[str, pd.Series],
    start: datetime,
    end: datetime,
    state: LiveState,
    board: list[ShownFlag],
    sureness: dict[str, float] | None,
    strip_end: datetime | None = None,
) -> list[html.Div]:
    """One card per student (analytics.timeline.student_states rows), each with a strip of their recent
    emotions from `start` to `strip_end` (default `end`, the time the flags' durations run to), their
    engagement or why it is not measured (from `state`: scores and states by student key),
    and why they are flagged (`board`: the flags on, with the teacher's decisions). `sureness`: how sure the
    model was of each student's emotion (analytics.live.LiveView.sureness); None: the viewer hides emotions,
    so no strip or emotion is drawn. Students with a flag needing attention come first, then those whose
    flags were seen to."""
    flags: dict[str, list[ShownFlag]] = {}
    for shown in sorted(board, key=lambda shown: _severity(shown.flag.rule)):
        flags.setdefault(shown.flag.student, []).append(shown)
    ordered = sorted(
        CardStudent.rows(students),
        key=lambda row: (
            not any(shown.needs_attention for shown in flags.get(row.student, [])),
            row.student not in flags,
        ),
    )
    return [
        student_card(
            row,
            None if sureness is None else sparklines.get(row.student),
            start,
            end,
            state.scores.get(row.student),
            flags.get(row.student, []),
            state.states.get(row.student),
            None if sureness is None else sureness.get(row.student, np.nan),
            strip_end,
        )
        for row in ordered
    ]


def student_card(
    student: CardStudent,
    dominant: pd.Series | None,
    start: datetime,
    end: datetime,
    score: float | None,
    flags: list[ShownFlag],
    state: str | None,
    sure: float | None = np.nan,
    strip_end: datetime | None = None,
) -> html.Div:
    """`dominant`: their emotion per recent bin from `start` to `strip_end` (default `end`), None when not seen
    lately;
    `score`: their current engagement, None when not scored; `flags`: theirs on now, most serious first;
    `state`: analytics.live.LiveState.states' (None: not measured); `sure`: the model's mean probability for
    the emotion shown (NaN: unknown; None: the viewer hides emotions, so no emotion and no strip). The card
    stands out only while one of their flags needs attention."""
    strip = dominant if dominant is not None else pd.Series(dtype=object, index=pd.DatetimeIndex([], tz="UTC"))
    why = tuple(
        flag_words(shown.flag, end) + ("" if shown.needs_attention else f" ({_decision(shown)})") for shown in flags
    )
    return _card(
        student.student,
        student.name,
        student.emotion,
        None if sure is None else sparkline(strip, start, strip_end or end),
        score,
        why,
        "; ".join(shown.flag.reason for shown in flags),
        any(shown.needs_attention for shown in flags),
        state,
        sure,
        # Said only when no emotion was seen lately; in the viewer's zone, so outside the cache (as the flags' words).
        "" if student.emotion else local_time(student.last_seen),
    )


@lru_cache(maxsize=CARDS_KEPT)
def _card(
    key: str,
    name: str | None,
    emotion: str | None,
    strip: html.Div | None,
    score: float | None,
    why: tuple[str, ...],
    reasons: str,
    needs_attention: bool,
    state: str | None,
    sure: float | None,
    last_seen: str,
) -> html.Div:
    """student_card's card, built once for the same content: between two scoring passes most of a class's cards
    do not change, and the same card object is then neither built again nor compared by dashboard.patches (it
    stops at an object it sent before). Nothing changes a card once built."""
    unseen = UNSEEN_STATES.get(state or "")
    if unseen:
        # Their own state, not an engagement of 0: nobody can be measured without a face.
        now_badge = html.Span(unseen, className="badge unseen")
    elif sure is None:
        now_badge = html.Span(SEEN_STATES.get(state or "", "seen"), className="badge seen")
    elif emotion:
        now_badge = emotion_badge(emotion, sure)
    else:
        now_badge = html.Span(f"not seen in {NOW_SECONDS} s (last {last_seen})", className="absent")
    measured = None if unseen else score
    engagement = (
        html.Span("engagement –", className="absent")
        if measured is None
        else html.Span(
            f"engagement {measured:.2f}",
            className="badge",
            style={"backgroundColor": engagement_color(measured), "color": engagement_text_color(measured)},
        )
    )
    card = html.Div(
        [
            html.Div(name or key, className="student-name", title=key),
            html.Div([now_badge, engagement], className="badges"),
            html.Div("⚑ " + "; ".join(why), className="flag-why", title=reasons) if why else None,
            strip,
        ],
        id=ids.student_card(key),
        className="student-card" + (" flagged" if needs_attention else ""),
        # The card's edge carries the engagement colour, so the grid reads at a glance.
        style={"borderLeft": f"6px solid {ABSENT_COLOR if measured is None else engagement_color(measured)}"},
    )
    return with_data(
        card,
        {
            "data-student": key,
            "data-emotion": "hidden" if sure is None else emotion or "absent",
            "data-sure": "" if sure is None or np.isnan(sure) else f"{sure:.2f}",
            "data-state": state or "",
            "data-engagement": "" if score is None else f"{score:.2f}",
            "data-flagged": str(bool(why)).lower(),
        },
    )


def flag_words(flag: Flag, now: datetime) -> str:
    """A flag on a card, in words: what happened and since when, as the data has it ("left the call since
    14:46:13, 4 min")."""
    return f"{flag.cause} since {local_time(flag.start)}, {duration(pd.Timestamp(now) - flag.start)}"


def _live_timeline(view: LiveView, show_emotions: bool) -> go.Figure:
    latest, window_s = view.latest_frame, view.state.window_s
    if latest is None:
        return message_figure("No frames yet.")
    shown = None if window_s is None else (latest - timedelta(seconds=window_s), latest)
    if not show_emotions:
        return engagement_timeline(view.state.engagement, shown)
    return mood_timeline(view.state.counts, shown, engagement=view.state.engagement, unsure=view.state.unsure)


def _engagement_trend(line: pd.Series) -> tuple[float | None, float | None]:
    """The latest class score, and its change since TREND_SECONDS before it (None without that history)."""
    if line.empty:
        return None, None
    latest = float(line.iloc[-1])
    earlier = line[line.index <= line.index[-1] - timedelta(seconds=TREND_SECONDS)]
    return latest, None if earlier.empty else latest - float(earlier.iloc[-1])


def _student_grid(view: LiveView, board: list[ShownFlag], show_emotions: bool) -> list[html.Div] | list[html.P]:
    if view.students.empty:
        return [
            html.P(
                "No faces found yet in this session. Check that the video call shows the gallery view and that "
                "the capture covers it.",
                className="absent",
            )
        ]
    end = view.latest_frame or view.state.last_seen or datetime.now(UTC)
    # The strips end with the bin holding the latest frame, not at the frame itself: they then change only as a
    # bin begins or a bin's emotion changes, not by a sliver at every refresh (so the page need not send them).
    strip_end = (pd.Timestamp(end).floor(f"{BIN_SECONDS}s") + pd.Timedelta(seconds=BIN_SECONDS)).to_pydatetime()
    dominant = dominant_emotions(view.state.student_counts)
    bins = dominant.index.get_level_values("bin")
    # One pass over the table: a droplevel per student cost more than drawing their card.
    strips = {
        row_values.key(key): pd.Series(dominant.to_numpy()[rows], index=bins[rows])
        for key, rows in dominant.groupby(level="student").indices.items()
    }
    return student_cards(
        view.students,
        strips,
        strip_end - timedelta(seconds=SPARKLINE_SECONDS),
        end,
        view.state,
        board,
        view.sureness if show_emotions else None,
        strip_end,
    )
