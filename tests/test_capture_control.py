"""The "Start class" control without a browser: a real `python -m capture` child of a real CaptureControl, grabbing
a real X screen (Xvfb) that shows a composed gallery of real faces (feh), writing a real SQLite file; the preview
through the real pipeline; who may see and stop a capture; and where the page is offered at all."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

import config
from config.schema import ClassroomConfig
from dashboard.app import create_app
from dashboard.capture_control import CaptureBusyError, CaptureControl, CaptureRequest, CaptureRun, CaptureStartError
from dashboard.pages import classroom
from dashboard.preview import Preview, monitors, source_spec
from db.migrate import upgrade
from db.recorder import SessionRecorder
from db.users import Role, User, add_user
from tests.cli import count_rows, sqlite_rows
from tests.dashboard_users import PASSWORD
from tests.galleries import compose_gallery, lfw_faces
from tests.screen import ScreenError, showing_fullscreen

TEACHER = "ms.garcia"
# Generous: the child loads its models on a machine whose two cores are shared with other work.
WAIT_S = 180
GALLERY_FACES = 9


@pytest.fixture(scope="module")
def shown_gallery(
    xvfb_display: str, needs_tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A 3x3 gallery of LFW faces shown full-screen on the virtual screen, for the capture and the preview."""
    needs_tool("feh")
    gallery = compose_gallery(lfw_faces(GALLERY_FACES, start=60), 3, 3, seed=3)
    try:
        with showing_fullscreen(gallery.image, tmp_path_factory.mktemp("gallery")):
            yield
    except ScreenError as error:
        pytest.fail(str(error))


@pytest.fixture
def database(tmp_path: Path) -> tuple[Path, Engine]:
    path = tmp_path / "classpulse.db"
    engine = upgrade(f"sqlite:///{path}")
    add_user(engine, TEACHER, Role.TEACHER, PASSWORD)
    return path, engine


@pytest.fixture
def control(database: tuple[Path, Engine]) -> Iterator[CaptureControl]:
    control = CaptureControl(database[1], ClassroomConfig())
    yield control
    control.shutdown()


def user(name: str, role: Role = Role.TEACHER) -> User:
    return User(name, role, datetime.now(UTC), datetime.now(UTC), "")


def wait_until(what: str, control: CaptureControl, done: Callable[[CaptureRun], bool]) -> CaptureRun:
    deadline = time.monotonic() + WAIT_S
    while True:
        run = control.current()
        assert run is not None
        if done(run):
            return run
        assert time.monotonic() < deadline, f"no {what} after {WAIT_S} s; capture said: {list(run.errors)}"
        time.sleep(0.5)


def test_a_started_capture_records_the_screen_into_the_database_and_stops_cleanly(
    shown_gallery: None, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    path, _ = database
    # A name that starts with "-" is a name, not one of capture's options.
    run = control.start(CaptureRequest("screen:1", "-maths 7b", TEACHER, "7B maths"))
    run = wait_until("two frames", control, lambda run: run.frames >= 2 or not run.running)
    assert run.running, run.outcome()
    assert run.last_faces is not None and run.last_faces >= GALLERY_FACES - 2
    assert run.last_frame_at is not None and run.last_frame_at >= run.started_at
    with pytest.raises(CaptureBusyError, match="one capture at a time"):
        control.start(CaptureRequest("screen:1", "another class", TEACHER))

    control.stop()
    run = wait_until("end", control, lambda run: not run.running)
    assert run.exit_code == 0, run.outcome()
    assert run.outcome().startswith("Stopped.")
    assert run.summary.startswith(f"session=-maths 7b frames={run.frames} ")
    assert not run.config_file.exists()
    # Every frame the status counted is in the file, with its faces as observations; the session is closed.
    assert count_rows(path, "frames") == run.frames >= 2
    assert sqlite_rows(path, "SELECT name, teacher, ended_at IS NOT NULL FROM sessions") == [("-maths 7b", TEACHER, 1)]
    assert sqlite_rows(path, "SELECT sum(faces) FROM frames") == [(run.faces,)]
    in_class = "SELECT c.name, c.teacher FROM sessions s JOIN classes c ON c.id = s.class_id"
    assert sqlite_rows(path, in_class) == [("7B maths", TEACHER)]
    assert count_rows(path, "observations") >= run.faces
    assert count_rows(path, "session_writers") == 0


def test_a_capture_that_fails_says_why_in_its_own_words(xvfb_display: str, control: CaptureControl) -> None:
    control.start(CaptureRequest("screen:1", "maths 7b", "mr.nobody"))
    run = wait_until("end", control, lambda run: not run.running)
    assert run.exit_code == 2
    assert run.outcome().startswith("Capture failed (exit 2): error: ")
    assert "mr.nobody" in run.outcome() and "Traceback" not in "\n".join(run.errors)


def test_a_screen_area_that_cannot_be_captured_is_refused_before_anything_starts(
    xvfb_display: str, control: CaptureControl, database: tuple[Path, Engine]
) -> None:
    with pytest.raises(CaptureStartError, match=r"region 1900,0,640,360 is not inside the screen"):
        control.start(CaptureRequest("screen:1900,0,640,360", "maths 7b", TEACHER))
    assert control.current() is None
    assert count_rows(database[0], "sessions") == 0


def test_the_dashboard_ending_stops_its_capture(
    shown_gallery: None, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    control.start(CaptureRequest("screen:1", "maths 7b", TEACHER))
    wait_until("a frame", control, lambda run: run.frames >= 1 or not run.running)
    control.shutdown()  # what atexit calls when the dashboard ends
    run = control.current()
    assert run is not None and run.exit_code == 0, run.outcome() if run else None
    assert sqlite_rows(database[0], "SELECT ended_at IS NOT NULL FROM sessions") == [(1,)]


def test_the_preview_outlines_the_tiles_and_faces_the_pipeline_finds(shown_gallery: None) -> None:
    screen = monitors()[0]
    assert (screen.number, screen.width, screen.height) == (1, 1920, 1080)
    picture = Preview(config.CaptureConfig()).look(source_spec(screen, None))
    assert picture is not None
    assert picture.tiles == GALLERY_FACES and picture.faces >= GALLERY_FACES - 2
    assert picture.uri.startswith("data:image/jpeg;base64,")
    part = Preview(config.CaptureConfig()).look(source_spec(screen, (0, 0, 640, 360)))
    assert part is not None and (part.width, part.height) == (640, 360)


def test_a_part_that_does_not_fit_or_is_half_given_is_one_clear_line_and_nothing_starts(
    xvfb_display: str, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    screen = monitors()[0]
    assert source_spec(screen, (10, 20, 300, 200)) == "screen:10,20,300,200"
    teacher = user(TEACHER)
    answer = classroom.start(database[1], control, teacher, 1, (1800, 0, 300, 200), "maths")
    assert answer == (
        "Not started: the part 1800,0 300×200 does not fit on screen 1 (1920×1080): x and y count from its "
        "top-left corner, and width and height must be at least 1."
    )
    answer = classroom.start(database[1], control, teacher, 1, (10, None, 300, 200), "maths")
    assert answer.startswith("Not started: give all four numbers of the part")
    assert classroom.start(database[1], control, teacher, 2, (None,) * 4, "maths").startswith(
        "Not started: there is no screen 2 on this computer now"
    )
    assert control.current() is None


def test_a_teacher_sees_and_stops_only_their_own_capture_and_an_admin_any(
    shown_gallery: None, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    engine = database[1]
    owner, other, admin = user(TEACHER), user("mr.lee"), user("head", Role.ADMIN)
    assert "Starting 'maths 7b'" in classroom.start(engine, control, owner, 1, (None,) * 4, "maths 7b")
    busy = classroom.start(engine, control, other, 1, (None,) * 4, "other class")
    assert busy == "Not started: a class is already being captured on this computer: one capture at a time."

    theirs = classroom.status(control.current(), other, "")
    assert getattr(theirs.status, "data-state") == "busy"
    assert classroom.FRAMES not in str(theirs.status) and "maths 7b" not in str(theirs.status)
    assert (theirs.start_disabled, theirs.stop_disabled) == (True, True)
    assert "someone else" in classroom.stop(control, other)
    run = control.current()
    assert run is not None and run.running and not run.stop_requested
    mine = classroom.status(run, owner, "")
    assert classroom.FRAMES in str(mine.status) and (mine.start_disabled, mine.stop_disabled) == (True, False)

    wait_until("a frame", control, lambda run: run.frames >= 1 or not run.running)
    assert "Stopping" in classroom.stop(control, admin)
    run = wait_until("end", control, lambda run: not run.running)
    assert run.request.teacher == TEACHER and run.exit_code == 0

    # The same name again continues the session; stopped at once, it ends cleanly whether or not a frame came.
    assert classroom.start(engine, control, owner, 1, (None,) * 4, "maths 7b").startswith("Continuing 'maths 7b'")
    classroom.stop(control, owner)
    run = wait_until("end", control, lambda run: not run.running)
    assert run.outcome() == "Stopped before the first frame was recorded." or run.outcome().startswith("Stopped.")


def test_a_session_name_of_another_teachers_class_is_refused(
    xvfb_display: str, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    engine = database[1]
    add_user(engine, "mr.lee", Role.TEACHER, PASSWORD)
    SessionRecorder.open(engine, "physics", "screen", "mr.lee").close()
    answer = classroom.start(engine, control, user(TEACHER), 1, (None,) * 4, "physics")
    assert answer.startswith("Not started: the name 'physics' is taken by another teacher's session")
    assert control.current() is None


@pytest.mark.parametrize(
    ("changes", "offered"),
    [
        ({}, True),
        ({"dashboard.host": "0.0.0.0"}, False),
        ({"dashboard.behind_tls_proxy": True}, False),
        ({"dashboard.classroom.enabled": False}, False),
    ],
)
def test_the_page_is_offered_only_on_the_teachers_own_dashboard(
    database: tuple[Path, Engine], changes: dict[str, object], offered: bool
) -> None:
    config.choose(None, changes)
    try:
        assert classroom.offered() is offered
        assert bool(classroom.nav_links()) is offered
        page = classroom.layout(database[1], user(TEACHER))
        assert ("Start class is not available here" in str(page)) is not offered
    finally:
        config.choose(None)


def test_signed_out_visitors_get_neither_the_page_nor_its_callbacks(database: tuple[Path, Engine]) -> None:
    client = create_app(database[1]).server.test_client()
    page = client.get(classroom.PATH, headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"] == f"/login?next={classroom.PATH}"
    callback = client.post("/_dash-update-component", json={"output": classroom.STATUS + ".children"})
    assert callback.status_code == 401 and TEACHER not in callback.get_data(as_text=True)
