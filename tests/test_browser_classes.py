"""The class pages in a real browser: headless Chromium, driven by Selenium, against `python -m dashboard` on
localhost over a SQLite file of a class of three lessons (tests.test_class_pages, through the real recorder).
A teacher opens their class, reads the roster over the term, opens a student's term view with its chart and
downloads it as CSV; another teacher finds no such class.

Screenshots at 1366×768 and 1920×1080 go to $CLASSPULSE_TEST_ARTIFACTS (default: a pytest temporary folder).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from dashboard import ids
from dashboard.pages import classes as class_pages
from db.migrate import upgrade
from db.users import Role, add_user
from tests.browser import SIZES, Page, shots
from tests.dashboard_server import running_dashboard
from tests.dashboard_users import PASSWORD, sign_in_browser
from tests.test_class_pages import ALAN, KATHERINE, LESSONS, T0, class_id, record_lesson, roster_id

# Chromium first, so that the module skips before it writes its database (conftest's fixtures).
pytestmark = pytest.mark.usefixtures("browser_programs")


@pytest.fixture(scope="module")
def class_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('classes') / 'classpulse.db'}"
    engine = upgrade(url)
    for name in ("alice", "bob"):
        add_user(engine, name, Role.TEACHER, PASSWORD)
    for lesson, name in enumerate(LESSONS):
        record_lesson(engine, lesson, name, T0 + timedelta(days=7 * lesson))
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def dashboard(class_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_dashboard(class_db, tmp_path_factory.mktemp("dashboard")) as (base_url, _):
        yield base_url


def test_a_teacher_follows_a_student_across_the_term_and_downloads_it(browser: Page, class_db: str) -> None:
    sign_in_browser(browser.driver, browser.base_url, "alice")
    browser.open("/classes")
    listed = browser.wait_for("the class list", lambda: browser.elements(f"#{class_pages.CLASS_LIST} tbody tr"))
    assert [cell.text for cell in listed[0].find_elements(By.TAG_NAME, "td")][:3] == ["7B", "alice", "3"]
    assert "Classes" in browser.driver.find_element(By.CSS_SELECTOR, ".topbar nav").text
    shots(browser, "classes")
    browser.driver.find_element(By.LINK_TEXT, "7B").click()
    rows = browser.wait_for("the roster", lambda: browser.elements(f"#{class_pages.ROSTER} tbody tr"))
    by_name = {row.find_elements(By.TAG_NAME, "td")[0].text: row for row in rows}
    assert set(by_name) == {"Ada Lovelace", "Grace Hopper", ALAN, "Katherine Johnson"}
    alan = [cell.text for cell in by_name[ALAN].find_elements(By.TAG_NAME, "td")]
    assert alan[1] == "2 of 3" and alan[8] == "absent", alan
    lessons = browser.elements(f"#{class_pages.LESSONS} tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in lessons] == list(LESSONS)
    shots(browser, "class-7B")

    by_name[ALAN].find_element(By.LINK_TEXT, ALAN).click()
    term = browser.wait_for("the term table", lambda: browser.elements(f"#{class_pages.TERM_TABLE} tbody tr"))
    assert [row.find_elements(By.TAG_NAME, "td")[2].text for row in term] == ["yes", "absent", "yes"]
    charts = browser.wait_for("the trend chart", lambda: browser.graph_points(f"#{class_pages.TERM_CHART}"))
    assert charts[0]["engagement"] == 3 and charts[0]["absent"] == 1
    assert "2 of 3" in browser.text(class_pages.TERM_SUMMARY)
    for width, height in SIZES:
        browser.driver.set_window_size(width, height)
        # Plotly redraws a chart for a new window size a moment after the resize: shot once it fits its card.
        browser.wait_for(f"the chart redrawn at {width} px", lambda: chart_fits(browser))
        browser.screenshot(f"class-7B-term-alan-{width}x{height}")

    downloaded = browser.download(class_pages.DOWNLOAD_TERM_BUTTON, ".csv")
    with downloaded.open(newline="") as file:
        table = list(csv.DictReader(file))
    assert [row["attended"] for row in table] == ["1", "0", "1"]
    assert table[0]["started_at"] == "2026-09-07T09:00:00Z"

    # Katherine left the first lesson: her term lists that flag at the viewer's time, like the rest of the page.
    engine = upgrade(class_db)
    katherine, alan = (
        class_pages.student_path(class_id(engine, "7B"), roster_id(engine, n)) for n in (KATHERINE, ALAN)
    )
    engine.dispose()
    browser.open(katherine)
    flags = browser.wait_for("her flags", lambda: browser.text(class_pages.TERM_FLAGS))
    assert flags.startswith("7B maths 09-07: left the call 09:00:40–"), flags
    shots(browser, "class-7B-term-katherine")

    # A lesson's cell opens that lesson's report on the student.
    browser.open(alan)
    browser.wait_for("the term table", lambda: browser.elements(f"#{class_pages.TERM_TABLE} tbody tr"))
    browser.driver.find_element(By.LINK_TEXT, "View in report").click()
    browser.wait_for("the report's student view", lambda: "student=tile-2" in browser.driver.current_url)


def chart_fits(browser: Page) -> bool:
    """Whether the term chart is drawn as wide as its card's inside, no wider (give or take a pixel)."""
    script = f"""
        const chart = document.querySelector('#{class_pages.TERM_CHART} .main-svg');
        const card = document.getElementById('{class_pages.TERM_CHART}').parentElement;
        const style = getComputedStyle(card);
        const inside = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return chart !== null && Math.abs(chart.getBoundingClientRect().width - inside) <= 1;
    """
    return bool(browser.driver.execute_script(script))


def test_another_teacher_finds_no_such_class(browser: Page, class_db: str) -> None:
    engine = upgrade(class_db)
    own, alan = class_id(engine, "7B"), roster_id(engine, ALAN)
    engine.dispose()
    sign_in_browser(browser.driver, browser.base_url, "bob")
    for path in (class_pages.class_path(own), class_pages.student_path(own, alan)):
        browser.open(path)
        shown = browser.wait_for("the page", lambda: browser.text(ids.MESSAGE))
        assert shown == f"you have no class number {own}.", shown
    browser.open("/classes")
    browser.wait_for("the page", lambda: browser.text(ids.MESSAGE))
    assert "No classes yet" in browser.driver.find_element(By.ID, ids.PAGE).text
    browser.screenshot("classes-as-another-teacher")
