"""The school view and the admin page in a real browser: headless Chromium, driven by Selenium, against
`python -m dashboard` on localhost over a SQLite file of two running classes and a finished one (written through
the real recorder, tests.test_school). An admin sees both classes and the trends and downloads the trend CSV,
adds a user and issues and revokes a capture token by clicking; a teacher finds neither page.

Screenshots at 1366×768 and 1920×1080 go to $CLASSPULSE_TEST_ARTIFACTS (default: a pytest temporary folder).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from dashboard import ids
from dashboard.formatting import local_time
from dashboard.pages import admin, school
from db.migrate import upgrade
from db.tokens import list_tokens
from db.users import Role, add_user, find_user
from tests.browser import Page, choose, shots
from tests.dashboard_server import running_dashboard
from tests.dashboard_users import PASSWORD, sign_in_browser
from tests.test_school import FRAMES, LATE_FRAMES, in_class, running_classes, scripted_class

ADMIN = "head-of-school"
NEW_PASSWORD = "lantern orchard seventeen"


# Chromium first, so that the module skips before it writes its database (conftest's fixtures).
pytestmark = pytest.mark.usefixtures("browser_programs")


@pytest.fixture(scope="module")
def school_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('school') / 'classpulse.db'}"
    engine = upgrade(url)
    for name in ("alice", "bob"):
        add_user(engine, name, Role.TEACHER, PASSWORD)
    add_user(engine, ADMIN, Role.ADMIN, PASSWORD)  # the CLI that does this is test_access's
    running = running_classes()
    for name, teacher, start, seed in running:
        scripted_class(engine, name, teacher, start, seed, range(FRAMES - LATE_FRAMES), running=True)
    scripted_class(engine, "maths-7b 2026-11-26", "alice", running[0][2] - timedelta(days=7), seed=3)
    in_class(engine, "Maths 7B", "alice", "maths-7b 2026-12-03", "maths-7b 2026-11-26")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def dashboard(school_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_dashboard(school_db, tmp_path_factory.mktemp("dashboard")) as (base_url, _):
        yield base_url


def test_an_admin_sees_every_running_class_and_the_trends_and_downloads_them(browser: Page, school_db: str) -> None:
    sign_in_browser(browser.driver, browser.base_url, ADMIN)
    browser.open("/school")
    rows = f"#{school.NOW_ROWS} tr"

    def counted() -> list[str] | None:
        texts = [row.text for row in browser.elements(rows)]
        done = len(texts) == 2 and not any("…" in text for text in texts)
        return texts if done else None

    texts = browser.wait_for("both classes scored and their flags counted", counted)
    assert texts[0].startswith("alice Maths 7B maths-7b 2026-12-03 · report 8 in the call, 6 on camera"), texts
    assert texts[1].startswith("bob — history-9 2026-12-03"), texts
    # The two cameras off are each class's open flags.
    flag_cells = [row.find_elements(By.CSS_SELECTOR, "td")[6].text for row in browser.elements(rows)]
    assert flag_cells == ["2", "2"]
    trend = browser.wait_for("the trend table", lambda: browser.elements(f"#{school.TREND_ROWS} table tbody tr"))
    assert {row.find_elements(By.CSS_SELECTOR, "td")[1].text for row in trend} == {"alice", "bob"}
    assert "School" in browser.driver.find_element(By.CSS_SELECTOR, ".topbar nav").text
    shots(browser, "school")

    downloaded = browser.download(school.DOWNLOAD_BUTTON, ".csv")
    with downloaded.open(newline="") as file:
        table = list(csv.DictReader(file))
    assert {row["teacher"] for row in table} == {"alice", "bob"}
    assert sum(int(row["sessions"]) for row in table) == 3

    # The sessions list names each session's teacher.
    browser.open("/sessions")
    listed = browser.wait_for("the sessions list", lambda: browser.elements(f"#{ids.SESSIONS_ROWS} tr"))
    teachers = {
        row.find_elements(By.TAG_NAME, "td")[1].text: row.find_elements(By.TAG_NAME, "td")[2].text for row in listed
    }
    assert teachers == {"maths-7b 2026-12-03": "alice", "history-9 2026-12-03": "bob", "maths-7b 2026-11-26": "alice"}
    shots(browser, "sessions")


def test_an_admin_adds_a_user_and_issues_and_revokes_a_token_by_clicking(browser: Page, school_db: str) -> None:
    sign_in_browser(browser.driver, browser.base_url, ADMIN)
    browser.open("/admin")
    find = browser.driver.find_element
    browser.wait_for("the add-user form", lambda: browser.elements(f"#{admin.ADD_NAME}"))
    find(By.ID, admin.ADD_NAME).send_keys("carol")
    find(By.ID, admin.ADD_PASSWORD).send_keys(NEW_PASSWORD)
    find(By.ID, admin.ADD_BUTTON).click()
    message = browser.wait_for("the add message", lambda: browser.text(admin.USER_MESSAGE))
    assert message.startswith("Added carol as teacher."), message
    assert find(By.ID, admin.ADD_PASSWORD).get_attribute("value") == ""
    engine = upgrade(school_db)
    assert find_user(engine, "carol") is not None

    choose(browser, admin.ISSUE_USER, "carol (teacher)")
    find(By.ID, admin.ISSUE_BUTTON).click()
    token = browser.wait_for("the new token", lambda: browser.text(admin.NEW_TOKEN))
    assert token.startswith("cpt_")
    assert browser.text(admin.TOKEN_MESSAGE).startswith("Issued token")
    shots(browser, "admin-token-issued")

    (record,) = [record for record in list_tokens(engine) if record.teacher == "carol"]
    choose(browser, admin.REVOKE_TOKEN, f"{record.id}: carol, issued {local_time(record.created_at, with_date=True)}")
    find(By.ID, admin.REVOKE_BUTTON).click()
    revoked = browser.wait_for("the revoke message", lambda: "Revoked" in browser.text(admin.TOKEN_MESSAGE))
    assert revoked and browser.text(admin.NEW_TOKEN) == ""  # the token is not shown again
    assert [record.revoked_at is not None for record in list_tokens(engine) if record.teacher == "carol"] == [True]
    engine.dispose()


def test_a_teacher_finds_no_school_or_admin_page(browser: Page) -> None:
    sign_in_browser(browser.driver, browser.base_url, "alice")
    for path in ("/school", "/admin"):
        browser.open(path)
        shown = browser.wait_for("the page", lambda: browser.text(ids.MESSAGE))
        assert shown == f"There is no page at {path}."
    assert "School" not in browser.driver.find_element(By.CSS_SELECTOR, ".topbar nav").text
    browser.screenshot("school-as-teacher")
