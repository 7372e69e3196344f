"""The class pages (issue 15: reports follow a student across a term; issue 13: the sessions list names each
session's class): a class of three lessons recorded through the real recorder into a SQLite file, its numbers
checked against each lesson's own report (the report's code path and its CSV files), who may see which class,
and the term CSV."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from dash import Dash
from sqlalchemy import Engine, select, update

from analytics.live import engagement_config
from analytics.report import session_tables, write_report
from analytics.term import roster_table, student_term, term_rows
from dashboard import ids
from dashboard.app import create_app
from dashboard.formatting import ZONE_COOKIE
from dashboard.lesson_cache import lesson_table
from dashboard.pages import classes as class_pages
from db.class_reads import class_lessons, class_overviews, roster_links
from db.migrate import upgrade
from db.recorder import SessionRecorder
from db.schema import class_students, classes, sessions
from db.users import Role, add_user
from tests.dashboard_users import PASSWORD, signed_in_client
from tests.test_access import assert_refused
from tests.test_dashboard import dash_call, page, text, walk
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

T0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
FRAMES = 120  # two minutes at 1 frame/s: long enough for an absence flag (over 60 s away)
LESSONS = ("7B maths 09-07", "7B maths 09-14", "7B maths 09-21")
# Per lesson: tile key -> the name its label reads, and what happens to them.
ADA, GRACE, ALAN, KATHERINE = "Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson"


def _student(key: str, index: int, rng: np.random.Generator, presence: Presence = Presence.FACE) -> Observation:
    tile = Box(100 * int(key.split("-")[1]), 0, 100, 100)
    if presence is not Presence.FACE:
        return Observation(key, tile, tile, None, None, FaceSignals(presence))
    probabilities = rng.dirichlet(np.array([1, 1, 1, 6, 1, 2, 6], float))
    # Alan turns away for a stretch of every lesson he is in.
    yaw = 70.0 if key == "tile-2" and 30 <= index < 70 else float(rng.normal(0, 8))
    signals = FaceSignals(Presence.FACE, yaw, float(rng.normal(0, 5)), 0.3, False, 0)
    return Observation(key, tile, Box(tile.x + 20, 20, 50, 60), probabilities, int(probabilities.argmax()), signals)


def record_lesson(engine: Engine, lesson: int, name: str, start: datetime) -> None:
    """Lesson 0: all four; Grace's camera off for the last 40 s; Katherine leaves after 40 s (flagged absent).
    Lesson 1: Alan away; Ada in tile 0, then from 60 s in tile 5 (two students of the lesson, both read as her).
    Lesson 2: all four, Grace's label cut short ("Grace Hop…")."""
    rng = np.random.default_rng(lesson)
    names = {"tile-0": ADA, "tile-1": GRACE, "tile-2": ALAN, "tile-3": KATHERINE}
    if lesson == 1:
        del names["tile-2"]
        names["tile-5"] = ADA
    if lesson == 2:
        names["tile-1"] = "Grace Hop…"
    with SessionRecorder.open(engine, name, "screen:1", "alice", "7B") as recorder:
        for index in range(FRAMES):
            found = []
            for key in names:
                if lesson == 0 and key == "tile-3" and index >= 40:
                    continue
                if lesson == 1 and (key == "tile-0") == (index >= 60):
                    continue
                camera_off = lesson == 0 and key == "tile-1" and index >= FRAMES - 40
                found.append(_student(key, index, rng, Presence.CAMERA_OFF if camera_off else Presence.FACE))
            read = {o.student_key: names[o.student_key] for o in found} if index % 30 == 1 else {}
            recorder.record(FrameResult(index, start + timedelta(seconds=index), found, 5.0, student_names=read))
    started_at(engine, name, start)


def started_at(engine: Engine, name: str, start: datetime) -> None:
    """Capture stamps a session's start with the wall clock: set it to when its frames begin, weeks ago."""
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == name).values(started_at=start))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    migrated = upgrade(f"sqlite:///{tmp_path_factory.mktemp('classes') / 'classpulse.db'}")
    for name in ("alice", "bob"):
        add_user(migrated, name, Role.TEACHER, PASSWORD)
    for lesson, name in enumerate(LESSONS):
        record_lesson(migrated, lesson, name, T0 + timedelta(days=7 * lesson))
    rng = np.random.default_rng(9)
    with SessionRecorder.open(migrated, "9C history 09-08", "screen:1", "bob", "9C") as recorder:
        for index in range(20):
            found = [_student("tile-0", index, rng)]
            recorder.record(FrameResult(index, T0 + timedelta(days=1, seconds=index), found, 5.0, {"tile-0": "Zed"}))
    started_at(migrated, "9C history 09-08", T0 + timedelta(days=1))
    return migrated


@pytest.fixture(scope="module")
def app(engine: Engine) -> Dash:
    return create_app(engine)


def class_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        found: int = connection.scalar(select(classes.c.id).where(classes.c.name == name))
        return found


def roster_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        found: int = connection.scalar(select(class_students.c.id).where(class_students.c.display_name == name))
        return found


def term(engine: Engine) -> pd.DataFrame:
    """analytics.term.term_rows of class 7B, each lesson's report computed afresh."""
    lessons = class_lessons(engine, class_id(engine, "7B"))
    config = engagement_config()
    per_lesson = {lesson.id: lesson_table(engine, lesson, config) for lesson in lessons}
    return term_rows(lessons, roster_links(engine, class_id(engine, "7B")), per_lesson)


def test_each_lesson_cell_is_what_that_lessons_report_says_of_the_student(engine: Engine, tmp_path: Path) -> None:
    rows = term(engine)
    assert set(rows["name"]) == {ADA, GRACE, ALAN, KATHERINE}
    assert len(rows) == 4 * len(LESSONS)
    config = engagement_config()
    for lesson in class_lessons(engine, class_id(engine, "7B")):
        # The report's own code path: its tables, and the CSV files `python -m analytics report` writes.
        tables = session_tables(engine, lesson.id, config)
        write_report(engine, lesson.name, tmp_path / lesson.name, config)
        students = pd.read_csv(tmp_path / lesson.name / "students.csv").set_index("student")
        attendance = pd.read_csv(tmp_path / lesson.name / "attendance.csv").set_index("student")
        for row in rows[rows["session_id"] == lesson.id].itertuples(index=False):
            keys = row.students.split(", ") if row.students else []
            report = tables.students.set_index("student").loc[keys]
            present = tables.attendance.set_index("student").loc[keys]
            assert row.attended == bool(keys) == bool(present["joined"].notna().any())
            if not keys:
                assert pd.isna(row.engagement) and row.flags == 0 and row.seconds_in_class == 0
                continue
            if len(keys) == 1:
                # One student of the lesson: the report's numbers exactly, and as its CSV files print them.
                (key,) = keys
                assert row.engagement == report.loc[key, "engagement"]
                assert row.seconds_face == report.loc[key, "seconds_present"]
                assert row.seconds_camera_off == report.loc[key, "seconds_camera_off"]
                assert row.attentive_share == report.loc[key, "attentive_share"]
                assert row.flags == report.loc[key, "flags"] == students.loc[key, "flags"]
                assert row.seconds_in_class == present.loc[key, "seconds_present"]
                assert row.joined == present.loc[key, "joined"] and row.left == present.loc[key, "left"]
                assert f"{row.engagement:.3f}" == f"{students.loc[key, 'engagement']:.3f}"
                assert f"{row.seconds_in_class:.3f}" == f"{attendance.loc[key, 'seconds_present']:.3f}"
                continue
            # Ada's two tiles in lesson 1: times added, engagement over their face time together.
            assert row.name == ADA and lesson.name == LESSONS[1]
            face = report["seconds_present"].astype(float)
            assert row.seconds_face == pytest.approx(face.sum())
            assert row.engagement == pytest.approx((report["engagement"] * face).sum() / face.sum())
            assert row.seconds_in_class == pytest.approx(present["seconds_present"].sum())
            assert row.joined == present["joined"].min() and row.left == present["left"].max()


def test_the_term_adds_up_the_lessons_and_knows_who_missed_which(engine: Engine) -> None:
    rows = term(engine)
    roster = roster_table(rows).set_index("name")
    assert roster.loc[ALAN, "attended"] == 2 and roster.loc[ADA, "attended"] == 3
    assert (roster["lessons"] == 3).all()
    for name, theirs in rows.groupby("name"):
        face = theirs["seconds_face"].astype(float)
        weighted = (theirs["engagement"].astype(float).fillna(0) * face).sum()
        assert roster.loc[name, "engagement"] == pytest.approx(weighted / face.sum())
        assert roster.loc[name, "flags"] == theirs["flags"].sum()
        in_class = theirs["seconds_in_class"].astype(float).sum()
        assert roster.loc[name, "camera_off_share"] == pytest.approx(theirs["seconds_camera_off"].sum() / in_class)
    # Grace's camera was off for 40 of the first lesson's 120 s; nobody else's ever was.
    assert roster.loc[GRACE, "seconds_camera_off"] == pytest.approx(40.0)
    assert roster.loc[[ADA, ALAN, KATHERINE], "camera_off_share"].eq(0).all()
    # Katherine left after 40 s of the first lesson: flagged absent there.
    first = student_term(rows, roster_id(engine, KATHERINE)).iloc[0]
    assert first["flags"] >= 1 and "absent" in first["flag_reasons"]
    # The cut-short label of lesson 2 found Grace.
    assert student_term(rows, roster_id(engine, GRACE))["attended"].tolist() == [True, True, True]


def test_the_class_page_shows_the_term_and_links_each_lesson_report_on_the_student(app: Dash, engine: Engine) -> None:
    client = signed_in_client(app, engine, "alice", Role.TEACHER)
    listed = text(page(client, "/classes"))
    assert "7B" in listed and "9C" not in listed
    shown = page(client, class_pages.class_path(class_id(engine, "7B")))
    body = text(shown)
    assert "Students over the term" in body and "2 of 3" in body and "3 of 3" in body
    links = [c["props"]["href"] for c in walk(shown) if c.get("type") == "Link"]
    alan = class_pages.student_path(class_id(engine, "7B"), roster_id(engine, ALAN))
    assert alan in links
    # Each lesson's cell opens that lesson's report on the student.
    assert "/report/7B%20maths%2009-14?student=tile-0" in links
    roster = roster_table(term(engine)).set_index("name")
    assert f"{roster.loc[ALAN, 'engagement']:.2f}" in body

    view = text(page(client, alan))
    assert ALAN in view and "absent" in view and "Lessons attended 2 of 3" in view
    # Katherine's term lists the flag of the lesson she left, with its reason, at the viewer's time like the rest
    # of the page: she left at 09:00:40 UTC, 05:00:40 in New York (the CSV keeps UTC).
    client.set_cookie(ZONE_COOKIE, quote("America/New_York", safe=""))  # as assets/time_zone.js sets it
    katherine = page(client, class_pages.student_path(class_id(engine, "7B"), roster_id(engine, KATHERINE)))
    (flags,) = [c for c in walk(katherine) if c["props"].get("id") == class_pages.TERM_FLAGS]
    assert re.search(r"7B maths 09-07: +left the call 05:00:40–", text(flags)), text(flags)
    assert "Z" not in text(flags) and "09:00" not in text(flags), text(flags)
    # Its count in the lesson's row says the same on hover.
    (hover,) = [c["props"]["title"] for c in walk(katherine) if "left the call" in c["props"].get("title", "")]
    assert "left the call 05:00:40–" in hover and "Z" not in hover, hover


def test_a_teacher_never_sees_another_teachers_class(app: Dash, engine: Engine) -> None:
    bob = signed_in_client(app, engine, "bob", Role.TEACHER)
    own = class_id(engine, "7B")
    alices = [class_pages.class_path(own), class_pages.student_path(own, roster_id(engine, ADA))]
    for path in alices:
        shown = text(page(bob, path))
        assert shown.startswith("Unknown class") and ADA not in shown and "7B" not in shown, shown
    # The same answer as for a class that does not exist.
    assert text(page(bob, class_pages.class_path(own))) == text(page(bob, class_pages.class_path(999))).replace(
        "999", str(own)
    )
    assert "7B" not in text(page(bob, "/classes"))
    # Nor its CSV through a forged callback.
    forged = {"class": own, "student": roster_id(engine, ADA)}
    state = [(class_pages.TERM_STUDENT, "data", forged)]
    dash_call(
        bob, [(class_pages.DOWNLOAD_TERM, "data")], [(class_pages.DOWNLOAD_TERM_BUTTON, "n_clicks", 1)], state, 204
    )
    admin = signed_in_client(app, engine, "head", Role.ADMIN)
    assert {"7B", "9C"} <= set(text(page(admin, "/classes")).split())
    assert {o.info.name for o in class_overviews(engine, "bob")} == {"9C"}


def test_a_visitor_who_has_not_signed_in_gets_no_class(app: Dash, engine: Engine) -> None:
    client = app.server.test_client()
    for path in ("/classes", class_pages.class_path(class_id(engine, "7B"))):
        for method in ("GET", "POST"):
            assert_refused(client, method, path)
        assert ADA not in client.get(path).get_data(as_text=True)
    response = client.post(
        "/_dash-update-component",
        json={
            "output": f"{ids.PAGE}.children",
            "outputs": {"id": ids.PAGE, "property": "children"},
            "inputs": [{"id": ids.URL, "property": "pathname", "value": "/classes"}],
            "changedPropIds": [f"{ids.URL}.pathname"],
        },
    )
    assert response.status_code == 401 and ADA not in response.get_data(as_text=True)


def test_the_term_csv_has_one_row_per_lesson_and_times_in_utc_with_a_z(app: Dash, engine: Engine) -> None:
    client = signed_in_client(app, engine, "alice", Role.TEACHER)
    chosen = {"class": class_id(engine, "7B"), "student": roster_id(engine, ALAN)}
    sent = dash_call(
        client,
        [(class_pages.DOWNLOAD_TERM, "data")],
        [(class_pages.DOWNLOAD_TERM_BUTTON, "n_clicks", 1)],
        [(class_pages.TERM_STUDENT, "data", chosen)],
    )[class_pages.DOWNLOAD_TERM]["data"]
    assert sent["filename"] == "7B-Alan-Turing-term.csv"
    table = list(csv.DictReader(io.StringIO(sent["content"])))
    assert [row["session"] for row in table] == list(LESSONS)
    assert [row["attended"] for row in table] == ["1", "0", "1"]
    iso_z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    assert all(iso_z.fullmatch(row["started_at"]) for row in table)
    assert table[0]["started_at"] == "2026-09-07T09:00:00Z"
    assert iso_z.fullmatch(table[0]["joined"]) and iso_z.fullmatch(table[0]["left"])
    assert table[1]["joined"] == table[1]["left"] == table[1]["engagement"] == ""
    ours = student_term(term(engine), roster_id(engine, ALAN))
    assert [float(row["engagement"]) for row in table if row["engagement"]] == [
        round(value, 3) for value in ours["engagement"].dropna()
    ]
    assert not any(math.isnan(float(row["seconds_in_class"])) for row in table)


def test_the_sessions_list_names_each_sessions_class_and_filters_by_it(app: Dash, engine: Engine) -> None:
    client = signed_in_client(app, engine, "head", Role.ADMIN)
    listed = page(client, "/sessions")
    assert "7B" in text(listed) and "9C" in text(listed)
    class_links = {c["props"]["children"]: c["props"]["href"] for c in walk(listed) if c.get("type") == "Link"}
    assert class_links["9C"] == class_pages.class_path(class_id(engine, "9C"))
    filtered = dash_call(client, [(ids.SESSIONS_ROWS, "children")], [(ids.SESSIONS_FILTER, "value", "9c")])
    assert "9C history 09-08" in text(filtered[ids.SESSIONS_ROWS]["children"])
    assert "7B maths" not in text(filtered[ids.SESSIONS_ROWS]["children"])


def test_a_lesson_given_to_another_teacher_leaves_the_class_page(app: Dash, engine: Engine) -> None:
    alice = signed_in_client(app, engine, "alice", Role.TEACHER)
    path = class_pages.class_path(class_id(engine, "7B"))
    assert LESSONS[2] in text(page(alice, path))
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == LESSONS[2]).values(teacher="bob"))
    try:
        shown = text(page(alice, path))
        assert LESSONS[2] not in shown and "2 of 2" in shown
        # The list of classes counts the same two lessons, for her and for an admin.
        assert [(o.info.name, o.lessons) for o in class_overviews(engine, "alice")] == [("7B", 2)]
        (listed,) = [row for row in walk(page(alice, "/classes")) if row.get("type") == "Tr" and "7B" in text(row)]
        assert [cell["props"]["children"] for cell in walk(listed) if cell["type"] == "Td"][2] == 2, listed
        assert {o.info.name: o.lessons for o in class_overviews(engine)}["7B"] == 2
    finally:
        with engine.begin() as connection:
            connection.execute(update(sessions).where(sessions.c.name == LESSONS[2]).values(teacher="alice"))
