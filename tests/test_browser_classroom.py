"""The "Start class" page in a real browser: headless Chromium, driven by Selenium, against `python -m dashboard`
on localhost, whose X screen (Xvfb) shows a composed gallery of real faces (feh). A teacher sees the preview with
the tiles and faces outlined, drags a rectangle over it to watch only that part, picks the call's window (feh's)
by its title, presses Start, watches the status count frames that the real capture child writes into the
dashboard's SQLite file, presses Stop; a dashboard that is stopped stops its capture.

Screenshots at 1366×768 and 1920×1080 go to $CLASSPULSE_TEST_ARTIFACTS (default: a pytest temporary folder).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.components import live_path
from dashboard.pages import classroom
from db.migrate import upgrade
from db.users import Role, add_user
from tests.browser import Page, choose, shots
from tests.cli import count_rows, sqlite_rows
from tests.conftest import OpenBrowser
from tests.dashboard_server import running_dashboard
from tests.dashboard_users import PASSWORD, sign_in_browser
from tests.galleries import compose_gallery, lfw_faces
from tests.screen import ScreenError, showing_fullscreen

TEACHER = "ms.garcia"
SESSION = "maths 7b"
CLASS = "7B maths"
GALLERY_FACES = 9
# The capture child loads its models before its first frame; on CI's two busy cores that can take a while.
FIRST_FRAME_S = 180

T = TypeVar("T")

# Chromium first, so that the module skips before it sets up a screen and a database (conftest's fixtures).
pytestmark = pytest.mark.usefixtures("browser_programs")


@pytest.fixture(scope="module")
def shown_gallery(
    xvfb_display: str, needs_tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A 3x3 gallery of LFW faces with names, full-screen on the virtual screen the dashboard will watch."""
    needs_tool("feh")
    names = [f"Student {n}" for n in range(1, GALLERY_FACES + 1)]
    gallery = compose_gallery(lfw_faces(GALLERY_FACES, start=60), 3, 3, seed=3, names=names)
    try:
        with showing_fullscreen(gallery.image, tmp_path_factory.mktemp("gallery")):
            yield
    except ScreenError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("classroom") / "classpulse.db"
    engine = upgrade(f"sqlite:///{path}")
    add_user(engine, TEACHER, Role.TEACHER, PASSWORD)  # the CLI that does this is test_access's
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def served(
    shown_gallery: None, database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m dashboard` on loopback (so the page is offered), on the virtual screen's DISPLAY."""
    with running_dashboard(f"sqlite:///{database}", tmp_path_factory.mktemp("dashboard")) as served:
        yield served


@pytest.fixture(scope="module")
def page(
    chromium: OpenBrowser, served: tuple[str, subprocess.Popen[bytes]], tmp_path_factory: pytest.TempPathFactory
) -> Page:
    """The shared Chromium, signed in as the teacher once for the module."""
    page = chromium(served[0], tmp_path_factory.mktemp("downloads"))
    sign_in_browser(page.driver, served[0], TEACHER)
    return page


@pytest.fixture(autouse=True)
def no_capture_left_running(
    browser_programs: tuple[str, str], page: Page, served: tuple[str, subprocess.Popen[bytes]]
) -> Iterator[None]:
    """A test that fails while its capture runs stops it, so that the next test starts from an idle page rather
    than failing behind it."""
    yield
    if served[1].poll() is not None:
        return
    page.open(classroom.PATH)
    shown = wait_long(page, "the status", lambda: state(page))
    if shown in ("starting", "running"):
        page.driver.find_element(By.ID, classroom.STOP).click()
    wait_long(page, "no capture running", lambda: state(page) not in ("", "starting", "running", "stopping"))


def wait_long(page: Page, what: str, condition: Callable[[], T | None], seconds: float = FIRST_FRAME_S) -> T:
    """page.wait_for with a longer limit, for what waits on the capture child's start."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = condition()
        except StaleElementReferenceException:  # Dash redrew the status between finding and reading it
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            page.screenshot("timed-out")
            raise AssertionError(f"timed out after {seconds} s waiting for {what}: {page.text(classroom.STATUS)!r}")
        time.sleep(0.3)


def state(page: Page) -> str:
    found = page.elements(f"#{classroom.STATE}")
    return found[0].get_attribute("data-state") or "" if found else ""


def frames_shown(page: Page) -> int:
    text = page.text(classroom.FRAMES)
    return int(text) if text.isdigit() else 0


def test_the_preview_shows_the_screen_with_tiles_and_faces_outlined(page: Page) -> None:
    page.open(classroom.PATH)
    nav = page.wait_for("the navigation bar", lambda: page.elements(".topbar nav"))
    assert "Start class" in nav[0].text
    note = page.wait_for("the preview's note", lambda: "student tile(s)" in page.text(classroom.PREVIEW_NOTE))
    assert note
    assert page.text(classroom.PREVIEW_NOTE).startswith(f"{GALLERY_FACES} student tile(s) and ")
    picture = page.driver.find_element(By.ID, classroom.PREVIEW)
    assert (picture.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
    assert picture.size["width"] > 400
    assert "never saved" in page.driver.find_element(By.CSS_SELECTOR, ".never-stored").text
    assert state(page) == "idle"
    assert page.driver.find_element(By.ID, classroom.STOP).get_attribute("disabled")
    shots(page, "classroom-ready")


def test_a_rectangle_dragged_over_the_preview_is_the_part_of_the_screen_watched(page: Page) -> None:
    page.open(classroom.PATH)
    page.wait_for("the preview", lambda: "student tile(s)" in page.text(classroom.PREVIEW_NOTE))
    picture = page.driver.find_element(By.ID, classroom.PREVIEW)
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", picture)
    left, top, width, height = page.driver.execute_script(
        "const box = arguments[0].getBoundingClientRect(); return [box.left, box.top, box.width, box.height]", picture
    )
    # From just inside the top-left corner to two thirds across and down: the gallery's top-left 2×2 tiles.
    drag = ActionBuilder(page.driver)
    drag.pointer_action.move_to_location(round(left) + 1, round(top) + 1).pointer_down()
    drag.pointer_action.move_to_location(round(left + width / 2), round(top + height / 3))  # on its way
    drag.pointer_action.move_to_location(round(left + width * 2 / 3), round(top + height * 2 / 3)).pointer_up()
    drag.perform()
    w = page.wait_for("the part's width", lambda: part_value(page, "w"))
    x, y, h = (part_value(page, name) for name in "xyh")
    assert x is not None and y is not None and h is not None
    # In the screen's 1920×1080 pixels, whatever size the browser showed the picture at (one CSS pixel of slack).
    slack = 1920 / width + 1
    assert abs(x) <= slack and abs(y) <= slack, (x, y)
    assert abs(w - 1280) <= 2 * slack and abs(h - 720) <= 2 * slack, (w, h)
    page.wait_for("the part's preview", lambda: page.text(classroom.PREVIEW_NOTE).startswith("4 student tile(s)"))
    assert f"on this {w}×{h} area" in page.text(classroom.PREVIEW_NOTE)
    page.driver.find_element(By.CSS_SELECTOR, ".classroom summary").click()  # shows the four numbers
    shots(page, "classroom-region")
    page.driver.find_element(By.ID, classroom.WHOLE).click()
    page.wait_for("the whole screen again", lambda: page.text(classroom.PREVIEW_NOTE).startswith("9 student tile(s)"))
    assert part_value(page, "x") is None


def part_value(page: Page, name: str) -> int | None:
    value = page.driver.find_element(By.ID, f"{classroom.PART}-{name}").get_attribute("value")
    return int(value) if value else None


def test_the_calls_window_chosen_by_its_title_is_captured_and_stop_ends_the_capture_cleanly(
    page: Page, database: Path
) -> None:
    page.open(classroom.PATH)
    session = page.wait_for("the session name", lambda: page.elements(f"#{classroom.SESSION}"))[0]
    # feh's full-screen window shows the gallery, as a video call's window would; its title begins with "feh".
    page.driver.find_element(By.CSS_SELECTOR, f"#{classroom.SOURCE} .Select-control").click()
    listed = page.wait_for("the window list", lambda: page.elements(f"#{classroom.SOURCE} .VirtualizedSelectOption"))
    labels = [option.text for option in listed]
    assert labels[0] == "Screen 1 (1920×1080)" and any(label.startswith("Window: feh") for label in labels), labels
    shots(page, "classroom-windows")
    page.driver.find_element(By.CSS_SELECTOR, f"#{classroom.SOURCE} input").send_keys(Keys.ESCAPE)
    feh = next(label for label in labels if label.startswith("Window: feh"))
    choose(page, classroom.SOURCE, feh)
    page.wait_for("the window's preview", lambda: page.text(classroom.PREVIEW_NOTE).startswith("9 student tile(s)"))
    session.send_keys(Keys.CONTROL, "a")  # replaces the default name as a teacher's typing would
    session.send_keys(SESSION)
    page.driver.find_element(By.ID, classroom.CLASS).send_keys(CLASS)
    page.driver.find_element(By.ID, classroom.START).click()
    page.wait_for("the start message", lambda: page.text(classroom.MESSAGE).startswith(f"Starting {SESSION!r}"))
    wait_long(page, "two frames in the status", lambda: state(page) == "running" and frames_shown(page) >= 2)
    # Once frames come, the status says so: the start message, now stale, is gone.
    page.wait_for("the start message gone", lambda: page.text(classroom.MESSAGE) == "")
    assert page.driver.find_element(By.ID, classroom.START).get_attribute("disabled")
    faces = int(page.text(classroom.FACES))
    assert faces >= GALLERY_FACES - 2
    assert page.text(classroom.LAST_FRAME)
    page.wait_for("the preview paused", lambda: "Preview paused" in page.text(classroom.PREVIEW_NOTE))
    preview = page.driver.find_element(By.ID, classroom.PREVIEW)
    assert "paused" in (preview.get_attribute("class") or "")
    link = page.driver.find_element(By.ID, classroom.LIVE_LINK)
    assert (link.get_attribute("href") or "").endswith(live_path(SESSION))
    shots(page, "classroom-running")

    page.driver.find_element(By.ID, classroom.STOP).click()
    wait_long(page, "the capture to end", lambda: state(page) == "ended")
    assert page.text(classroom.STATE).startswith("Stopped.")
    page.wait_for("the stop message gone", lambda: page.text(classroom.MESSAGE) == "")
    # The frames the page counted are the frames in the dashboard's own database, and the session is closed.
    assert count_rows(database, "frames") == frames_shown(page)
    assert sqlite_rows(database, "SELECT name, teacher, ended_at IS NOT NULL FROM sessions") == [(SESSION, TEACHER, 1)]
    assert sqlite_rows(database, "SELECT source FROM sessions")[0][0].startswith("window 'feh")
    in_class = "SELECT c.name, c.teacher FROM sessions s JOIN classes c ON c.id = s.class_id"
    assert sqlite_rows(database, in_class) == [(CLASS, TEACHER)]
    # The preview looks at the screen again.
    page.wait_for("the preview again", lambda: "student tile(s)" in page.text(classroom.PREVIEW_NOTE))
    shots(page, "classroom-stopped")


def test_a_capture_that_fails_shows_its_error_and_the_page_can_start_again(page: Page) -> None:
    page.open(classroom.PATH)
    page.wait_for("the class field", lambda: page.elements(f"#{classroom.CLASS}"))[0].send_keys("x" * 201)
    page.driver.find_element(By.ID, classroom.START).click()
    wait_long(page, "the capture to fail", lambda: state(page) == "failed")
    said = page.text(classroom.STATE)
    assert said.startswith("Capture failed (exit 2): ") and "--class" in said, said
    assert "--class" in page.text(classroom.ERRORS) and "Traceback" not in page.text(classroom.ERRORS)
    assert not page.driver.find_element(By.ID, classroom.START).get_attribute("disabled")
    shots(page, "classroom-failed")


def test_stopping_the_dashboard_stops_its_capture(
    page: Page, database: Path, served: tuple[str, subprocess.Popen[bytes]]
) -> None:
    page.open(classroom.PATH)
    session = page.wait_for("the session name", lambda: page.elements(f"#{classroom.SESSION}"))[0]
    session.send_keys(Keys.CONTROL, "a")
    session.send_keys("left running")
    page.driver.find_element(By.ID, classroom.START).click()
    wait_long(
        page,
        "a frame of the new session",
        lambda: state(page) == "running" and "left running" in page.text(classroom.STATE) and frames_shown(page) >= 1,
    )
    server = served[1]
    server.terminate()
    server.wait(timeout=FIRST_FRAME_S)
    assert server.returncode == 0
    # The capture was told to stop, wrote its frames and closed the session before the dashboard ended.
    ended = sqlite_rows(database, "SELECT ended_at IS NOT NULL FROM sessions WHERE name = 'left running'")
    assert ended == [(1,)]
    assert count_rows(database, "session_writers") == 0
