"""The dashboard against real SQLite files: routes through Dash's own HTTP endpoints, the live refresh,
figures, downloads and the command line."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from dash import Patch, no_update
from dash.exceptions import PreventUpdate
from flask.testing import FlaskClient
from plotly.utils import PlotlyJSONEncoder
from sqlalchemy import Engine, update

from analytics.export import CSV_COLUMNS
from analytics.flags import Flag
from analytics.live import ATTENTIVE, LIVE_HUB, LiveState, engagement_config, mood_confidence
from analytics.live_flags import ShownFlag
from analytics.report import engagement_drops, session_tables, write_report
from analytics.timeline import emotion_counts
from config import DashboardConfig
from dashboard import ids
from dashboard.app import create_app, open_database
from dashboard.figures import mood_now_chart, mood_timeline, sparkline
from dashboard.formatting import ZONE_COOKIE, local_time
from dashboard.pages.live import (
    ATTENTION_LINES,
    DEFAULT_WINDOW_SECONDS,
    NOW_CHART_HEIGHT_PX,
    TIMELINE_HEIGHT_PX,
    LiveOutputs,
    acknowledge,
    flag_id,
    live_tick,
    needs_attention,
    presence_line,
    status_banner,
    student_cards,
)
from dashboard.pages.report import (
    MERGE_CONFIRM,
    MERGE_CONFIRM_TEXT,
    MERGE_KEPT,
    MERGE_NOTICE,
    MERGE_OPEN,
    MERGE_WITH,
    RENAME_CANCEL,
    RENAME_KEPT,
    RENAME_OPEN,
    RENAME_PANEL,
    RENAME_TITLE,
    rows_download,
    students_download,
)
from dashboard.report_cache import forget_reports, report_tables, warm_report
from dashboard.theme import ABSENT_COLOR, EMOTION_COLORS, EMOTION_TEXT_COLORS, ENGAGEMENT_SCALE
from db.migrate import current_revision, head_revision, upgrade
from db.queries import FlagSilence, acknowledged_flags, find_session, flag_silences_of, observation_rows
from db.recorder import SessionRecorder
from db.schema import sessions
from db.users import Role, User, add_user
from tests.cli import connected_copy
from tests.dashboard_users import PASSWORD, signed_in_client
from tests.test_timeline import HAPPY, NEUTRAL, PERIOD_1, SAD, T0, record
from vocabulary.emotions import EMOTIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
FIFTEEN_MINUTES = str(DEFAULT_WINDOW_SECONDS)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'classpulse.db'}"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding 'period-1' (PERIOD_1) and, started later so it is the newest, 'cameras-off' (no faces),
    with the accounts the tests sign in as (admin; alice and bob, teachers): built once, as migrating, recording
    and each Argon2 hash cost a noticeable part of a second on two cores."""
    path = tmp_path_factory.mktemp("recorded") / "classpulse.db"
    migrated = upgrade(f"sqlite:///{path}")
    record(migrated, "period-1", PERIOD_1)
    record(migrated, "cameras-off", [(0, {}), (1, {}), (2, {})], start=T0 + timedelta(hours=1))
    for name, role in (("admin", Role.ADMIN), ("alice", Role.TEACHER), ("bob", Role.TEACHER)):
        add_user(migrated, name, role, PASSWORD)
    migrated.dispose()
    return path


@pytest.fixture
def engine(recorded: Path, tmp_path: Path) -> Iterator[Engine]:
    """This test's own copy of `recorded`, at `url`."""
    with connected_copy(recorded, tmp_path / "classpulse.db") as copied:
        yield copied


@pytest.fixture
def client(engine: Engine) -> FlaskClient:
    return signed_in_client(create_app(engine), engine)


# The live refresh callback's outputs, in the order dashboard.pages.live.LiveOutputs declares them.
LIVE_OUTPUTS = [
    (ids.LIVE_STATE, "data"),
    (ids.LIVE_TIMELINE, "figure"),
    (ids.LIVE_STUDENT_COUNT, "children"),
    (ids.LIVE_NOW_CHART, "figure"),
    (ids.STUDENT_GRID, "children"),
    (ids.LIVE_BANNER, "children"),
    (ids.LIVE_BANNER, "hidden"),
    (ids.LIVE_PRESENCE, "children"),
    (ids.LIVE_PAGE, "className"),
    (ids.LIVE_MOOD_CARD, "hidden"),
    (ids.NEEDS_ATTENTION, "children"),
    (ids.LIVE_ENGAGEMENT_NOW, "children"),
    (ids.FLAG_LIST, "children"),
    (ids.SILENCED, "children"),
]


def dash_call(
    client: FlaskClient,
    outputs: list[tuple[str, str]],
    inputs: list[tuple[str, str, Any]],
    state: list[tuple[str, str, Any]] = (),
    status: int = 200,
) -> dict[str, Any]:
    """POST a callback request as the browser does and check that it is answered `status`; returns
    {component id: {property: value}}, or {} for an answer that carries none (204: no update, 400: refused)."""
    # Dash's wire format: one output as "id.prop"; several as "..id.prop...id.prop..".
    names = [f"{i}.{p}" for i, p in outputs]
    targets = [{"id": i, "property": p} for i, p in outputs]
    payload = {
        "output": names[0] if len(outputs) == 1 else ".." + "...".join(names) + "..",
        "outputs": targets[0] if len(outputs) == 1 else targets,
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code == status, (outputs, response.status_code, response.get_data(as_text=True))
    return response.get_json()["response"] if status == 200 else {}


def page(client: FlaskClient, path: str) -> dict[str, Any]:
    """The component tree the router callback sends for `path`."""
    return dash_call(client, [(ids.PAGE, "children")], [(ids.URL, "pathname", path)])[ids.PAGE]["children"]


def walk(tree: Any) -> Iterator[dict[str, Any]]:
    """Every component of a serialised component tree, as {"type", "namespace", "props"}."""
    if isinstance(tree, list):
        for item in tree:
            yield from walk(item)
    elif isinstance(tree, dict) and "props" in tree:
        yield tree
        for value in tree["props"].values():
            yield from walk(value)


def serialised(tree: Any) -> Any:
    """A component tree as the browser receives it (what walk and text read)."""
    return json.loads(json.dumps(tree, cls=PlotlyJSONEncoder))


def component_ids(tree: Any) -> set[str]:
    return {node["props"]["id"] for node in walk(tree) if isinstance(node["props"].get("id"), str)}


def component(tree: Any, component_id: str) -> dict[str, Any]:
    """The props of the component with that id."""
    return next(node["props"] for node in walk(tree) if node["props"].get("id") == component_id)


def text(tree: Any) -> str:
    """All the text under "children" in a serialised tree, or in a component's props."""
    if isinstance(tree, str):
        return tree
    if isinstance(tree, list):
        return " ".join(text(item) for item in tree)
    if isinstance(tree, dict):
        return text(tree.get("props", tree).get("children"))
    return ""


# Routes, through the app's real HTTP endpoints.


def test_every_route_serves_the_app_page(client: FlaskClient) -> None:
    for path in ("/", "/sessions", "/live/period-1", "/report/period-1", "/live/nope"):
        response = client.get(path)
        assert response.status_code == 200
        assert "<title>ClassPulse</title>" in response.get_data(as_text=True)


def test_root_shows_the_newest_sessions_live_page(client: FlaskClient) -> None:
    tree = page(client, "/")
    assert component(tree, ids.LIVE_SESSION)["data"]["name"] == "cameras-off"
    assert {
        ids.LIVE_TIMELINE,
        ids.LIVE_NOW,
        ids.STUDENT_GRID,
        ids.LIVE_INTERVAL,
        ids.LIVE_BANNER,
        ids.LIVE_ENGAGEMENT_NOW,
        ids.FLAGS_CARD,
        ids.FLAG_LIST,
    } <= component_ids(tree)


def test_root_of_an_empty_database_says_how_to_start(tmp_path: Path) -> None:
    empty = upgrade(f"sqlite:///{tmp_path / 'empty.db'}")
    tree = page(signed_in_client(create_app(empty), empty), "/")
    assert "No sessions yet" in text(tree) and "python -m capture" in text(tree)


def test_live_page_of_a_named_session(client: FlaskClient) -> None:
    tree = page(client, "/live/period-1")
    assert component(tree, ids.LIVE_SESSION)["data"]["name"] == "period-1"


def test_session_names_in_urls_are_percent_decoded(engine: Engine, client: FlaskClient) -> None:
    record(engine, "Year 9 / maths", [(0, {"tile-0": HAPPY})], start=T0 + timedelta(hours=2))
    assert component(page(client, "/live/Year%209%20%2F%20maths"), ids.LIVE_SESSION)["data"]["name"] == "Year 9 / maths"


def test_unknown_sessions_get_a_message_that_lists_the_known_ones(client: FlaskClient) -> None:
    for path in ("/live/nope", "/report/nope"):
        message = text(page(client, path))
        assert "no session named 'nope'" in message and "'period-1'" in message and "'cameras-off'" in message


def test_unknown_paths_get_a_not_found_message(client: FlaskClient) -> None:
    assert "There is no page at /settings" in text(page(client, "/settings"))


def test_sessions_page_lists_every_session_with_its_counts(client: FlaskClient) -> None:
    table = component(page(client, "/sessions"), ids.SESSIONS_TABLE)
    rows = [[cell_text(cell) for cell in row["props"]["children"]] for row in table_rows(table)]

    # Newest first; columns: started, session, teacher (none: only admins see it), class (none: recorded without
    # --class), source, duration, students, average engagement (not computed before a report or the capture's end
    # scored the session), observations, report link.
    assert [row[1] for row in rows] == ["cameras-off", "period-1"]
    assert rows[1][2:] == ["—", "—", "screen:1", "24 s", 3, "—", 18, "report"]
    assert rows[0][6:9] == [0, "—", 0]


def test_sessions_page_shows_the_average_engagement_a_report_stored(engine: Engine, client: FlaskClient) -> None:
    tables = session_tables(engine, find_session(engine, "period-1").id, engagement_config())
    page(client, "/report/period-1")
    table = component(page(client, "/sessions"), ids.SESSIONS_TABLE)
    rows = {cell_text(row["props"]["children"][1]): row["props"]["children"] for row in table_rows(table)}
    assert cell_text(rows["period-1"][7]) == f"{tables.class_bins['score'].mean():.2f}"


def test_sessions_filter_keeps_sessions_holding_every_word(client: FlaskClient) -> None:
    def filtered(text: str) -> list[Any]:
        response = dash_call(client, [(ids.SESSIONS_ROWS, "children")], [(ids.SESSIONS_FILTER, "value", text)])
        rows = response[ids.SESSIONS_ROWS]["children"]
        cells = [row["props"]["children"] for row in rows]
        if len(cells) == 1 and isinstance(cells[0], dict):  # the one "no session matches" row
            assert "No session matches" in cells[0]["props"]["children"]
            return []
        return [cell_text(row[1]) for row in cells]

    assert filtered("PERIOD") == ["period-1"]
    assert filtered("screen:1 period") == ["period-1"]
    assert filtered("") == ["cameras-off", "period-1"]
    assert filtered(".*") == []  # plain text, not a pattern
    assert filtered("nothing-like-it") == []


def table_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The body rows of a serialised html.Table's props."""
    return table["children"][1]["props"]["children"]


def cell_text(cell: dict[str, Any]) -> Any:
    """A table cell's value, or the text of the link or badge it holds."""
    content = cell["props"]["children"]
    return content["props"]["children"] if isinstance(content, dict) else content


def test_report_shows_the_timeline_and_one_row_per_student(client: FlaskClient) -> None:
    tree = page(client, "/report/period-1")
    rows = [
        [cell_text(cell) for cell in row["props"]["children"]]
        for row in table_rows(component(tree, ids.REPORT_STUDENTS))
    ]
    # Columns: student, name, on camera (frames stand for 4 s each), attentive (of that time), engagement (scored
    # over the time the face showed), mostly, flags in words.
    assert [(row[0], *row[2:5]) for row in rows] == [
        ("tile-0", "28 s", "100%", "0.98"),
        ("tile-1", "28 s", "100%", "0.93"),  # sad: a negative expression
        ("tile-2", "16 s", "100%", "0.98"),  # gone from the gallery after 16 s: that time is not scored
    ]
    assert [row[6] for row in rows] == ["–", "–", "–"]
    traces = component(tree, ids.REPORT_TIMELINE)["figure"]["data"]
    assert [trace["name"] for trace in traces] == [*EMOTIONS, "engagement"]
    assert traces[-1]["yaxis"] == "y2"
    assert {ids.DOWNLOAD_STUDENTS_BUTTON, ids.DOWNLOAD_ROWS_BUTTON, ids.REPORT_DROPS} <= component_ids(tree)


def test_report_heatmap_has_one_row_per_student_and_one_column_per_bin(client: FlaskClient) -> None:
    heatmap, camera_off, seat_empty = component(page(client, "/report/period-1"), ids.REPORT_HEATMAP)["figure"]["data"]
    assert [camera_off["name"], seat_empty["name"]] == ["camera off", "seat empty"]
    # Plotly sends numeric arrays as base64 typed arrays.
    z = np.frombuffer(base64.b64decode(heatmap["z"]["bdata"]), heatmap["z"]["dtype"]).reshape(3, -1)
    assert heatmap["z"]["shape"] == "3, 3" and heatmap["y"] == ["tile-0", "tile-1", "tile-2"]
    assert heatmap["colorscale"][0][1] == ENGAGEMENT_SCALE[0] and (heatmap["zmin"], heatmap["zmax"]) == (0, 1)
    # tile-2 left after 12 s: a full face bin, then not in the call (blank, not 0) in the last one.
    assert z[2][0] == pytest.approx(1.0, abs=0.02) and np.isnan(z[2][2])


def test_engagement_drops_are_the_largest_falls_apart_from_each_other() -> None:
    bins = pd.date_range(T0, periods=20, freq="10s")
    scores = [0.9] * 5 + [0.3] + [0.8] * 6 + [0.6] + [0.8] * 4 + [0.7, 0.2, 0.1]
    drops = engagement_drops(pd.DataFrame({"bin": bins, "score": scores}), top=3)
    # The fall into bin 18 is within a minute of the larger one into bin 19, so the third is bin 12's.
    assert list(drops["end"]) == [bins[19], bins[5], bins[12]]
    assert list(drops["start"]) == [bins[13], bins[0], bins[6]]
    assert drops["drop"].tolist() == pytest.approx([0.7, 0.6, 0.2])


def test_report_of_a_session_without_faces_explains_why(client: FlaskClient) -> None:
    message = text(page(client, "/report/cameras-off"))
    assert "3 analysed frame(s)" in message and "no face was found" in message


def test_sessions_page_of_an_empty_database_says_how_to_start(tmp_path: Path) -> None:
    empty = upgrade(f"sqlite:///{tmp_path / 'empty.db'}")
    tree = page(signed_in_client(create_app(empty), empty), "/sessions")
    assert "No sessions yet" in text(tree) and ids.SESSIONS_TABLE not in component_ids(tree)


# The live refresh.


def tick(
    engine: Engine,
    session: str,
    shown: str | None,
    now: datetime,
    window: str = FIFTEEN_MINUTES,
    show_emotions: bool = True,
) -> tuple[Any, ...]:
    """The live callback's answer as Dash sends it: LiveOutputs' fields in order."""
    info = find_session(engine, session)
    return tuple(live_tick(engine, {"id": info.id, "name": info.name}, window, shown, now, show_emotions))


def shared_state(engine: Engine, session: str, window: int | None = DEFAULT_WINDOW_SECONDS) -> LiveState:
    """The state every browser showing `session` over `window` seconds shares now."""
    return LIVE_HUB.view(engine, find_session(engine, session), window).view.state


def test_the_live_callback_answers_the_outputs_live_outputs_declares_and_pauses_the_timer_while_it_runs(
    client: FlaskClient,
) -> None:
    (live,) = [spec for spec in client.get("/_dash-dependencies").get_json() if LIVE_OUTPUTS[0][0] in spec["output"]]
    declared = [name.split(".", 1) for name in live["output"].strip(".").split("...")]
    typed = [field.metadata["output"] for field in dataclasses.fields(LiveOutputs)]
    assert [tuple(pair) for pair in declared] == LIVE_OUTPUTS == typed
    # The browser switches the timer off as a refresh starts and on when it has answered: none can overlap.
    assert live["running"] == {
        "running": {f"{ids.LIVE_INTERVAL}.disabled": True},
        "runningOff": {f"{ids.LIVE_INTERVAL}.disabled": False},
    }


def test_the_live_page_says_loading_in_fixed_size_charts_until_its_first_refresh(client: FlaskClient) -> None:
    tree = page(client, "/live/period-1")
    for graph, height in ((ids.LIVE_TIMELINE, TIMELINE_HEIGHT_PX), (ids.LIVE_NOW_CHART, NOW_CHART_HEIGHT_PX)):
        props = component(tree, graph)
        assert props["style"] == {"height": f"{height}px"}, graph
        assert [note["text"] for note in props["figure"]["layout"]["annotations"]] == ["Loading…"]
        assert not props["figure"]["data"]  # no empty axes: nothing is drawn until there is something to draw
    for waiting in (ids.LIVE_PRESENCE, ids.NEEDS_ATTENTION, ids.FLAG_LIST, ids.STUDENT_GRID):
        assert text(component(tree, waiting)) == "Loading…", waiting


def test_live_refresh_through_the_dash_endpoint(engine: Engine, client: FlaskClient) -> None:
    session = find_session(engine, "period-1")
    outputs = LIVE_OUTPUTS
    response = dash_call(
        client,
        outputs,
        [
            (ids.LIVE_INTERVAL, "n_intervals", 0),
            (ids.LIVE_WINDOW, "value", FIFTEEN_MINUTES),
            (ids.LIVE_PREFERENCES, "data", None),
        ],
        [(ids.LIVE_SESSION, "data", {"id": session.id, "name": session.name}), (ids.LIVE_STATE, "data", None)],
    )
    cards = response[ids.STUDENT_GRID]["children"]
    assert [card["props"]["data-student"] for card in cards] == ["tile-0", "tile-1", "tile-2"]
    assert response[ids.LIVE_BANNER]["hidden"] is False  # the session has ended
    assert "ended" in response[ids.LIVE_BANNER]["children"]


def test_first_tick_counts_every_row_and_shows_each_students_current_emotion(engine: Engine) -> None:
    _, timeline, count, _, grid, *_ = tick(engine, "period-1", None, T0 + timedelta(seconds=25))

    rows = observation_rows(engine, find_session(engine, "period-1").id)
    pd.testing.assert_frame_equal(shared_state(engine, "period-1").counts, emotion_counts(rows))
    assert [trace.name for trace in timeline.data] == [*EMOTIONS, "unsure (model below 50%)", "engagement"]
    assert count == "2 student(s) seen, 6 face observation(s)"
    # Current = most frequent in (14, 24] s, the latest winning a tie; tile-2 left at 12 s.
    assert [card.to_plotly_json()["props"]["data-emotion"] for card in grid] == ["sad", "fear", "absent"]
    assert [card.id for card in grid] == [ids.student_card(key) for key in ("tile-0", "tile-1", "tile-2")]


def test_later_ticks_add_only_new_rows_and_match_a_full_recount(engine: Engine) -> None:
    stored = tick(engine, "period-1", None, T0 + timedelta(seconds=25))[0]
    # The capture continues the session; the first new frame lands in the same bin as the last old one.
    record(
        engine,
        "period-1",
        [(26, {"tile-0": NEUTRAL, "tile-1": NEUTRAL}), (31, {"tile-1": SAD})],
        first_index=len(PERIOD_1),
    )
    stored = tick(engine, "period-1", stored, T0 + timedelta(seconds=32))[0]
    LIVE_HUB.settle()  # the new bin's scoring, which runs beside the refreshes
    stored = tick(engine, "period-1", stored, T0 + timedelta(seconds=34))[0]  # nothing new: nothing counted twice

    state = shared_state(engine, "period-1")
    session_id = find_session(engine, "period-1").id
    rows = observation_rows(engine, session_id)
    pd.testing.assert_frame_equal(state.counts, emotion_counts(rows))
    pd.testing.assert_frame_equal(state.student_counts, emotion_counts(rows, by=("student",)))
    assert state.last_seen == T0 + timedelta(seconds=31)
    # The class engagement line, kept across passes, is the whole session's as the report scores it.
    whole = session_tables(engine, session_id, engagement_config()).class_bins.set_index("bin")["score"]
    pd.testing.assert_series_equal(state.engagement, whole, check_names=False, check_freq=False)


def test_the_kept_counts_are_bounded_by_the_window(engine: Engine) -> None:
    # One frame, then another 40 minutes later: the 15-minute window must drop the first.
    record(engine, "long", [(0, {"tile-0": HAPPY}), (40 * 60, {"tile-0": SAD})], start=T0 + timedelta(hours=3))
    tick(engine, "long", None, T0 + timedelta(hours=3, minutes=41))
    assert list(shared_state(engine, "long").counts.index) == [pd.Timestamp(T0 + timedelta(hours=3, minutes=40))]

    tick(engine, "long", None, T0 + timedelta(hours=3, minutes=41), window="all")
    assert len(shared_state(engine, "long", window=None).counts) == 2


def test_the_live_timeline_carries_the_class_engagement_line_and_the_now_panel_its_score(engine: Engine) -> None:
    _, timeline, *_, engagement_now, flags, _ = tick(engine, "period-1", None, T0 + timedelta(seconds=25))

    line = timeline.data[-1]
    assert (line.name, line.yaxis) == ("engagement", "y2") and list(timeline.layout.yaxis2.range) == [0, 1]
    assert len(line.y) == 3 and all(0 <= score <= 1 for score in line.y)
    assert engagement_now.startswith(f"Class engagement {line.y[-1]:.2f}")
    assert "No flags" in flags[0].children


ABSENCE_START = T0 + timedelta(hours=2)
# tile-1 leaves the gallery after 10 s and stays away: absent from 15 s on, flagged once that is over 60 s.
ABSENCE = [(seconds, {"tile-0": HAPPY} | ({"tile-1": HAPPY} if seconds <= 10 else {})) for seconds in range(0, 101, 5)]
TEACHER = User("teacher", "teacher", T0, T0, "stamp")


def test_a_flag_is_listed_its_student_comes_first_and_an_acknowledgement_is_stored(engine: Engine) -> None:
    record(engine, "absence", ABSENCE, start=ABSENCE_START)
    session = find_session(engine, "absence")
    now = ABSENCE_START + timedelta(seconds=101)
    stored, _, _, _, grid, *_, flags, _ = tick(engine, "absence", None, now)

    (item,) = [serialised(flag)["props"] for flag in flags]
    assert (item["data-student"], item["data-rule"]) == ("tile-1", "absent")
    assert "new" in item["className"].split()  # raised at 80 s, 20 s before the latest frame
    assert "since" in text(item) and "not in the gallery" in text(item)
    cards = [serialised(card)["props"] for card in grid]
    assert [(card["data-student"], card["data-flagged"]) for card in cards] == [("tile-1", "true"), ("tile-0", "false")]
    assert float(cards[0]["data-engagement"]) == 0.0 and float(cards[1]["data-engagement"]) > 0.9

    button = next(node for node in walk(item["children"]) if isinstance(node["props"].get("id"), dict))
    flag = button["props"]["id"]["index"]
    assert acknowledge(engine, {"id": session.id, "name": "absence"}, flag, 1, TEACHER) == ("Acknowledged", True)
    acknowledge(engine, {"id": session.id, "name": "absence"}, flag, 2, TEACHER)  # twice: still one
    with pytest.raises(PreventUpdate):  # ids come from the browser: another session's student is refused
        acknowledge(engine, {"id": session.id, "name": "absence"}, flag.replace("tile-1", "tile-9"), 1, TEACHER)
    assert acknowledged_flags(engine, session.id) == {("tile-1", "absent", ABSENCE_START + timedelta(seconds=15))}

    *_, flags, _ = tick(engine, "absence", stored, now + timedelta(seconds=2))
    (item,) = [serialised(flag)["props"] for flag in flags]
    assert item["className"].split() == ["flag", "acknowledged"] and "acknowledged" in text(item)


def test_browsers_in_other_time_zones_are_not_sent_one_anothers_page(engine: Engine) -> None:
    record(engine, "absence", ABSENCE, start=ABSENCE_START)
    app = create_app(engine)
    tokens = set()
    for zone in ("America/New_York", "Asia/Tokyo", "America/New_York"):
        with app.server.test_request_context(headers={"Cookie": f"{ZONE_COOKIE}={quote(zone, safe='')}"}):
            page = LiveOutputs(*tick(engine, "absence", None, ABSENCE_START + timedelta(seconds=101)))
        tokens.add(page.state)
        since = pd.Timestamp(ABSENCE_START + timedelta(seconds=15)).tz_convert(zone)
        assert f"since {since:%H:%M:%S}" in text(serialised(page.flag_list)), zone
    assert len(tokens) == 2  # one page per zone, the same page again for the same zone


def click(
    client: FlaskClient, button_type: str, index: str, session: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """Click one of the live page's buttons of a flag or a silence through Dash's endpoint, as the browser
    does, on the page of `session` ({"id", "name"}): the HTTP status and the button's new props ([] when the
    server updated nothing)."""
    button = {"index": index, "type": button_type}
    # A pattern-matching callback is named by its pattern; the concrete ids travel in outputs and inputs.
    pattern = json.dumps({"index": ["MATCH"], "type": button_type}, separators=(",", ":"))
    payload = {
        "output": f"..{pattern}.children...{pattern}.disabled..",
        "outputs": [{"id": button, "property": "children"}, {"id": button, "property": "disabled"}],
        "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
        "state": [{"id": ids.LIVE_SESSION, "property": "data", "value": session}],
        "changedPropIds": [json.dumps(button, separators=(",", ":")) + ".n_clicks"],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    return response.status_code, list(response.get_json()["response"].values()) if response.status_code == 200 else []


def test_acknowledge_through_the_dash_endpoint(engine: Engine, client: FlaskClient) -> None:
    record(engine, "absence", ABSENCE, start=ABSENCE_START)
    session = find_session(engine, "absence")
    flag = flag_id("tile-1", "absent", ABSENCE_START + timedelta(seconds=15))
    status, answer = click(client, ids.FLAG_ACK, flag, {"id": session.id, "name": session.name})
    assert (status, answer) == (200, [{"children": "Acknowledged", "disabled": True}])
    assert len(acknowledged_flags(engine, session.id)) == 1


# tile-1 and tile-2 leave after 10 s and stay away: both flagged absent from 15 s on, as ABSENCE's tile-1.
TWO_LEAVE = [
    (seconds, {"tile-0": HAPPY} | ({"tile-1": HAPPY, "tile-2": HAPPY} if seconds <= 10 else {}))
    for seconds in range(0, 101, 5)
]


def opened(engine: Engine, session: dict[str, Any]) -> dict[str, Any]:
    """The live page's first refresh in a new app instance, as after a reload or a server restart: nothing
    kept in the page or the process; {component id: {property: value}}."""
    return dash_call(
        signed_in_client(create_app(engine), engine),
        LIVE_OUTPUTS,
        [
            (ids.LIVE_INTERVAL, "n_intervals", 0),
            (ids.LIVE_WINDOW, "value", FIFTEEN_MINUTES),
            (ids.LIVE_PREFERENCES, "data", None),
        ],
        [(ids.LIVE_SESSION, "data", session), (ids.LIVE_STATE, "data", None)],
    )


def attention(outputs: dict[str, Any]) -> list[tuple[str, str]]:
    """The needs-attention list's lines as (rule, how many students)."""
    lines = [line["props"] for line in outputs[ids.NEEDS_ATTENTION]["children"]]
    return [(line["data-rule"], line["data-count"]) for line in lines if "data-rule" in line]


def button_of(tree: Any, button_type: str, student: str) -> str:
    """The index of the `button_type` button in the line of `student`'s flag."""
    line = next(node for node in walk(tree) if node["props"].get("data-student") == student)
    return next(
        node["props"]["id"]["index"]
        for node in walk(line["props"]["children"])
        if isinstance(node["props"].get("id"), dict) and node["props"]["id"]["type"] == button_type
    )


def test_a_snooze_and_a_mute_take_flags_off_needs_attention_after_a_reload_until_undone(engine: Engine) -> None:
    record(engine, "two-leave", TWO_LEAVE, start=ABSENCE_START)
    info = find_session(engine, "two-leave")
    session = {"id": info.id, "name": info.name}
    client = signed_in_client(create_app(engine), engine)
    shown = opened(engine, session)
    assert attention(shown) == [("absent", "2")]

    snooze = button_of(shown[ids.FLAG_LIST]["children"], ids.FLAG_SNOOZE, "tile-1")
    assert click(client, ids.FLAG_SNOOZE, snooze, session) == (200, [{"children": "Snoozed", "disabled": True}])
    shown = opened(engine, session)
    assert attention(shown) == [("absent", "1")] and "tile-2" in text(shown[ids.NEEDS_ATTENTION]["children"])
    snoozed = next(
        node["props"]
        for node in walk(shown[ids.FLAG_LIST]["children"])
        if node["props"].get("data-student") == "tile-1"
    )
    assert "silenced" in snoozed["className"].split() and "snoozed, 10 min left" in text(snoozed)
    assert not [node for node in walk(snoozed["children"]) if isinstance(node["props"].get("id"), dict)]

    # Mute from tile-2's flag: "absent" for the whole class, tile-1 included.
    mute = button_of(shown[ids.FLAG_LIST]["children"], ids.FLAG_MUTE, "tile-2")
    assert click(client, ids.FLAG_MUTE, mute, session) == (200, [{"children": "Muted", "disabled": True}])
    shown = opened(engine, session)
    assert attention(shown) == [] and "Nobody needs attention" in text(shown[ids.NEEDS_ATTENTION]["children"])
    silenced = shown[ids.SILENCED]["children"]
    assert " ".join(text(silenced).split()) == "Silenced: tile-1 snoozed, 10 min left Unsnooze “away” muted Unmute"

    undo = [node["props"]["id"]["index"] for node in walk(silenced) if isinstance(node["props"].get("id"), dict)]
    for index in undo:
        assert click(client, ids.LIFT_SILENCE, index, session) == (200, [{"children": "Undone", "disabled": True}])
    assert click(client, ids.LIFT_SILENCE, "999", session) == (204, [])  # no such silence in this session
    shown = opened(engine, session)
    assert attention(shown) == [("absent", "2")] and shown[ids.SILENCED]["children"] == []
    assert flag_silences_of(engine, info.id) == []


def test_only_an_admin_or_the_teacher_who_owns_the_session_may_snooze_mute_or_undo(engine: Engine) -> None:
    record(engine, "two-leave", TWO_LEAVE, start=ABSENCE_START)
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == "two-leave").values(teacher="alice"))
    info = find_session(engine, "two-leave")
    session = {"id": info.id, "name": info.name}
    flag = flag_id("tile-1", "absent", ABSENCE_START + timedelta(seconds=15))
    app = create_app(engine)
    bob = signed_in_client(app, engine, "bob", Role.TEACHER)
    # Another teacher cannot see the session, so the server answers as for any refused callback: no update.
    for button in (ids.FLAG_SNOOZE, ids.FLAG_MUTE, ids.FLAG_ACK):
        assert click(bob, button, flag, session) == (204, []), button
    assert flag_silences_of(engine, info.id) == [] and acknowledged_flags(engine, info.id) == set()

    alice = signed_in_client(app, engine, "alice", Role.TEACHER)
    assert click(alice, ids.FLAG_SNOOZE, flag, session)[0] == 200
    (snooze,) = flag_silences_of(engine, info.id)
    assert (snooze.student, snooze.rule, snooze.created_by) == ("tile-1", None, "alice")
    snoozed = timedelta(minutes=DashboardConfig().snooze_minutes)
    assert snooze.until == ABSENCE_START + timedelta(seconds=100) + snoozed  # the session's time
    assert click(bob, ids.LIFT_SILENCE, str(snooze.id), session) == (204, [])
    assert flag_silences_of(engine, info.id) == [snooze]


def test_changing_the_window_starts_a_fresh_state(engine: Engine) -> None:
    stored = tick(engine, "period-1", None, T0 + timedelta(seconds=25))[0]
    assert tick(engine, "period-1", stored, T0 + timedelta(seconds=26), window="all")[0] != stored
    again = shared_state(engine, "period-1", window=None)
    assert again.window_s is None
    assert again.counts.to_numpy().sum() == len(observation_rows(engine, find_session(engine, "period-1").id))


def test_a_session_without_faces_says_so_in_the_student_grid(engine: Engine) -> None:
    _, timeline, count, _, grid, *_ = tick(engine, "cameras-off", None, T0 + timedelta(hours=1, seconds=3))
    assert "No faces found yet" in grid[0].children
    assert count == "0 student(s) seen, 0 face observation(s)"
    assert "No faces seen yet" in timeline.layout.annotations[0].text


def test_a_session_before_its_first_frame_says_it_is_waiting(engine: Engine) -> None:
    SessionRecorder.open(engine, "just-started", "screen")  # capture has begun; no frame analysed yet
    _, timeline, count, _, grid, banner, hidden, *_ = tick(engine, "just-started", None, T0 + timedelta(hours=2))

    assert shared_state(engine, "just-started").last_seen is None
    assert "No frames yet" in timeline.layout.annotations[0].text
    assert count == "0 student(s) seen, 0 face observation(s)"
    assert "No faces found yet" in grid[0].children
    assert "Waiting for the first frame" in banner and hidden is False


def test_browsers_share_one_state_per_session_and_an_unchanged_session_sends_only_the_banner(engine: Engine) -> None:
    info = find_session(engine, "period-1")
    # Browsers asking at once (waitress' threads) wait for one refresh and share it: one token, one view.
    with ThreadPoolExecutor(8) as pool:
        views = list(pool.map(lambda _: LIVE_HUB.view(engine, info, DEFAULT_WINDOW_SECONDS), range(16)))
    assert len({id(view) for view in views}) == 1
    first = tick(engine, "period-1", None, T0 + timedelta(seconds=25))
    other = tick(engine, "period-1", "an older page", T0 + timedelta(seconds=25))
    assert other[0] == first[0] and other[4] is first[4]  # one page drawn for both browsers

    again = LiveOutputs(*tick(engine, "period-1", first[0], T0 + timedelta(minutes=5)))
    assert again.student_grid is no_update and again.timeline is no_update and again.state is no_update
    assert "ended" in again.banner and again.banner_hidden is False  # the banner alone follows the clock

    # A frame written changes the session: the next refresh draws it, under a new token.
    record(engine, "period-1", [(26, {"tile-0": NEUTRAL})], first_index=len(PERIOD_1))
    assert LIVE_HUB.view(engine, info, DEFAULT_WINDOW_SECONDS) is not views[0]
    later = tick(engine, "period-1", first[0], T0 + timedelta(seconds=27))
    assert later[0] not in (first[0], no_update) and shared_state(engine, "period-1").last_seen == T0 + timedelta(
        seconds=26
    )


def browser_holds(shown: Any, answer: Any) -> Any:
    """What a browser holding `shown` (an output's value as sent, in JSON) holds after `answer`, applied as
    dash-renderer applies it: no_update keeps it, a dash.Patch's operations change it, anything else replaces it."""
    if answer is no_update:
        return shown
    sent = json.loads(json.dumps(answer, cls=PlotlyJSONEncoder))
    if not isinstance(answer, Patch):
        return sent
    held = [json.loads(json.dumps(shown))]  # within a list, so that an operation on the whole value has a parent
    for operation in sent["operations"]:
        *path, last = [0, *operation["location"]]
        parent = held
        for key in path:
            parent = parent[key]
        if operation["operation"] == "Assign":
            parent[last] = operation["params"]["value"]
        elif operation["operation"] == "Delete":
            del parent[last]
        else:
            assert operation["operation"] == "Extend", operation
            parent[last].extend(operation["params"]["value"])
    return held[0]


def test_the_timers_refresh_sends_only_what_changed_and_the_browser_then_holds_the_whole_new_page(
    engine: Engine,
) -> None:
    info = find_session(engine, "period-1")
    session = {"id": info.id, "name": info.name}
    shown = live_tick(engine, session, FIFTEEN_MINUTES, None, T0 + timedelta(seconds=25), patch=True)
    held = {name: browser_holds(None, value) for name, value in zip(LIVE_OUTPUTS, shown, strict=True)}
    # The capture goes on: a frame in the last bin, one in a new bin, and a newcomer.
    record(
        engine,
        "period-1",
        [(26, {"tile-0": NEUTRAL, "tile-1": NEUTRAL}), (31, {"tile-1": SAD, "tile-3": HAPPY})],
        first_index=len(PERIOD_1),
    )
    for second in (32, 34):
        LIVE_HUB.settle()  # the second refresh shows the new bin's scoring
        answer = live_tick(engine, session, FIFTEEN_MINUTES, shown.state, T0 + timedelta(seconds=second), patch=True)
        # A browser opening the page now is sent it whole: the same page, drawn once.
        whole = live_tick(engine, session, FIFTEEN_MINUTES, None, T0 + timedelta(seconds=second), patch=True)
        assert answer.state == whole.state != shown.state
        assert isinstance(answer.student_grid, Patch) and isinstance(answer.timeline, Patch)
        held = {name: browser_holds(held[name], value) for name, value in zip(LIVE_OUTPUTS, answer, strict=True)}
        for name, value in zip(LIVE_OUTPUTS, whole, strict=True):
            assert held[name] == browser_holds(None, value), name
        shown = whole
    assert [card["props"]["data-student"] for card in held[(ids.STUDENT_GRID, "children")]] == [
        "tile-0",
        "tile-1",
        "tile-2",
        "tile-3",
    ]
    # A browser showing a page no longer kept is sent the page whole.
    again = live_tick(engine, session, FIFTEEN_MINUTES, shown.state + "-older", T0 + timedelta(seconds=36), patch=True)
    assert isinstance(again.student_grid, list)


def test_the_live_page_of_an_ended_session_warms_its_report(engine: Engine) -> None:
    forget_reports()
    session = find_session(engine, "period-1")  # ended: `record` closes it
    tick(engine, "period-1", None, T0 + timedelta(minutes=5))
    assert warm_report(engine, session, engagement_config()) is None  # the refresh started it already
    report_tables(engine, session, engagement_config())  # waits for that computation if still running
    assert find_session(engine, "period-1").mean_engagement is not None

    with engine.begin() as connection:  # as if its capture were still running: nothing to warm yet
        connection.execute(update(sessions).where(sessions.c.name == "cameras-off").values(ended_at=None))
    tick(engine, "cameras-off", None, T0 + timedelta(hours=1, seconds=5))
    assert warm_report(engine, find_session(engine, "cameras-off"), engagement_config()) is None
    assert find_session(engine, "cameras-off").mean_engagement is None


def on_since(student: str, rule: str, minutes: float, name: str | None = None) -> Flag:
    """A flag on now (NOW) whose condition began `minutes` ago."""
    start = pd.Timestamp(NOW - timedelta(minutes=minutes))
    cause = rule.replace("_", " ")
    return Flag(student, name, rule, f"{rule} reason", start, start + timedelta(seconds=60), None, cause)


NOW = T0 + timedelta(hours=1)


def on(flag: Flag) -> ShownFlag:
    """`flag` needing attention: nobody has acknowledged, snoozed or muted it."""
    return ShownFlag(flag, acknowledged=False, silenced_by=None)


def test_needs_attention_groups_flags_by_kind_most_serious_and_longest_first_in_a_few_lines() -> None:
    flags = [on_since(f"tile-{n}", "camera_off", minutes=n, name=f"S{n}") for n in range(1, 8)]
    flags += [on_since("tile-8", "looking_away", minutes=9), on_since("tile-9", "absent", minutes=2, name="Ana")]
    lines = [serialised(line)["props"] for line in needs_attention(flags, NOW)]

    assert [(line["data-rule"], line["data-count"]) for line in lines] == [
        ("absent", "1"),
        ("camera_off", "7"),
        ("looking_away", "1"),
    ]
    assert text(lines[0]) == "1 student away  Ana  · longest 2 min"
    # The longest-standing first, the rest counted.
    assert text(lines[1]) == "7 cameras off  S7, S6, S5 +4  · longest 7 min"
    assert "tile-8" in text(lines[2])  # a student without a name is named by their key


def test_needs_attention_keeps_to_a_handful_of_lines_and_says_when_nobody_needs_it() -> None:
    rules = ("absent", "camera_off", "eyes_closed", "looking_away", "drop", "negative", "a_new_rule")
    lines = needs_attention([on_since(f"tile-{n}", rule, minutes=1) for n, rule in enumerate(rules)], NOW)
    assert len(lines) == ATTENTION_LINES + 1
    assert text(serialised(lines[-1])) == f"and {len(rules) - ATTENTION_LINES} more flag(s) in the list below"
    assert "Nobody needs attention" in text(serialised(needs_attention([], NOW)))


def test_presence_line_counts_who_is_in_the_call_attentive_and_not_seen() -> None:
    states = {"a": ATTENTIVE, "b": ATTENTIVE, "c": "face", "d": "camera_off", "e": "empty", "f": "absent"}
    assert presence_line(states) == (
        "5 of 6 in the call · 2 attentive · 1 camera(s) off · 1 seat(s) empty · 1 not in the call"
    )
    assert presence_line({"a": ATTENTIVE}) == "1 of 1 in the call · 1 attentive"


def test_a_flagged_card_says_why_in_words_and_a_camera_off_student_shows_that_not_an_engagement() -> None:
    student = pd.DataFrame(
        {"student": ["tile-4"], "name": ["Ana"], "first_seen": [T0], "last_seen": [NOW], "emotion": [None]}
    )
    flag = on_since("tile-4", "camera_off", minutes=6)
    state = dataclasses.replace(
        LiveState.start(1, None), scores={"tile-4": 0.0}, states={"tile-4": "camera_off"}, flags=[flag]
    )
    (card,) = [serialised(card)["props"] for card in student_cards(student, {}, T0, NOW, state, [on(flag)], {})]

    since = f"camera off since {local_time(flag.start)}, 6 min"
    assert since in text(card) and "camera off" in text(card["children"][1])
    assert "engagement –" in text(card) and "engagement 0.00" not in text(card)
    assert (card["data-state"], card["data-flagged"]) == ("camera_off", "true")
    assert "flagged" in card["className"].split()
    assert card["style"]["borderLeft"].endswith(ABSENT_COLOR)

    # Seen to: the card still says why, and what was done, but no longer stands out.
    mute = FlagSilence(1, None, "camera_off", None, "teacher", T0)
    for board, done in (([ShownFlag(flag, True, None)], "acknowledged"), ([ShownFlag(flag, False, mute)], "muted")):
        (card,) = [serialised(card)["props"] for card in student_cards(student, {}, T0, NOW, state, board, {})]
        assert f"{since} ({done})" in text(card) and "flagged" not in card["className"].split()


def test_times_are_shown_in_the_viewers_time_zone_named_on_the_page(engine: Engine, client: FlaskClient) -> None:
    def subtitle(zone: str) -> str:
        client.set_cookie(ZONE_COOKIE, quote(zone, safe=""))  # as assets/time_zone.js sets it
        tree = page(client, "/live/period-1")
        return text(next(node for node in walk(tree) if node["props"].get("className") == "subtitle"))

    shown = subtitle("America/New_York")
    assert "times in America/New_York" in shown
    started = pd.Timestamp(find_session(engine, "period-1").started_at).tz_convert("America/New_York")
    assert f"started {started:%Y-%m-%d %H:%M}" in shown
    machine = datetime.now().astimezone().strftime("%Z")
    for unusable in ("Not/AZone", "../../etc/passwd"):  # the cookie comes from the browser
        assert f"times in {machine}" in subtitle(unusable)


def test_status_banner(engine: Engine) -> None:
    ended = find_session(engine, "period-1")
    running = dataclasses.replace(ended, ended_at=None)
    last = T0 + timedelta(seconds=24)

    assert status_banner(running, last, last + timedelta(seconds=5)) is None
    assert "not sending rows" in status_banner(running, last, last + timedelta(seconds=42))
    assert "42 s ago" in status_banner(running, last, last + timedelta(seconds=42))
    assert "ended" in status_banner(ended, last, last + timedelta(seconds=5))
    assert "Waiting for the first frame" in status_banner(running, None, last)


# Figures and theme.


def test_each_emotion_has_its_own_colour_and_a_text_colour_in_emotions_order() -> None:
    assert tuple(EMOTION_COLORS) == EMOTIONS == tuple(EMOTION_TEXT_COLORS)
    assert len(set(EMOTION_COLORS.values())) == len(EMOTIONS)


def test_mood_timeline_stacks_shares_in_the_theme_colours_and_shows_gaps_as_zero(engine: Engine) -> None:
    rows = observation_rows(engine, find_session(engine, "period-1").id)
    # Leave out the middle bin: the chart must not bridge it.
    counts = emotion_counts(rows).drop(index=pd.Timestamp(T0 + timedelta(seconds=10)))
    figure = mood_timeline(counts)

    assert [(trace.name, trace.fillcolor) for trace in figure.data] == list(EMOTION_COLORS.items())
    totals = [sum(trace.y[i] for trace in figure.data) for i in range(3)]
    assert totals == pytest.approx([1.0, 0.0, 1.0])


def test_mood_now_chart_and_sparkline_use_the_emotions_colours(engine: Engine) -> None:
    rows = observation_rows(engine, find_session(engine, "period-1").id)
    bars = mood_now_chart(mood_confidence(rows, T0 + timedelta(seconds=24))).data[0]
    assert list(bars.marker.color) == [EMOTION_COLORS[e] for e in EMOTIONS]

    dominant = pd.Series(["happy", "sad"], index=pd.DatetimeIndex([T0, T0 + timedelta(seconds=10)]))
    # An HTML strip (dashboard.figures.sparkline): each bar in its emotion's colour, at its bin's place.
    strip = sparkline(dominant, T0, T0 + timedelta(minutes=5)).style["backgroundImage"]
    bars = re.findall(r"(#[0-9A-F]{6}) ([0-9.]+)% ([0-9.]+)%", strip)
    assert bars == [(EMOTION_COLORS["happy"], "0.00", "3.00"), (EMOTION_COLORS["sad"], "3.33", "6.33")]  # 10 s of 300

    # Consecutive bins of one emotion are one bar; a missing bin or another emotion starts a new one.
    seen = [0, 1, 2, 4, 5, 6]
    dominant = pd.Series(
        ["happy"] * 4 + ["sad"] * 2, index=pd.DatetimeIndex([T0 + timedelta(seconds=10 * i) for i in seen])
    )
    strip = sparkline(dominant, T0, T0 + timedelta(minutes=5)).style["backgroundImage"]
    bars = re.findall(r"(#[0-9A-F]{6}) ([0-9.]+)% ([0-9.]+)%", strip)
    happy, sad = EMOTION_COLORS["happy"], EMOTION_COLORS["sad"]
    assert bars == [(happy, "0.00", "9.67"), (happy, "13.33", "16.33"), (sad, "16.67", "23.00")]


# Renaming and merging students from their row of the report page.


def press(
    client: FlaskClient,
    trigger: str | dict[str, str],
    state: dict[tuple[str, str], Any],
    session: str = "period-1",
) -> tuple[int, dict[str, Any]]:
    """Press a button of `session`'s report as the browser does: `trigger` is the button's id (a row's button:
    {"type": ..., "index": student key}), the callback it fires is the one with it among its inputs, every
    other button of that callback unpressed, and its inputs and state hold `state` ({(id, property): value}; a
    button unnamed there is pressed once) and the session. The HTTP status and {component id: {property:
    value}} it answers."""
    kind = trigger["type"] if isinstance(trigger, dict) else trigger

    def named(spec_id: str) -> str:
        return json.loads(spec_id)["type"] if spec_id.startswith("{") else spec_id

    (callback,) = [
        callback
        for callback in client.get("/_dash-dependencies").get_json()
        if any(named(spec["id"]) == kind for spec in callback["inputs"]) and not callback.get("clientside_function")
    ]

    def given(spec: dict[str, str]) -> Any:
        if spec["id"].startswith("{"):  # a pattern (ALL): every such button on the page, only `trigger` pressed
            pressed = [trigger] if named(spec["id"]) == kind else []
            return {
                "id": spec["id"],
                "property": spec["property"],
                "value": [{"id": button, "property": spec["property"], "value": 1} for button in pressed],
            }
        value = state.get((spec["id"], spec["property"]), 1 if spec["id"] == trigger else None)
        return {"id": spec["id"], "property": spec["property"], "value": value}

    (pressed,) = [spec for spec in callback["inputs"] if named(spec["id"]) == kind]
    outputs = [name.split(".", 1) for name in callback["output"].strip(".").split("...")]
    targets = [{"id": output_id, "property": prop} for output_id, prop in outputs]
    changed = json.dumps(trigger, separators=(",", ":"), sort_keys=True) if isinstance(trigger, dict) else trigger
    payload = {
        "output": callback["output"],
        "outputs": targets[0] if len(targets) == 1 else targets,
        "inputs": [given(spec) for spec in callback["inputs"]],
        "state": [
            given(spec) | ({"value": session} if spec["id"] == ids.REPORT_SESSION else {}) for spec in callback["state"]
        ],
        "changedPropIds": [f"{changed}.{pressed['property']}"],
    }
    response = client.post("/_dash-update-component", json=payload)
    return response.status_code, response.get_json()["response"] if response.status_code == 200 else {}


def rename(client: FlaskClient, student: str, typed: Any) -> tuple[int, dict[str, Any]]:
    """Type `typed` into the rename panel opened for `student` and press Rename."""
    return press(client, ids.RENAME_BUTTON, {(RENAME_KEPT, "data"): student, (ids.RENAME_NAME, "value"): typed})


def merge(client: FlaskClient, kept: str, chosen: list[str]) -> tuple[int, dict[str, Any]]:
    """Choose `chosen` in the merge panel opened for `kept` and confirm."""
    return press(client, MERGE_CONFIRM, {(MERGE_KEPT, "data"): kept, (MERGE_WITH, "value"): chosen})


def report_names(tree: Any) -> list[tuple[str, str]]:
    """(key, name) of each row of a report page's students table."""
    rows = table_rows(component(tree, ids.REPORT_STUDENTS))
    return [(cell_text(row["props"]["children"][0]), cell_text(row["props"]["children"][1])) for row in rows]


def heatmap_rows(tree: Any) -> list[str]:
    return component(tree, ids.REPORT_HEATMAP)["figure"]["data"][0]["y"]


def test_a_rows_rename_opens_with_their_name_and_redraws_the_report_with_the_name_as_typed(
    client: FlaskClient,
) -> None:
    report = page(client, "/report/period-1")
    assert ids.REPORT_PRINT in component_ids(report)
    assert component(report, RENAME_PANEL)["hidden"] is True
    status, opened = press(client, {"type": RENAME_OPEN, "index": "tile-1"}, {})
    assert status == 200 and opened[RENAME_PANEL]["hidden"] is False and opened[RENAME_KEPT]["data"] == "tile-1"
    assert opened[RENAME_TITLE]["children"] == "Rename tile-1" and opened[ids.RENAME_NAME]["value"] == ""
    assert opened[MERGE_NOTICE]["children"] is None  # the last notice would show behind the panel

    typed = "  Ada <b>L</b><script>x()</script> "
    status, response = rename(client, "tile-1", typed)
    assert status == 200
    name = typed.strip()
    redrawn = response[ids.PAGE]["children"]
    assert report_names(redrawn) == [("tile-0", ""), ("tile-1", name), ("tile-2", "")]
    # Chart labels are the one place Plotly reads markup; the table and menus show text as text.
    assert heatmap_rows(redrawn) == ["tile-0", "Ada &lt;b&gt;L&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;", "tile-2"]
    assert response[ids.FIX_MESSAGE]["children"] == f"Renamed tile-1 to {name}."
    assert text(component(redrawn, MERGE_NOTICE)) == f"Renamed tile-1 to {name}."
    assert component(redrawn, RENAME_PANEL)["hidden"] is True  # closed by the redraw
    assert report_names(page(client, "/report/period-1"))[1] == ("tile-1", name)
    # Opened again, the panel holds the name to be changed.
    assert press(client, {"type": RENAME_OPEN, "index": "tile-1"}, {})[1][ids.RENAME_NAME]["value"] == name
    assert press(client, RENAME_CANCEL, {})[1][RENAME_PANEL]["hidden"] is True


def test_a_rows_merge_moves_the_rows_redraws_the_report_without_them_and_its_undo_brings_them_back(
    client: FlaskClient,
) -> None:
    status, opened = press(client, {"type": MERGE_OPEN, "index": "tile-0"}, {})
    assert status == 200 and opened[MERGE_KEPT]["data"] == "tile-0"
    assert [option["value"] for option in opened[MERGE_WITH]["options"]] == ["tile-1", "tile-2"]
    status, asked = press(client, MERGE_WITH, {(MERGE_KEPT, "data"): "tile-0", (MERGE_WITH, "value"): ["tile-2"]})
    confirm = text(asked[MERGE_CONFIRM_TEXT]["children"])
    assert "tile-2 (16 s present)" in confirm and "tile-0 (28 s present)" in confirm
    assert asked[MERGE_CONFIRM]["disabled"] is False and asked[MERGE_CONFIRM]["children"] == "Yes, merge 1 into 1"

    status, response = merge(client, "tile-0", ["tile-2"])
    assert status == 200
    redrawn = response[ids.PAGE]["children"]
    notice = component(redrawn, MERGE_NOTICE)
    assert text(notice).startswith("Merged tile-2 (16 s present) into tile-0 (28 s present): 4 observation(s) moved.")
    assert report_names(redrawn) == [("tile-0", ""), ("tile-1", "")]
    assert heatmap_rows(redrawn) == ["tile-0", "tile-1"]

    (undo,) = [item["props"]["id"] for item in walk(notice["children"]) if item["type"] == "Button"]
    status, response = press(client, undo, {})
    assert status == 200
    back = response[ids.PAGE]["children"]
    assert report_names(back) == [("tile-0", ""), ("tile-1", ""), ("tile-2", "")]
    assert text(component(back, MERGE_NOTICE)) == "Undone: tile-2 back as before."


def test_students_who_share_a_name_keep_a_heatmap_row_each(client: FlaskClient) -> None:
    for student in ("tile-0", "tile-2"):
        status, response = rename(client, student, "Sam")
        assert status == 200
    assert heatmap_rows(response[ids.PAGE]["children"]) == ["Sam (tile-0)", "tile-1", "Sam (tile-2)"]


def test_a_refused_rename_or_merge_says_why_in_one_line_and_changes_nothing(
    engine: Engine, client: FlaskClient
) -> None:
    status, response = rename(client, "tile-1", "  ")
    assert status == 200 and list(response) == [ids.FIX_MESSAGE]  # the page is left as it is
    assert response[ids.FIX_MESSAGE]["children"] == "Not changed: the new name is empty."
    assert rename(client, "tile-9", "Ada")[1][ids.FIX_MESSAGE]["children"].startswith("Not changed: ")

    def refused(kept: str, chosen: list[str]) -> str:
        status, response = merge(client, kept, chosen)
        assert status == 200
        redrawn = response[ids.PAGE]["children"]
        assert report_names(redrawn) == [("tile-0", ""), ("tile-1", ""), ("tile-2", "")]
        return text(component(redrawn, MERGE_NOTICE))

    assert "are the same student" in refused("tile-0", ["tile-0"])
    with engine.begin() as connection:  # as if its capture were still running
        connection.execute(update(sessions).where(sessions.c.name == "period-1").values(ended_at=None))
    live = refused("tile-0", ["tile-2"])
    assert live.startswith("Not merged: session 'period-1' is still being captured") and "\n" not in live
    assert report_names(page(client, "/report/period-1")) == [("tile-0", ""), ("tile-1", ""), ("tile-2", "")]


def test_only_an_admin_or_the_teacher_who_owns_the_session_may_fix_its_students(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == "period-1").values(teacher="alice"))
    app = create_app(engine)
    # Another teacher cannot see the session, so the server answers as for any refused callback: no update.
    assert rename(signed_in_client(app, engine, "bob", Role.TEACHER), "tile-1", "Ada") == (204, {})
    assert merge(signed_in_client(app, engine, "bob", Role.TEACHER), "tile-0", ["tile-2"]) == (204, {})
    assert report_names(page(signed_in_client(app, engine), "/report/period-1")) == [
        ("tile-0", ""),
        ("tile-1", ""),
        ("tile-2", ""),
    ]
    for name, role in (("alice", Role.TEACHER), ("admin", Role.ADMIN)):
        status, response = rename(signed_in_client(app, engine, name, role), "tile-1", f"Ada for {name}")
        assert status == 200 and report_names(response[ids.PAGE]["children"])[1] == ("tile-1", f"Ada for {name}")


# Downloads.


def read_csv(download: dict[str, Any]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(download["content"])))


def test_students_download_is_the_reports_students_csv(engine: Engine, tmp_path: Path) -> None:
    download = students_download(engine, "period-1")
    table = read_csv(download)
    assert download["filename"] == "period-1-students.csv"
    assert [(row["student"], row["last_seen"]) for row in table] == [
        ("tile-0", "2025-03-04T09:00:24Z"),
        ("tile-1", "2025-03-04T09:00:24Z"),
        ("tile-2", "2025-03-04T09:00:12Z"),
    ]
    assert float(table[0]["share_happy"]) == pytest.approx(4 / 7, abs=1e-3)
    write_report(engine, "period-1", tmp_path, engagement_config())
    assert download["content"] == (tmp_path / "students.csv").read_text()


def test_rows_download_is_the_export_format(engine: Engine) -> None:
    table = read_csv(rows_download(engine, "period-1"))
    assert list(table[0]) == list(CSV_COLUMNS)
    assert len(table) == sum(len(faces) for _, faces in PERIOD_1)
    assert table[0]["emotion"] == "happy"


def test_downloads_of_a_session_without_faces_hold_only_their_header(engine: Engine) -> None:
    students = students_download(engine, "cameras-off")["content"].splitlines()
    assert len(students) == 1 and students[0].startswith("student,name,first_seen,last_seen,seconds_present,")
    assert rows_download(engine, "cameras-off")["content"].splitlines() == [",".join(CSV_COLUMNS)]


# Opening the database and the command line.


def test_open_database_brings_an_unmigrated_file_to_the_current_schema(tmp_path: Path) -> None:
    blank = tmp_path / "blank.db"
    blank.touch()
    engine = open_database(f"sqlite:///{blank}")
    assert current_revision(engine) == head_revision()
    assert "No sessions yet" in text(page(signed_in_client(create_app(engine), engine), "/"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_with_a_missing_database_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "classpulse.db"
    result = run_cli("--db", f"sqlite:///{missing}")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert str(missing) in result.stderr
    assert not missing.exists()


def test_cli_with_a_busy_port_prints_one_line_and_exits_2(url: str, engine: Engine) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("--db", url, "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
