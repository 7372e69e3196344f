"""The session report in a real browser: headless Chromium on `python -m dashboard`, over a SQLite file the real
capture CLI wrote (conftest's classroom; tests.test_browser's helpers): the merge from a student's row with its
confirmation and its undo, one student's own section, and the report on screen and on A4.

Screenshots at 1366x768 and 1920x1080 and the printed PDF go to $CLASSPULSE_TEST_ARTIFACTS."""

from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.print_page_options import PrintOptions
from selenium.webdriver.remote.webelement import WebElement

from dashboard import ids
from dashboard.components import report_path
from dashboard.pages.report import (
    ATTENDANCE,
    FLAGS_LIST,
    MERGE_CONFIRM,
    MERGE_CONFIRM_TEXT,
    MERGE_OPEN,
    MERGE_PANEL,
    MERGE_WITH,
    STUDENT_TIMELINE,
    STUDENT_VIEW,
    UNDO_MERGE,
)
from tests.browser import ADMIN, SESSION, Classroom, Page
from tests.cli import sqlite_rows
from tests.conftest import OpenBrowser
from tests.dashboard_users import sign_in_browser
from tests.test_browser import A4_CM, CAMERA_OFF, PRINT_WIDTH_PX, capture_camera_off, rows

# Chromium first, so that the module skips before it copies its classroom (conftest's fixtures).
pytestmark = pytest.mark.usefixtures("browser_programs")

SCREENS = {"1366x768": (1366, 768), "1920x1080": (1920, 1080)}


def row_keys(browser: Page) -> list[str | None]:
    return [row.get_attribute("data-student") for row in rows(browser)]


def stored(room: Classroom) -> tuple[list[tuple], list[tuple]]:
    """Every student row as stored, and which student each observation belongs to."""
    return (
        sqlite_rows(room.db, "SELECT * FROM students ORDER BY id"),
        sqlite_rows(room.db, "SELECT id, student_id FROM observations ORDER BY id"),
    )


def open_report(browser: Page, session: str, students: int) -> None:
    browser.open(report_path(session))
    browser.wait_for(f"{students} student rows", lambda: len(rows(browser)) == students)
    browser.wait_for("the report's charts", lambda: browser.graph_points(f"#{ids.PAGE}"))


@pytest.fixture(scope="module")
def page(chromium: OpenBrowser, classroom_dashboard: str, tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The shared Chromium on this module's classroom, signed in as its admin for the whole module."""
    page = chromium(classroom_dashboard, tmp_path_factory.mktemp("downloads"))
    sign_in_browser(page.driver, classroom_dashboard, ADMIN)
    return page


def test_a_merge_from_a_students_row_is_confirmed_by_name_and_minutes_and_undone_exactly(
    classroom: Classroom,
    page: Page,
) -> None:
    students = classroom.count("students")
    before = stored(classroom)
    for name, size in SCREENS.items():
        page.driver.set_window_size(*size)
        open_report(page, SESSION, students)
        page.screenshot(f"report-{name}")
        # The session is two frames long: its time axis still ticks whole seconds, never "17:34:49.9995".
        assert whole_seconds(page, f"#{ids.REPORT_HEATMAP}")
    page.driver.set_window_size(*SCREENS["1366x768"])

    # Merge from tile-2's row: the dialog opens over the page, wherever the row is.
    row = page.elements(f"#{ids.REPORT_STUDENTS} tbody tr[data-student='tile-2']")[0]
    button = row.find_element(By.CSS_SELECTOR, f"button[id*='{MERGE_OPEN}']")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    panel = page.wait_for("the merge dialog", lambda: next(iter(displayed(page, f"#{MERGE_PANEL}")), None))
    assert panel.location_once_scrolled_into_view is not None
    assert not page.driver.find_element(By.ID, MERGE_CONFIRM).is_enabled()
    for other in ("tile-3", "tile-4"):
        page.driver.find_element(By.CSS_SELECTOR, f"#{MERGE_WITH} input").send_keys(other + Keys.ENTER)
    confirm = page.wait_for(
        "the confirmation naming everyone",
        lambda: "tile-4" in (text := page.text(MERGE_CONFIRM_TEXT)) and text,
    )
    # Both sides by name or key, each with their minutes present.
    assert confirm.startswith("Merge tile-3 (") and "present), tile-4 (" in confirm and "into tile-2 (" in confirm
    assert confirm.count("present)") == 3 and "undo" in confirm
    page.screenshot("report-merge-confirm-1366x768")
    page.driver.find_element(By.ID, MERGE_CONFIRM).click()

    page.wait_for(
        "the merged table",
        lambda: row_keys(page) == [key for key in before_keys(students) if key not in ("tile-3", "tile-4")],
    )
    notice = page.wait_for("the merge's notice", lambda: displayed(page, ".merge-notice"))[0]
    assert notice.text.startswith("Merged tile-3 (") and "into tile-2 (" in notice.text
    assert classroom.count("students") == students - 2
    page.screenshot("report-merged-1366x768")

    notice.find_element(By.CSS_SELECTOR, "button.undo").click()
    page.wait_for("every student back", lambda: row_keys(page) == before_keys(students))
    page.wait_for(
        "the undo's notice", lambda: "back as before" in " ".join(n.text for n in displayed(page, ".merge-notice"))
    )
    assert stored(classroom) == before  # the same ids, keys, names, times, and the same rows each
    assert not page.elements(f"[id*='{UNDO_MERGE}']")  # nothing left to undo


def test_a_students_own_section_opens_from_their_row_and_survives_a_reload(
    classroom: Classroom,
    page: Page,
) -> None:
    capture_camera_off(classroom, CAMERA_OFF)
    ((students,),) = sqlite_rows(
        classroom.db,
        "SELECT count(*) FROM students JOIN sessions ON sessions.id = students.session_id "
        f"WHERE sessions.name = '{CAMERA_OFF}'",
    )
    page.driver.set_window_size(*SCREENS["1366x768"])
    open_report(page, CAMERA_OFF, students)
    # The camera-off student is on the heatmap as a state of its own, and the legend says so.
    heatmap = page.driver.execute_script(
        f"return document.querySelector('#{ids.REPORT_HEATMAP} .js-plotly-plot')._fullData"
        ".map(trace => [trace.name, Array.from(trace.z, row => Array.from(row)).flat()"
        ".filter(value => value !== null && !Number.isNaN(value)).length]);"
    )
    assert dict(heatmap)["camera off"] > 0, heatmap
    assert "camera off" in page.driver.find_element(By.CSS_SELECTOR, f"#{ids.REPORT_HEATMAP} ~ .legend").text
    # Attendance: the camera-off student's time with the camera off is all their time present.
    attendance = {
        row.get_attribute("data-student"): [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in page.elements(f"#{ATTENDANCE} tbody tr")
    }
    off = attendance["tile-4"]
    assert off[3] == off[4] and off[5] == "0 s", off
    # Flags print in words, not only in a tooltip.
    assert "camera off" in page.text(FLAGS_LIST) and "camera off for more than" in page.text(FLAGS_LIST)

    row = page.elements(f"#{ids.REPORT_STUDENTS} tbody tr[data-student='tile-4']")[0]
    row.find_element(By.LINK_TEXT, "View").click()
    page.wait_for("the student's timeline", lambda: page.graph_points(f"#{STUDENT_VIEW}"))
    assert urlsplit(page.driver.current_url).query == "student=tile-4"
    names = list(page.graph_points(f"#{STUDENT_VIEW}")[0])
    assert whole_seconds(page, f"#{STUDENT_VIEW}")
    assert "camera off" in names and "attentive share" in names
    assert "camera off" in page.text(STUDENT_VIEW) and "camera off for more than" in page.text(STUDENT_VIEW)
    page.screenshot("report-student-1366x768")

    page.driver.refresh()  # the URL alone opens the section again
    page.wait_for(
        "the student's timeline after a reload", lambda: page.elements(f"#{STUDENT_TIMELINE} .js-plotly-plot")
    )
    page.driver.set_window_size(*SCREENS["1920x1080"])
    page.screenshot("report-student-1920x1080")
    page.driver.set_window_size(*SCREENS["1366x768"])


def test_the_printed_report_fits_a4_with_flag_reasons_and_the_legend(page: Page) -> None:
    page.open(report_path(CAMERA_OFF))
    page.wait_for("the report's charts", lambda: page.graph_points(f"#{ids.PAGE}"))
    options = PrintOptions()
    options.page_width, options.page_height = A4_CM
    (page.artifacts / "report-print.pdf").write_bytes(base64.b64decode(page.driver.print_page(options)))
    # On paper the page is A4 less its margins wide: lay it out that wide with print styles, then measure.
    page.driver.set_window_size(round(PRINT_WIDTH_PX), 1000)
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        for table in (ids.REPORT_STUDENTS, ATTENDANCE):
            width = page.driver.execute_script(f"return document.getElementById('{table}').scrollWidth;")
            assert width <= PRINT_WIDTH_PX, (table, width)
        assert page.driver.find_element(By.ID, FLAGS_LIST).is_displayed()
        assert "camera off for more than" in page.text(FLAGS_LIST)
        assert all(legend.is_displayed() for legend in page.elements(".legend"))
        assert not displayed(page, f"#{ids.REPORT_STUDENTS} button, #{ids.REPORT_STUDENTS} a, .merge-panel")
        page.screenshot("report-print-media-a4")
    finally:
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        page.driver.set_window_size(*SCREENS["1366x768"])


def whole_seconds(browser: Page, css: str) -> list[str]:
    """The time labels of the charts under `css` as drawn, once there are some and none is finer than a second."""
    ticks = [tick.text for tick in browser.elements(f"{css} .xaxislayer-above text")]
    assert not any(re.search(r"\d\d:\d\d:\d\d\.\d", tick) for tick in ticks), ticks
    return ticks


def displayed(browser: Page, css: str) -> list[WebElement]:
    return [element for element in browser.elements(css) if element.is_displayed()]


def before_keys(students: int) -> list[str]:
    return [f"tile-{n}" for n in range(1, students + 1)]
