"""The browser tests' shared parts: a headless Chromium window on the dashboard (`Page`, started by
`chromium_page`), the screens every changed page is looked at on (`SIZES`, `shots`), a Dash dropdown's choice, and
the classroom the real capture CLI records (`Classroom`).

tests/conftest.py starts the one Chromium of a test run and records the one classroom with these; the browser
test modules import them from here rather than from each other."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import cv2
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.cli import copy_sqlite, count_rows, run_module
from tests.galleries import Gallery

ARTIFACTS_VARIABLE = "CLASSPULSE_TEST_ARTIFACTS"
# Generous next to the page's 2 s refresh: CI's two cores are busy with the browser, the server and capture.
WAIT_S = 30
# The screens every changed page is looked at on: a teacher's laptop and a desktop monitor.
SIZES = ((1366, 768), (1920, 1080))
# The classroom's session: a name that must be percent-encoded in URLs and cleaned up for file names.
SESSION = "Year 9 / maths"
ADMIN = "head-of-year"  # the classroom's dashboard account
GALLERY_FRAMES = 2

T = TypeVar("T")


class Classroom:
    """A SQLite file that the real capture CLI writes into, one run per call of `capture`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "classpulse.db"
        self.url = f"sqlite:///{self.db}"
        self.runs = 0

    def capture(self, gallery: Gallery) -> None:
        """Run `python -m capture` over GALLERY_FRAMES copies of `gallery`, continuing SESSION."""
        self.runs += 1
        frames = self.folder / f"run-{self.runs}"
        frames.mkdir()
        for index in range(GALLERY_FRAMES):
            cv2.imwrite(str(frames / f"{index:03d}.png"), gallery.image)
        result = run_module("capture", "--source", str(frames), "--db", self.url, "--session", SESSION)
        assert result.returncode == 0, result.stderr

    def count(self, table: str) -> int:
        return count_rows(self.db, table)

    def copy(self, folder: Path) -> Classroom:
        """A classroom of its own in `folder`, starting from a copy of this one's database."""
        room = Classroom(folder)
        copy_sqlite(self.db, room.db)
        return room


class Page:
    """One headless Chromium window on the dashboard, with the waits and reads the tests share."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, downloads: Path, artifacts: Path) -> None:
        self.driver, self.base_url, self.downloads, self.artifacts = driver, base_url, downloads, artifacts

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait_for(self, what: str, condition: Callable[[], T]) -> T:
        """The first truthy value of `condition`, polled until WAIT_S have passed. Dash redraws the page as
        callbacks answer, so an element found one moment may be gone the next: such a poll is tried again."""
        try:
            wait = WebDriverWait(
                self.driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
            )
            return wait.until(lambda _: condition())
        except TimeoutException:
            self.screenshot("timed-out")
            raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}") from None

    def elements(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, element_id: str) -> str:
        found = self.driver.find_elements(By.ID, element_id)
        return found[0].text if found else ""

    def graph_points(self, css: str) -> list[dict[str, int]]:
        """Per Plotly chart under `css` as drawn in the page: {trace name: number of points}, in trace order.
        Empty until every chart there has its traces (a chart is drawn empty before its callback answers)."""
        # Pairs, not a JS object: WebDriver returns objects with their keys sorted.
        script = """
            return [...document.querySelectorAll(arguments[0] + ' .js-plotly-plot')].map(graph =>
                (graph.data || []).map(trace => [trace.name, (trace.x || []).length]));
        """
        charts = [dict(pairs) for pairs in self.driver.execute_script(script, css)]
        return charts if all(charts) else []

    def screenshot(self, name: str) -> None:
        """The whole page, not only the window (Chromium's DevTools protocol; resizing the window would
        re-lay the page out)."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"clip": clip, "captureBeyondViewport": True})
        (self.artifacts / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))

    def download(self, button_id: str, suffix: str) -> Path:
        """Click a download button and wait for the finished file whose name ends with `suffix`."""
        self.driver.find_element(By.ID, button_id).click()
        return self.wait_for(f"a download ending in {suffix}", lambda: next(self.downloads.glob(f"*{suffix}"), None))


@contextmanager
def chromium_page(
    programs: tuple[str, str], base_url: str, downloads: Path, artifacts: Path, window: tuple[int, int] = SIZES[0]
) -> Iterator[Page]:
    """A headless Chromium window of `window` pixels on the dashboard at `base_url`, saving downloads in
    `downloads`; closed afterwards."""
    chromium, chromedriver = programs
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size={},{}".format(*window),
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # An explicit driver path keeps Selenium Manager from trying to download one.
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        yield Page(driver, base_url, downloads, artifacts)
    finally:
        driver.quit()


def shots(page: Page, name: str) -> None:
    """The page at each of SIZES, as a laptop and a desktop show it (the whole page, below the fold too); back at
    the laptop's size afterwards."""
    for width, height in SIZES:
        page.driver.set_window_size(width, height)
        page.driver.execute_script("return document.body.offsetHeight")  # lays the page out at the new size
        page.screenshot(f"{name}-{width}x{height}")
    page.driver.set_window_size(*SIZES[0])


def choose(page: Page, dropdown_id: str, label: str) -> None:
    """Pick the option shown as `label` in a Dash dropdown, as a user does: open it, type, press Enter."""
    page.driver.find_element(By.CSS_SELECTOR, f"#{dropdown_id} .Select-control").click()
    page.driver.find_element(By.CSS_SELECTOR, f"#{dropdown_id} input").send_keys(label + Keys.ENTER)
    chosen = f"#{dropdown_id} .Select-value-label"
    page.wait_for(f"{label} chosen", lambda: [element.text for element in page.elements(chosen)] == [label])
