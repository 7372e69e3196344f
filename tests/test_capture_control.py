"""The "Start class" control without a browser: a real `python -m capture` child of a real CaptureControl, grabbing
a real X screen (Xvfb) that shows a composed gallery of real faces (feh), writing a real SQLite file, and ending
cleanly when its dashboard is killed; the preview through the real pipeline, of a screen, a part dragged over it or
a real X window; who may see and stop a capture; and where the page is offered at all. The tests that watch a
capture run share one child (each child loads its models first, seconds on a busy machine)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

import config
from capture.errors import CaptureError
from config.schema import ClassroomConfig
from dashboard.app import create_app
from dashboard.capture_control import CaptureBusyError, CaptureControl, CaptureRequest, CaptureRun, CaptureStartError
from dashboard.pages import classroom
from dashboard.preview import Preview, choices, monitors, part_from_drag, source_spec
from db.migrate import upgrade
from db.recorder import SessionRecorder
from db.users import Role, User, add_user
from tests.cli import REPO, count_rows, sqlite_rows
from tests.dashboard_stand_in import has_ended
from tests.dashboard_users import PASSWORD
from tests.galleries import compose_gallery, lfw_faces
from tests.screen import ScreenError, showing_fullscreen, x_window

TEACHER = "ms.garcia"
OTHER = "mr.lee"
SHARED = "-maths 7b"  # the session of the capture child the module's tests share
NO_PART = (None, None, None, None)
# The capture child of a killed dashboard finishes the frame in hand and closes its session, then ends.
KILLED_WAIT_S = 30
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


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Engine]:
    """One SQLite file for the module (its migration takes a second or two); each test names its own sessions."""
    path = tmp_path_factory.mktemp("classroom") / "classpulse.db"
    engine = upgrade(f"sqlite:///{path}")
    add_user(engine, TEACHER, Role.TEACHER, PASSWORD)
    add_user(engine, OTHER, Role.TEACHER, PASSWORD)
    return path, engine


@pytest.fixture
def control(database: tuple[Path, Engine]) -> Iterator[CaptureControl]:
    control = CaptureControl(database[1], ClassroomConfig())
    yield control
    control.shutdown()


@pytest.fixture(scope="module")
def recording(shown_gallery: None, database: tuple[Path, Engine]) -> Iterator[CaptureControl]:
    """One capture child, started from the page as the teacher and recording, shared by the tests that watch it
    run (each child loads its models first: seconds on a busy machine); the admin's Stop test ends it."""
    control = CaptureControl(database[1], ClassroomConfig())
    # A name that starts with "-" is a name, not one of capture's options.
    answer = classroom.start(database[1], control, user(TEACHER), "screen:1", NO_PART, SHARED, "7B maths")
    assert answer.startswith(f"Starting {SHARED!r}"), answer
    wait_until("two frames", control, lambda run: run.frames >= 2 or not run.running)
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


def test_a_started_capture_counts_the_frames_and_faces_it_records_and_refuses_a_second(
    recording: CaptureControl, database: tuple[Path, Engine]
) -> None:
    run = recording.current()
    assert run is not None and run.running, run.outcome() if run else None
    assert run.frames >= 2 and run.last_faces is not None and run.last_faces >= GALLERY_FACES - 2
    assert run.last_frame_at is not None and run.last_frame_at >= run.started_at
    with pytest.raises(CaptureBusyError, match="one capture at a time"):
        recording.start(CaptureRequest("screen:1", "another class", TEACHER))
    busy = classroom.start(database[1], recording, user(OTHER), "screen:1", NO_PART, "other class")
    assert busy == "Not started: a class is already being captured on this computer: one capture at a time."


def test_a_teacher_sees_and_stops_only_their_own_capture(recording: CaptureControl) -> None:
    owner, other = user(TEACHER), user(OTHER)
    theirs = classroom.status(recording.current(), other, "")
    assert getattr(theirs.status, "data-state") == "busy"
    assert classroom.FRAMES not in str(theirs.status) and SHARED not in str(theirs.status)
    assert (theirs.start_disabled, theirs.stop_disabled) == (True, True)
    assert "someone else" in classroom.stop(recording, other)
    run = recording.current()
    assert run is not None and run.running and not run.stop_requested
    mine = classroom.status(run, owner, "")
    assert getattr(mine.status.children[0], "data-state") == "running"
    assert classroom.FRAMES in str(mine.status) and (mine.start_disabled, mine.stop_disabled) == (True, False)


def test_an_admin_stops_it_cleanly_every_frame_counted_is_in_the_database_and_a_failed_restart_says_why(
    recording: CaptureControl, database: tuple[Path, Engine]
) -> None:
    path, engine = database
    assert "Stopping" in classroom.stop(recording, user("head", Role.ADMIN))
    run = wait_until("end", recording, lambda run: not run.running)
    assert run.request.teacher == TEACHER and run.exit_code == 0, run.outcome()
    assert run.outcome().startswith("Stopped.")
    assert run.summary.startswith(f"session={SHARED} frames={run.frames} ")
    assert not run.config_file.exists()
    # Every frame the status counted is in the file, with its faces as observations; the session is closed.
    of_it = f"FROM frames f JOIN sessions s ON s.id = f.session_id WHERE s.name = '{SHARED}'"
    assert sqlite_rows(path, f"SELECT count(*), sum(f.faces) {of_it}") == [(run.frames, run.faces)]
    assert run.frames >= 2
    session = "SELECT s.teacher, s.ended_at IS NOT NULL, c.name FROM sessions s JOIN classes c ON c.id = s.class_id"
    assert sqlite_rows(path, f"{session} WHERE s.name = '{SHARED}'") == [(TEACHER, 1, "7B maths")]
    assert count_rows(path, "observations") >= run.faces
    assert count_rows(path, "session_writers") == 0

    # The same name again continues the session. This child fails by capture's own argument check, before it
    # loads any model (a class name over 200 characters), and the page says why in capture's words.
    owner = user(TEACHER)
    started = classroom.start(engine, recording, owner, "screen:1", NO_PART, SHARED, "x" * 201)
    assert started.startswith(f"Continuing {SHARED!r}")
    run = wait_until("end", recording, lambda run: not run.running)
    assert run.exit_code == 2
    assert run.outcome().startswith("Capture failed (exit 2): ")
    assert "--class" in run.outcome() and "Traceback" not in "\n".join(run.errors)
    failed = classroom.status(run, owner, "")
    assert getattr(failed.status.children[0], "data-state") == "failed" and not failed.start_disabled


def test_a_capture_ends_cleanly_when_its_dashboard_is_killed(
    shown_gallery: None, database: tuple[Path, Engine]
) -> None:
    path = database[0]
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "tests.dashboard_stand_in", f"sqlite:///{path}", "killed", TEACHER],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert dashboard.stdout is not None
        pid, config_file = dashboard.stdout.readline().split(maxsplit=1)
        child = int(pid)
        assert dashboard.stdout.readline().strip() == "recording"
        assert not has_ended(child)
        # SIGKILL: no atexit, no signal handler, nothing of the dashboard's own runs.
        dashboard.kill()
        dashboard.wait()
        deadline = time.monotonic() + KILLED_WAIT_S
        while not has_ended(child):
            assert time.monotonic() < deadline, f"the capture child {child} still runs {KILLED_WAIT_S} s later"
            time.sleep(0.1)
    finally:
        dashboard.kill()
    # It ended as Stop would end it: its frames written, the session closed, its writer's lease released.
    assert sqlite_rows(path, "SELECT ended_at IS NOT NULL FROM sessions WHERE name = 'killed'") == [(1,)]
    assert count_rows(path, "session_writers") == 0
    assert not Path(config_file.strip()).exists()  # the file the dead dashboard wrote for it, removed by the child


def test_a_screen_area_that_cannot_be_captured_is_refused_before_anything_starts(
    xvfb_display: str, control: CaptureControl, database: tuple[Path, Engine]
) -> None:
    with pytest.raises(CaptureStartError, match=r"region 1900,0,640,360 is not inside the screen"):
        control.start(CaptureRequest("screen:1900,0,640,360", "refused area", TEACHER))
    assert control.current() is None
    assert sqlite_rows(database[0], "SELECT count(*) FROM sessions WHERE name = 'refused area'") == [(0,)]


def test_the_preview_outlines_the_tiles_and_faces_the_pipeline_finds_in_the_screen_or_the_part_chosen(
    shown_gallery: None,
) -> None:
    screen = monitors()[0]
    assert (screen.number, screen.width, screen.height) == (1, 1920, 1080)
    preview = Preview(config.CaptureConfig())
    picture = preview.look("screen:1")
    assert picture is not None
    assert picture.tiles == GALLERY_FACES and picture.faces >= GALLERY_FACES - 2
    assert picture.uri.startswith("data:image/jpeg;base64,")
    # The top-left 2×2 tiles of the 3×3 gallery: only what is in the part is looked at (and outlined).
    part = preview.look("screen:1", (0, 0, 1280, 720))
    assert part is not None and (part.width, part.height) == (1280, 720)
    assert part.tiles == 4 and 2 <= part.faces <= 4


def test_a_rectangle_dragged_over_the_preview_is_that_part_of_the_screen_in_its_pixels(xvfb_display: str) -> None:
    # Corners as fractions of the picture, in either order, whatever size the browser showed it at.
    assert part_from_drag({"x0": 0.5, "y0": 0.5, "x1": 0.25, "y1": 0.0}, 1920, 1080) == (480, 0, 480, 540)
    assert part_from_drag({"x0": -0.2, "y0": 0.9, "x1": 0.1, "y1": 1.7}, 1920, 1080) == (0, 972, 192, 108)
    assert part_from_drag({"x0": 0.5, "y0": 0.5, "x1": 0.504, "y1": 0.6}, 1920, 1080) is None  # a click
    assert part_from_drag({"x0": "left"}, 1920, 1080) is None
    assert part_from_drag(None, 1920, 1080) is None
    drag = {"x0": 0.1, "y0": 0.2, "x1": 0.6, "y1": 0.7}
    assert classroom.chosen_part(classroom.DRAG, drag, "screen:1") == (192, 216, 960, 540)
    assert classroom.chosen_part(classroom.WHOLE, drag, "screen:1") == (None,) * 4
    assert classroom.chosen_part(classroom.SOURCE, drag, "screen:1") == (None,) * 4  # another screen or window
    with x_window("Zoom Meeting", 100, 50, 320, 180, 0x2060C0) as zoom, pytest.raises(PreventUpdate):
        classroom.chosen_part(classroom.DRAG, drag, f"window-id:{zoom.id:#x}")


def test_a_window_is_offered_by_its_title_previewed_and_captured_whole(xvfb_display: str) -> None:
    with x_window("Zoom Meeting", 100, 50, 320, 180, 0x2060C0) as zoom:
        offered = {choice.label: choice.value for choice in choices()}
        assert offered["Screen 1 (1920×1080)"] == "screen:1"
        assert offered["Window: Zoom Meeting (320×180)"] == f"window-id:{zoom.id:#x}"
        assert classroom.capture_spec(f"window-id:{zoom.id:#x}", None) == f"window-id:{zoom.id:#x}"
        with pytest.raises(CaptureError, match="a window is watched whole"):
            classroom.capture_spec(f"window-id:{zoom.id:#x}", (0, 0, 100, 100))
        picture = Preview(config.CaptureConfig()).look(f"window-id:{zoom.id:#x}")
        assert picture is not None and (picture.width, picture.height, picture.tiles) == (320, 180, 0)
    with pytest.raises(CaptureError, match="that window is closed or hidden now"):
        classroom.capture_spec(f"window-id:{zoom.id:#x}", None)


def test_a_part_that_does_not_fit_or_is_half_given_is_one_clear_line_and_nothing_starts(
    xvfb_display: str, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    screen = monitors()[0]
    assert source_spec(screen, (10, 20, 300, 200)) == "screen:10,20,300,200"
    teacher = user(TEACHER)
    answer = classroom.start(database[1], control, teacher, "screen:1", (1800, 0, 300, 200), "maths")
    assert answer == (
        "Not started: the part 1800,0 300×200 does not fit on screen 1 (1920×1080): x and y count from its "
        "top-left corner, and width and height must be at least 1."
    )
    answer = classroom.start(database[1], control, teacher, "screen:1", (10, None, 300, 200), "maths")
    assert answer.startswith("Not started: give all four numbers of the part")
    assert classroom.start(database[1], control, teacher, "screen:2", NO_PART, "maths").startswith(
        "Not started: there is no screen 2 on this computer now"
    )
    assert control.current() is None


def test_a_session_name_of_another_teachers_class_is_refused(
    xvfb_display: str, database: tuple[Path, Engine], control: CaptureControl
) -> None:
    engine = database[1]
    SessionRecorder.open(engine, "physics", "screen", OTHER).close()
    answer = classroom.start(engine, control, user(TEACHER), "screen:1", NO_PART, "physics")
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
