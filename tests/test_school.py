"""The admin's school view and admin page: teachers never reach them (pages or callbacks), the running classes'
numbers and the trends agree with a recomputation from the raw rows, and users and capture tokens are managed
from the page through the app's real callback requests (CSRF token included)."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select, update

from analytics.engagement import class_bins, frame_signals, student_bins
from analytics.live import engagement_config
from analytics.live_flags import flag_board
from analytics.school import SCHOOL_BOARD, TREND_SECONDS, ClassNow, SchoolBoard, class_name, session_trends, trends
from dashboard.app import create_app
from dashboard.pages import admin, school
from dashboard.router import ADMIN_LINKS
from db.classes import class_for
from db.migrate import upgrade
from db.queries import engagement_rows, find_session
from db.recorder import SessionRecorder
from db.schema import frames, observations, sessions
from db.tokens import issue_token, list_tokens, token_owner
from db.users import Role, add_user, check_login, find_user
from tests.dashboard_users import PASSWORD, signed_in_client
from tests.test_dashboard import dash_call, page, text
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

STUDENTS = 8
FRAMES = 420  # 7 minutes at 1 frame/s: longer than the trend line and the flags' spans
CAMERA_OFF = ("tile-6", "tile-7")  # their cameras go off CAMERA_OFF_AT s before the end: one flag each
CAMERA_OFF_AT = 150
LATE_FRAMES = 45  # the running classes' last frames, written after the school view has scored the others
NEW_PASSWORD = "violet tractor umbrella"


def scripted_class(
    engine: Engine,
    name: str,
    teacher: str,
    start: datetime,
    seed: int,
    indices: range = range(FRAMES),
    running: bool = False,
) -> None:
    """Frames `indices` of a class of STUDENTS through the real recorder: faces with varied pose, eyes and
    expressions (no flag between them: heads within the attentive angles, eyes open, mild expressions), and
    CAMERA_OFF's cameras off for the last CAMERA_OFF_AT s of FRAMES. `running`: its end is cleared afterwards,
    as while capture still runs."""
    rng = np.random.default_rng([seed, indices.start])
    with SessionRecorder.open(engine, name, "screen:1", teacher=teacher) as recorder:
        for index in indices:
            found = []
            for n in range(STUDENTS):
                key = f"tile-{n}"
                tile = Box(100 * n, 0, 100, 100)
                if key in CAMERA_OFF and index >= FRAMES - CAMERA_OFF_AT:
                    signals = FaceSignals(Presence.CAMERA_OFF, None, None, None, None, None)
                    found.append(Observation(key, tile, tile, None, None, signals))
                    continue
                probabilities = rng.dirichlet(np.array([1, 1, 1, 6, 1, 2, 6], float))
                yaw, pitch = float(rng.normal(0, 8)), float(rng.normal(0, 5))
                signals = FaceSignals(Presence.FACE, yaw, pitch, 0.3, False, int(index % 3))
                face = Box(tile.x + 20, 20, 50, 60)
                found.append(Observation(key, tile, face, probabilities, int(probabilities.argmax()), signals))
            recorder.record(FrameResult(index, start + timedelta(seconds=index), found, 5.0))
    with engine.begin() as connection:
        # Recorded now, as if it had begun at `start` (capture stamps a session's start with the wall clock).
        named = sessions.c.name == name
        connection.execute(update(sessions).where(named, sessions.c.started_at > start).values(started_at=start))
        if running:
            connection.execute(update(sessions).where(named).values(ended_at=None))


RunningClass = tuple[str, str, datetime, int]  # session name, teacher, start, seed


def running_classes() -> tuple[RunningClass, RunningClass]:
    """alice's and bob's classes, their frames ending just before now. Called when a test writes them, not when
    the module is imported: a class counts as running only while its newest frame is under 10 minutes old,
    and a whole test run takes longer than that."""
    # On a 10 s boundary: how many 10 s bins the 5-minute trend line spans depends on where its frames fall in
    # them, and a test that counts them must not pass or fail with the second it runs at.
    now = datetime.fromtimestamp(time.time() // 10 * 10, UTC)
    return (
        ("maths-7b 2026-12-03", "alice", now - timedelta(seconds=FRAMES), 1),
        ("history-9 2026-12-03", "bob", now - timedelta(seconds=FRAMES + 30), 2),
    )


@pytest.fixture
def running() -> tuple[RunningClass, RunningClass]:
    return running_classes()


@pytest.fixture
def engine(tmp_path: Path, running: tuple[RunningClass, RunningClass]) -> Iterator[Engine]:
    """alice's 'maths-7b 2026-12-03' and bob's 'history-9 2026-12-03' running, all but their LATE_FRAMES written;
    a finished earlier maths-7b."""
    migrated = upgrade(f"sqlite:///{tmp_path / 'classpulse.db'}")
    for name in ("alice", "bob"):
        add_user(migrated, name, Role.TEACHER, PASSWORD)
    for name, teacher, start, seed in running:
        scripted_class(migrated, name, teacher, start, seed, range(FRAMES - LATE_FRAMES), running=True)
    scripted_class(migrated, "maths-7b 2026-11-26", "alice", running[0][2] - timedelta(days=7), seed=3)
    yield migrated
    migrated.dispose()


@pytest.fixture
def app(engine: Engine) -> Dash:
    return create_app(engine)


def up_to_date(engine: Engine, board: SchoolBoard = SCHOOL_BOARD) -> list[ClassNow]:
    """`board`'s refreshes until every class's flags are counted at its latest frame (its counter thread counts
    them; a refresh reads each line's bins from its last kept one on)."""
    for _ in range(600):
        classes = board.refresh(engine)
        latest = [seen.session.latest_frame for seen in classes]
        if all(seen.scored_at == seen.flags_at == at for seen, at in zip(classes, latest, strict=True)):
            return classes
        time.sleep(0.05)
    raise AssertionError("the school view's flag counts did not catch up in 600 refreshes")


def raw_lines(engine: Engine, session_id: int, emotion_window_seconds: float) -> tuple[pd.Series, pd.Timestamp]:
    """The session's class engagement per bin from every raw row, scored by analytics.engagement as its report
    scores it but for the expression's trailing window; and its latest frame's time."""
    score = engagement_config().score.model_copy(update={"emotion_window_seconds": emotion_window_seconds})
    rows, frame_table = engagement_rows(engine, session_id, score.negative_emotions)
    whole = class_bins(student_bins(frame_signals(rows, frame_table, score), score.bin_seconds))
    return whole.set_index("bin")["score"], frame_table["ts"].max()


def test_running_classes_agree_with_a_recomputation_from_every_raw_row(
    engine: Engine, running: tuple[RunningClass, RunningClass]
) -> None:
    config = engagement_config()
    assert len(up_to_date(engine)) == 2
    for name, teacher, start, seed in running:
        scripted_class(engine, name, teacher, start, seed, range(FRAMES - LATE_FRAMES, FRAMES), running=True)
    classes = {seen.session.name: seen for seen in up_to_date(engine)}
    assert sorted(classes) == ["history-9 2026-12-03", "maths-7b 2026-12-03"]
    for name, seen in classes.items():
        session = find_session(engine, name)
        assert seen.session.teacher == session.teacher
        # At one frame a second with every student in every frame, the roll-ups' score is the raw rows' score
        # with each frame's own expression (db.rollups): a trailing window of 1 ms holds only the frame.
        whole, latest = raw_lines(engine, session.id, 0.001)
        assert seen.scored_at == seen.session.latest_frame == latest.to_pydatetime()
        expected = whole[whole.index >= (latest - timedelta(seconds=TREND_SECONDS)).ceil("10s")]
        assert len(seen.line) == len(expected) >= 29
        assert list(seen.line.index) == list(expected.index)
        np.testing.assert_allclose(seen.line.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
        last_minute = whole[whole.index > latest - timedelta(seconds=60)]
        assert seen.engagement == pytest.approx(float(last_minute.mean()), abs=1e-12)
        first_minute = expected[expected.index < expected.index[0] + timedelta(seconds=60)]
        assert seen.change == pytest.approx(float(last_minute.mean() - first_minute.mean()), abs=1e-12)
        # The report's own smoothing moves a bin's score by little: the expression is 0.1 of the weights.
        smoothed, _ = raw_lines(engine, session.id, config.score.emotion_window_seconds)
        np.testing.assert_allclose(seen.line.to_numpy(), smoothed[expected.index].to_numpy(), rtol=0, atol=0.01)
        with engine.connect() as connection:
            last = connection.execute(
                select(observations.c.presence).where(
                    observations.c.session_id == session.id, observations.c.ts == latest.to_pydatetime()
                )
            ).all()
        assert (seen.in_call, seen.on_camera) == (len(last), sum(p == "face" for (p,) in last)) == (8, 6)
        assert seen.open_flags == len(CAMERA_OFF)  # the two cameras off, and nothing else happened
        # The count kept for the school view is the one the live page's flags give from every raw row.
        board = flag_board(engine, session.id, config)
        assert seen.open_flags == sum(shown.needs_attention for shown in board)


def test_every_refresh_has_every_class_line_and_never_reads_a_raw_row(
    engine: Engine, running: tuple[RunningClass, RunningClass]
) -> None:
    board = SchoolBoard()
    read: list[str] = []

    def reads(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        read.append(statement)  # the flag counter, which reads raw rows, is a process with an engine of its own

    event.listen(engine, "before_cursor_execute", reads)
    try:
        classes = up_to_date(engine, board)
    finally:
        event.remove(engine, "before_cursor_execute", reads)
    # Newest frame first: maths-7b, then history-9 (which started 30 s earlier).
    assert [len(seen.line) for seen in classes] == [30, 30]
    assert read and not [statement for statement in read if re.search(r"(FROM|JOIN)\s+observations\b", statement)]
    # Frames written since the last refresh are in the next one's lines, with no flag count due.
    name, teacher, start, seed = running[0]
    scripted_class(engine, name, teacher, start, seed, range(FRAMES - LATE_FRAMES, FRAMES), running=True)
    fresh = board.refresh(engine)[0]
    assert fresh.session.name == name and fresh.scored_at == start + timedelta(seconds=FRAMES - 1)
    assert fresh.line.index[-1] == pd.Timestamp(fresh.scored_at).floor("10s")


def test_a_flag_counter_that_ended_is_started_again_by_the_next_refresh_and_counts_on(
    engine: Engine, running: tuple[RunningClass, RunningClass]
) -> None:
    board = SchoolBoard()
    up_to_date(engine, board)
    first = board.counter_pid(engine)
    assert first is not None and first != os.getpid()
    os.kill(first, signal.SIGKILL)  # killed, or ended by an error of its own
    for _ in range(100):
        if board.counter_pid(engine) is None:
            break
        time.sleep(0.05)
    assert board.counter_pid(engine) is None
    for name, teacher, start, seed in running:
        scripted_class(engine, name, teacher, start, seed, range(FRAMES - LATE_FRAMES, FRAMES), running=True)
    classes = up_to_date(engine, board)  # the new counter counts every class again, at its latest frame
    assert board.counter_pid(engine) not in (None, first)
    assert [seen.open_flags for seen in classes] == [len(CAMERA_OFF)] * 2


def test_the_page_refreshes_within_a_second_until_every_class_has_numbers_then_at_its_period(
    app: Dash, engine: Engine
) -> None:
    head = signed_in_client(app, engine, "head", Role.ADMIN)
    outputs = [(school.NOW_ROWS, "children"), (school.NOW_STATUS, "children"), (school.INTERVAL, "interval")]
    periods: list[int] = []
    while len(periods) < 200 and school.refresh_ms() not in periods:
        periods.append(
            dash_call(head, outputs, [(school.INTERVAL, "n_intervals", len(periods))])[school.INTERVAL]["interval"]
        )
        time.sleep(0.05)
    # Until the counter has both classes' flags, the page asks again within a second; then at its period.
    assert periods[0] == school.FILLING_MS and periods[1:] == [school.FILLING_MS] * (len(periods) - 2) + [
        school.refresh_ms()
    ]
    answer = dash_call(head, outputs, [(school.INTERVAL, "n_intervals", len(periods))])
    assert answer[school.NOW_STATUS]["children"].startswith("2 class(es) running")
    assert "8 in the call, 6 on camera" in str(answer[school.NOW_ROWS]["children"])


def test_a_class_that_ends_or_falls_silent_leaves_the_running_list(engine: Engine) -> None:
    assert len(up_to_date(engine)) == 2
    with engine.begin() as connection:  # a killed capture: no end, and its last frame 11 minutes ago
        connection.execute(
            update(frames)
            .where(frames.c.session_id == find_session(engine, "maths-7b 2026-11-26").id)
            .values(ts=datetime.now(UTC) - timedelta(minutes=11))
        )
        connection.execute(update(sessions).where(sessions.c.name == "maths-7b 2026-11-26").values(ended_at=None))
    assert len(up_to_date(engine)) == 2
    with engine.begin() as connection:
        connection.execute(
            update(sessions).where(sessions.c.name == "history-9 2026-12-03").values(ended_at=datetime.now(UTC))
        )
    assert [seen.session.name for seen in SCHOOL_BOARD.refresh(engine)] == ["maths-7b 2026-12-03"]


def test_trends_agree_with_a_recomputation_from_every_raw_row(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == "maths-7b 2026-11-26").values(mean_engagement=0.8))
        connection.execute(update(sessions).where(sessions.c.name == "maths-7b 2026-12-03").values(mean_engagement=0.6))
        presence = pd.DataFrame(
            connection.execute(select(observations.c.session_id, observations.c.presence)).all(),
            columns=["session_id", "presence"],
        )
        frame_counts = pd.DataFrame(connection.execute(select(frames.c.session_id)).all(), columns=["session_id"])
        names = dict(connection.execute(select(sessions.c.id, sessions.c.name)).all())
    now = datetime.now(UTC)
    per_session = session_trends(engine, now - timedelta(days=30), now)
    assert len(per_session) == 3
    for row in per_session.itertuples(index=False):
        session_id = next(key for key, value in names.items() if value == row.session)
        mine = presence[presence["session_id"] == session_id]
        assert row.camera_off == pytest.approx((mine["presence"] == "camera_off").mean())
        assert row.attendance == pytest.approx(len(mine) / (frame_counts["session_id"] == session_id).sum())
    by_class = trends(per_session, "class")
    assert set(by_class["class"]) == {"maths-7b", "history-9"}
    # Asked twice: an ended session's totals are kept, and give the same table.
    again = trends(session_trends(engine, now - timedelta(days=30), now), "class")
    pd.testing.assert_frame_equal(by_class, again)
    by_teacher = trends(per_session, "teacher")
    alice = by_teacher[by_teacher["teacher"] == "alice"]
    # One session a week, newest week first; weeks begin on Mondays.
    assert alice["week"].dt.weekday.tolist() == [0, 0] and alice["week"].diff().iloc[1] == timedelta(days=-7)
    assert alice["sessions"].tolist() == [1, 1] and alice["scored"].tolist() == [1, 1]
    assert alice["engagement"].tolist() == pytest.approx([0.6, 0.8])
    ended = per_session[per_session["session"] == "maths-7b 2026-11-26"]
    assert ended["camera_off"].tolist() == pytest.approx([CAMERA_OFF_AT * len(CAMERA_OFF) / (FRAMES * STUDENTS)])


def test_the_trend_csv_goes_through_the_one_csv_writer(app: Dash, engine: Engine) -> None:
    with engine.begin() as connection:
        # A teacher name cannot start with "=" (db.users), but a session name can: the class column is written safe.
        connection.execute(update(sessions).where(sessions.c.name == "history-9 2026-12-03").values(name="=cmd|x"))
    client = signed_in_client(app, engine, "head", Role.ADMIN)
    answer = dash_call(
        client,
        [(school.DOWNLOAD, "data")],
        [(school.DOWNLOAD_BUTTON, "n_clicks", 1)],
        [(school.TREND_BY, "value", "class"), (school.TREND_WEEKS, "value", 4)],
    )[school.DOWNLOAD]["data"]
    lines = answer["content"].splitlines()
    assert lines[0] == "week,class,teacher,sessions,scored,engagement,attendance,camera_off"
    assert any(line.split(",")[1] == "'=cmd|x" for line in lines[1:]), lines
    assert answer["filename"] == "classpulse-trends-per-class-4w.csv"


def in_class(engine: Engine, class_name: str, teacher: str, *session_names: str) -> None:
    """Put the sessions in `teacher`'s class `class_name` (db.classes), as `capture --class` does."""
    with engine.begin() as connection:
        class_id = class_for(connection, class_name, teacher)
        connection.execute(update(sessions).where(sessions.c.name.in_(session_names)).values(class_id=class_id))


def test_running_classes_and_trends_per_class_name_the_class_a_session_was_recorded_for(
    app: Dash, engine: Engine
) -> None:
    in_class(engine, "Maths 7B", "alice", "maths-7b 2026-12-03", "maths-7b 2026-11-26")
    shown = {seen.session.name: seen.session.class_name for seen in SCHOOL_BOARD.refresh(engine)}
    assert shown == {"maths-7b 2026-12-03": "Maths 7B", "history-9 2026-12-03": None}
    now = datetime.now(UTC)
    by_class = trends(session_trends(engine, now - timedelta(days=30), now), "class")
    # A session without a class is grouped by its name less the date.
    assert set(zip(by_class["class"], by_class["teacher"], strict=True)) == {
        ("Maths 7B", "alice"),
        ("history-9", "bob"),
    }
    assert by_class.loc[by_class["class"] == "Maths 7B", "sessions"].sum() == 2
    client = signed_in_client(app, engine, "head", Role.ADMIN)
    outputs = [(school.NOW_ROWS, "children"), (school.NOW_STATUS, "children"), (school.INTERVAL, "interval")]
    rows = dash_call(client, outputs, [(school.INTERVAL, "n_intervals", 1)])
    cells = [[text(cell) for cell in row["props"]["children"][:3]] for row in rows[school.NOW_ROWS]["children"]]
    assert [cell[:2] for cell in cells] == [["alice", "Maths 7B"], ["bob", "—"]]


def test_class_names_are_session_names_without_a_date_at_the_end() -> None:
    assert class_name("maths-7b 2026-12-03") == "maths-7b"
    assert class_name("maths-7b_20261203-0900") == "maths-7b"
    assert class_name("history 9 2026-12-03 14:00") == "history 9"
    assert class_name("2026-12-03") == "2026-12-03"
    assert class_name("physics") == "physics"


def test_a_teacher_gets_the_unknown_page_answer_and_no_admin_links(app: Dash, engine: Engine) -> None:
    alice = signed_in_client(app, engine, "alice")
    unknown = text(page(alice, "/no-such-page"))
    for path in ("/school", "/admin"):
        shown = text(page(alice, path))
        assert shown == unknown.replace("/no-such-page", path) and "Page not found" in shown
        assert "history-9" not in shown and "bob" not in shown
    links = dash_call(alice, [(ADMIN_LINKS, "children")], [("url", "pathname", "/")])[ADMIN_LINKS]["children"]
    assert links == []
    head = signed_in_client(app, engine, "head", Role.ADMIN)
    assert "Running now" in text(page(head, "/school")) and "Capture tokens" in text(page(head, "/admin"))
    links = dash_call(head, [(ADMIN_LINKS, "children")], [("url", "pathname", "/")])[ADMIN_LINKS]["children"]
    assert [link["props"]["href"] for link in links] == ["/school", "/admin"]


def test_no_school_or_admin_callback_answers_a_teacher_or_changes_anything(app: Dash, engine: Engine) -> None:
    issue_token(engine, "bob")
    before = (list_tokens(engine), find_user(engine, "bob"))
    alice = signed_in_client(app, engine, "alice")
    calls = [
        (
            [(school.NOW_ROWS, "children"), (school.NOW_STATUS, "children"), (school.INTERVAL, "interval")],
            [(school.INTERVAL, "n_intervals", 1)],
            [],
        ),
        (
            [(school.TREND_ROWS, "children")],
            [(school.TREND_BY, "value", "teacher"), (school.TREND_WEEKS, "value", 4)],
            [],
        ),
        (
            [(school.DOWNLOAD, "data")],
            [(school.DOWNLOAD_BUTTON, "n_clicks", 1)],
            [(school.TREND_BY, "value", "teacher"), (school.TREND_WEEKS, "value", 4)],
        ),
        (*_user_call(admin.ADD_BUTTON, name="mallory", role="admin", password=NEW_PASSWORD),),
        (*_user_call(admin.ROLE_BUTTON, role_user="alice", new_role="admin"),),
        (*_user_call(admin.REMOVE_BUTTON, removed="bob"),),
        (*_token_call(admin.ISSUE_BUTTON, teacher="alice"),),
        (*_token_call(admin.REVOKE_BUTTON, token_id=1),),
    ]
    for outputs, inputs, state in calls:
        # 204: Dash's "no update", as for a callback naming another teacher's session.
        dash_call(alice, outputs, inputs, state, status=204)
    assert (list_tokens(engine), find_user(engine, "bob")) == before
    assert find_user(engine, "mallory") is None and find_user(engine, "alice").role is Role.TEACHER


def test_an_admin_adds_a_user_changes_a_role_and_removes_a_user_from_the_page(app: Dash, engine: Engine) -> None:
    head = signed_in_client(app, engine, "head", Role.ADMIN)
    answer = _user_answer(head, admin.ADD_BUTTON, name="carol", role="teacher", password="password123")
    assert answer[admin.USER_MESSAGE]["children"].startswith("Nothing changed: the password is too weak")
    assert find_user(engine, "carol") is None
    assert admin.ADD_NAME not in answer  # the name stays, to try another password

    answer = _user_answer(head, admin.ADD_BUTTON, name="carol", role="teacher", password=NEW_PASSWORD)
    assert answer[admin.USER_MESSAGE]["children"].startswith("Added carol as teacher.")
    assert answer[admin.ADD_PASSWORD]["value"] == ""  # the password does not stay on screen
    assert answer[admin.ADD_NAME]["value"] == ""
    assert check_login(engine, "carol", NEW_PASSWORD) is not None
    assert "carol" in [option["value"] for option in answer[admin.ISSUE_USER]["options"]]

    answer = _user_answer(head, admin.ROLE_BUTTON, role_user="carol", new_role="admin")
    assert answer[admin.USER_MESSAGE]["children"] == "carol is now admin, and has been signed out everywhere."
    assert find_user(engine, "carol").role is Role.ADMIN
    answer = _user_answer(head, admin.ROLE_BUTTON, role_user="head", new_role="teacher")
    assert "cannot change your own role" in answer[admin.USER_MESSAGE]["children"]
    assert find_user(engine, "head").role is Role.ADMIN

    answer = _user_answer(head, admin.REMOVE_BUTTON, removed="bob")
    assert answer[admin.USER_MESSAGE]["children"].startswith("Removed bob:")
    assert "their 1 session(s) are now seen by admins only" in answer[admin.USER_MESSAGE]["children"]
    assert find_user(engine, "bob") is None and find_session(engine, "history-9 2026-12-03").teacher is None


def test_an_admin_issues_a_token_shown_once_and_revokes_it_from_the_page(app: Dash, engine: Engine) -> None:
    head = signed_in_client(app, engine, "head", Role.ADMIN)
    answer = _token_answer(head, admin.ISSUE_BUTTON, teacher="alice")
    token = answer[admin.NEW_TOKEN]["children"]
    assert token.startswith("cpt_") and token_owner(engine, token) == "alice"
    assert answer[admin.TOKEN_MESSAGE]["children"].startswith("Issued token 1 to alice. It is shown below only now")
    assert [option["value"] for option in answer[admin.REVOKE_TOKEN]["options"]] == [1]
    # The list shows the token's id and owner, never the token.
    assert token not in str(answer[admin.TOKENS_TABLE]) and "alice" in str(answer[admin.TOKENS_TABLE])

    answer = _token_answer(head, admin.REVOKE_BUTTON, token_id=1)
    assert answer[admin.TOKEN_MESSAGE]["children"].startswith("Revoked token 1 of alice")
    assert answer[admin.NEW_TOKEN]["children"] == "" and answer[admin.REVOKE_TOKEN]["options"] == []
    assert token_owner(engine, token) is None
    answer = _token_answer(head, admin.REVOKE_BUTTON, token_id=1)
    assert answer[admin.TOKEN_MESSAGE]["children"] == "Token 1 of alice was already revoked."
    answer = _token_answer(head, admin.ISSUE_BUTTON, teacher="nobody")
    assert answer[admin.TOKEN_MESSAGE]["children"].startswith("Nothing changed: no user named 'nobody'")


def test_an_admin_action_without_the_csrf_token_is_refused_and_changes_nothing(app: Dash, engine: Engine) -> None:
    head = signed_in_client(app, engine, "head", Role.ADMIN)
    del head.environ_base["HTTP_X_CSRFTOKEN"]
    dash_call(head, *_token_call(admin.ISSUE_BUTTON, teacher="alice"), status=400)
    assert list_tokens(engine) == []


def _user_call(button: str, **values: str | None) -> tuple[list, list, list]:
    fields = {"name": None, "role": "teacher", "password": None, "role_user": None, "new_role": None, "removed": None}
    fields |= values
    ids_in_order = (
        admin.ADD_NAME,
        admin.ADD_ROLE,
        admin.ADD_PASSWORD,
        admin.ROLE_USER,
        admin.ROLE_VALUE,
        admin.REMOVE_USER,
    )
    outputs = [
        (admin.USER_MESSAGE, "children"),
        (admin.USERS_TABLE, "children"),
        (admin.ROLE_USER, "options"),
        (admin.REMOVE_USER, "options"),
        (admin.ISSUE_USER, "options"),
        (admin.ADD_PASSWORD, "value"),
        (admin.ADD_NAME, "value"),
    ]
    buttons = (admin.ADD_BUTTON, admin.ROLE_BUTTON, admin.REMOVE_BUTTON)
    inputs = [(button, "n_clicks", 1)] + [(other, "n_clicks", None) for other in buttons if other != button]
    state = [(component, "value", value) for component, value in zip(ids_in_order, fields.values(), strict=True)]
    return outputs, inputs, state


def _token_call(button: str, teacher: str | None = None, token_id: int | None = None) -> tuple[list, list, list]:
    outputs = [
        (admin.TOKEN_MESSAGE, "children"),
        (admin.NEW_TOKEN, "children"),
        (admin.TOKENS_TABLE, "children"),
        (admin.REVOKE_TOKEN, "options"),
    ]
    other = admin.REVOKE_BUTTON if button == admin.ISSUE_BUTTON else admin.ISSUE_BUTTON
    inputs = [(button, "n_clicks", 1), (other, "n_clicks", None)]
    return outputs, inputs, [(admin.ISSUE_USER, "value", teacher), (admin.REVOKE_TOKEN, "value", token_id)]


def _user_answer(client: FlaskClient, button: str, **values: str | None) -> dict:
    return dash_call(client, *_user_call(button, **values))


def _token_answer(client: FlaskClient, button: str, teacher: str | None = None, token_id: int | None = None) -> dict:
    return dash_call(client, *_token_call(button, teacher, token_id))
