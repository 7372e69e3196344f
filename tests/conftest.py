"""Shared fixtures: a virtual X screen (Xvfb), the FER2013 data file, a fresh PostgreSQL database, one
headless Chromium that the browser tests share, and the classroom two of them copy."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy
import sqlalchemy.pool

from tests.galleries import FER_CSV
from tests.screen import ScreenError, virtual_screen

if TYPE_CHECKING:
    from tests.browser import Classroom, Page


def require_tool(name: str) -> str:
    """The path of program `name`; skips the test when it is missing, but fails under CI so CI cannot skip silently."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (scripts/setup.sh test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must not skip this test")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def needs_tool() -> Callable[[str], str]:
    """require_tool, for tests that need a program such as feh."""
    return require_tool


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A 1920x1080 virtual X screen; DISPLAY points at it until the session ends. Yields e.g. ':3'."""
    require_tool("Xvfb")
    try:
        with virtual_screen() as display:
            yield display
    except ScreenError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def fer_csv() -> Path:
    """The FER2013 CSV shared by this machine's checkouts; skips when it is absent."""
    if not FER_CSV.is_file():
        pytest.skip(f"FER2013 data not found at {FER_CSV}")
    return FER_CSV


POSTGRES_URL_VARIABLE = "CLASSPULSE_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test.

    The server is the one `scripts/postgres.sh run` (make test) starts and names in CLASSPULSE_TEST_POSTGRES_URL;
    without it the test skips, but fails under CI so CI cannot skip silently.
    """
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        reason = f"{POSTGRES_URL_VARIABLE} is not set (make test starts PostgreSQL via scripts/postgres.sh)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must not skip this test")
        pytest.skip(reason)
    name = f"classpulse_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sqlalchemy.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        # FORCE: a test that failed may leave a capture process or a pooled connection attached.
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def browser_programs(needs_tool: Callable[[str], str]) -> tuple[str, str]:
    """Chromium and its WebDriver (skips without them, fails in CI). A browser module names it first, in
    `pytestmark = pytest.mark.usefixtures("browser_programs")`, so that it skips before it sets anything up."""
    return needs_tool("chromium"), needs_tool("chromedriver")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder screenshots and printed PDFs go to: $CLASSPULSE_TEST_ARTIFACTS, or a pytest temporary folder."""
    from tests.browser import ARTIFACTS_VARIABLE

    folder = Path(os.environ.get(ARTIFACTS_VARIABLE) or tmp_path_factory.mktemp("browser-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


OpenBrowser = Callable[[str, Path], "Page"]


@pytest.fixture(scope="session")
def chromium(
    browser_programs: tuple[str, str], artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenBrowser]:
    """One headless Chromium for the whole run: starting one takes seconds on CI's two busy cores, and each
    browser module used to start its own, some one per test.

    Call it with a dashboard's base URL and a downloads folder for its window as a new browser's would be: signed
    out of every dashboard, nothing stored for the origin, no other tabs, screen media, the laptop's size, and
    downloads saved in that folder (so that a test waiting for a file never finds an earlier test's)."""
    from tests.browser import SIZES, Page, chromium_page

    with chromium_page(browser_programs, "about:blank", tmp_path_factory.mktemp("downloads"), artifacts) as first:
        driver = first.driver

        def open_browser(base_url: str, downloads: Path) -> Page:
            for handle in driver.window_handles[1:]:
                driver.switch_to.window(handle)
                driver.close()
            driver.switch_to.window(driver.window_handles[0])
            driver.get("about:blank")  # leaves the last page, and any request it still had open
            driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
            driver.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": base_url, "storageTypes": "all"})
            driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
            driver.set_window_size(*SIZES[0])
            return Page(driver, base_url, downloads, artifacts)

        yield open_browser


@pytest.fixture
def browser(chromium: OpenBrowser, dashboard: str, tmp_path: Path) -> Page:
    """The shared Chromium, as a new window, on this module's dashboard: the module defines `dashboard` as the
    fixture that serves it and gives its base URL. Downloads go to the test's own temporary folder."""
    return chromium(dashboard, tmp_path)


@pytest.fixture(scope="session")
def recorded_classroom(browser_programs: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Classroom:
    """SESSION after one capture run over a 3x3 gallery of nine faces, with ADMIN's account: recorded once for the
    run, as the capture run takes seconds on CI's two cores; each module that records more into it takes its own
    copy (Classroom.copy)."""
    from db.engine import connect
    from db.users import Role, add_user
    from tests.browser import ADMIN, Classroom
    from tests.dashboard_users import PASSWORD
    from tests.galleries import compose_gallery, lfw_faces

    room = Classroom(tmp_path_factory.mktemp("recorded-classroom"))
    room.capture(compose_gallery(lfw_faces(9, start=60), 3, 3, seed=3))
    engine = connect(room.url)
    add_user(engine, ADMIN, Role.ADMIN, PASSWORD)  # the CLI that does this is test_access's
    engine.dispose()
    return room


@pytest.fixture(scope="module")
def classroom(recorded_classroom: Classroom, tmp_path_factory: pytest.TempPathFactory) -> Classroom:
    """The module's own copy of `recorded_classroom`, which its tests may record more sessions into."""
    return recorded_classroom.copy(tmp_path_factory.mktemp("classroom"))


@pytest.fixture(scope="module")
def classroom_dashboard(classroom: Classroom, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m dashboard` on a free local port, serving the module's classroom; yields its base URL."""
    from tests.dashboard_server import running_dashboard

    with running_dashboard(classroom.url, tmp_path_factory.mktemp("dashboard")) as (base_url, _):
        yield base_url
