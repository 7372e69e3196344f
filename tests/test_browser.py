"""The dashboard in a real browser: headless Chromium, driven by Selenium, against `python -m dashboard` on
localhost, over a SQLite file written by the real capture CLI from generated gallery frames.

A screenshot of every page, and the report printed to PDF, go to $CLASSPULSE_TEST_ARTIFACTS (default: a pytest
temporary folder). The gallery frames stay in pytest's temporary folders; the dashboard itself never shows a face.
"""

from __future__ import annotations

import base64
import csv
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.print_page_options import PrintOptions
from selenium.webdriver.remote.webelement import WebElement

import config
from analytics.live import SURE_PROBABILITY
from dashboard import ids
from dashboard.components import live_path, report_path
from dashboard.figures import SPARKLINE_HEIGHT_PX
from dashboard.pages.live import ATTENTION_LINES, NOW_CHART_HEIGHT_PX, TIMELINE_HEIGHT_PX
from dashboard.pages.report import RENAME_OPEN, RENAME_PANEL, RENAME_TITLE
from tests.browser import ADMIN, SESSION, Classroom, Page, shots
from tests.cli import run_module
from tests.conftest import OpenBrowser
from tests.dashboard_users import sign_in_browser
from tests.galleries import compose_gallery, lfw_faces
from vocabulary.emotions import EMOTIONS

UNSURE_TRACE = f"unsure (model below {SURE_PROBABILITY:.0%})"  # the live timeline's line of unsure faces
CAMERA_OFF = "camera off"  # a second session, for the flag test
CAMERA_OFF_AGAIN = "camera off again"  # the same class again, for the needs-attention list
TWO_CAMERAS_OFF = "two cameras off"  # two flagged students, for decisions that must survive a reload
WINDOW_WIDTH, WINDOW_HEIGHT = 1400, 1000
# A4 less the report's 12 mm print margins, in CSS pixels (96 per inch): no chart may print wider.
A4_CM = (21.0, 29.7)
PRINT_WIDTH_PX = (210 - 2 * 12) / 25.4 * 96


# Chromium first, so that the module skips before it copies its classroom (conftest's fixtures).
pytestmark = pytest.mark.usefixtures("browser_programs")


@pytest.fixture(scope="module")
def page(chromium: OpenBrowser, classroom_dashboard: str, tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The shared Chromium, in a window taller than a laptop's, signed in as ADMIN for the whole module."""
    page = chromium(classroom_dashboard, tmp_path_factory.mktemp("downloads"))
    page.driver.set_window_size(WINDOW_WIDTH, WINDOW_HEIGHT)
    sign_in_browser(page.driver, classroom_dashboard, ADMIN)
    return page


def cards(page: Page) -> list[WebElement]:
    return page.elements(f"#{ids.STUDENT_GRID} .student-card")


def test_live_page_shows_the_timeline_and_new_rows_after_the_next_refresh(classroom: Classroom, page: Page) -> None:
    page.open(live_path(SESSION))
    students = classroom.count("students")
    timeline = page.wait_for("the live timeline", lambda: page.graph_points(f"#{ids.LIVE_TIMELINE}"))[0]
    assert list(timeline) == [*EMOTIONS, UNSURE_TRACE, "engagement"]
    assert all(points > 0 for points in timeline.values())
    page.wait_for(f"{students} student cards", lambda: len(cards(page)) == students)
    assert page.text(ids.LIVE_STUDENT_COUNT).startswith(f"{students} student(s) seen")
    assert "ended" in page.text(ids.LIVE_BANNER)  # the capture run closed the session
    page.screenshot("live")

    # A marker on the window object survives refreshes but not a reload.
    page.driver.execute_script("window.notReloaded = true;")
    classroom.capture(compose_gallery(lfw_faces(12, start=70), 4, 3, seed=4))
    more = classroom.count("students")
    assert more > students
    page.wait_for(f"{more} student cards after the refresh", lambda: len(cards(page)) == more)
    assert page.driver.execute_script("return window.notReloaded === true;")
    assert page.text(ids.LIVE_STUDENT_COUNT).startswith(f"{more} student(s) seen")
    assert [card.get_attribute("data-student") for card in cards(page)] == [f"tile-{n}" for n in range(1, more + 1)]
    # Every card's strip keeps its height through refreshes and fits its card, new cards included.
    for card in cards(page):
        strip = card.find_element(By.CSS_SELECTOR, ".sparkline").size
        assert strip["height"] == SPARKLINE_HEIGHT_PX and 0 < strip["width"] <= card.size["width"], strip
    shots(page, "live-after-new-rows")
    # The refreshes sent only what changed (dashboard.patches): the page they made is the one a reload draws whole.
    patched = page.wait_for("the page after the new rows, settled", lambda: settled_live_page(page))
    page.open(live_path(SESSION))
    page.wait_for(f"{more} student cards after a reload", lambda: len(cards(page)) == more)
    assert page.wait_for("the reloaded page", lambda: drawn_live_page(page)) == patched


def settled_live_page(page: Page) -> str | None:
    """drawn_live_page once two refreshes have left it as it was (the last bin's scoring shows a refresh later)."""
    before = drawn_live_page(page)
    time.sleep(2.5 * config.chosen().dashboard.live_refresh_seconds)
    return before if before is not None and drawn_live_page(page) == before else None


def drawn_live_page(page: Page) -> str | None:
    """The live page's cards and timeline as the browser has them (each card's HTML, each trace's points), once
    the timeline is drawn."""
    script = """
        const graph = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
        if (!graph || !(graph.data || []).length) return null;
        const traces = graph.data.map(trace => [trace.name, Array.from(trace.x), Array.from(trace.y)]);
        const cards = Array.from(document.querySelectorAll('#' + arguments[1] + ' .student-card'));
        return JSON.stringify([traces, cards.map(card => card.outerHTML)]);
    """
    drawn: str | None = page.driver.execute_script(script, ids.LIVE_TIMELINE, ids.STUDENT_GRID)
    return drawn


# Wraps the page's fetch before its scripts run: every live refresh answers SLOW_REFRESH_MS late, as from a
# busy server, and the most refreshes in flight at once is counted.
SLOW_REFRESH_MS = 5000
SLOW_LIVE_REFRESHES = """
window.liveRefreshes = {inFlight: 0, most: 0, answered: 0};
const pageFetch = window.fetch;
window.fetch = async function (url, options) {
    const body = String(options && options.body);
    if (!String(url).includes('_dash-update-component') || !body.includes('LIVE_STATE.data')) {
        return pageFetch.apply(this, arguments);
    }
    liveRefreshes.inFlight += 1;
    liveRefreshes.most = Math.max(liveRefreshes.most, liveRefreshes.inFlight);
    try {
        const response = await pageFetch.apply(this, arguments);
        await new Promise(resolve => setTimeout(resolve, SLOW_MS));
        return response;
    } finally {
        liveRefreshes.inFlight -= 1;
        liveRefreshes.answered += 1;
    }
};
""".replace("LIVE_STATE", ids.LIVE_STATE).replace("SLOW_MS", str(SLOW_REFRESH_MS))


def test_a_slow_live_refresh_is_never_overlapped_and_the_charts_say_loading_at_their_fixed_height(page: Page) -> None:
    script = page.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SLOW_LIVE_REFRESHES})
    try:
        page.open(live_path(SESSION))
        charts = {ids.LIVE_TIMELINE: TIMELINE_HEIGHT_PX, ids.LIVE_NOW_CHART: NOW_CHART_HEIGHT_PX}
        # The first answer is held back: meanwhile every chart says so, at its own height, over no axes.
        page.wait_for("the loading charts", lambda: all(loading_note(page, chart) for chart in charts))
        assert page.text(ids.STUDENT_GRID) == "Loading…"
        page.screenshot("live-loading")
        # The timer (2 s) fires again and again while each answer takes 5 s: none may start before the last ends.
        page.wait_for("three slow refreshes", lambda: page.driver.execute_script("return liveRefreshes.answered;") >= 3)
        assert page.driver.execute_script("return liveRefreshes.most;") == 1
        for chart, height in charts.items():
            assert page.driver.find_element(By.ID, chart).size["height"] == height, chart
            assert not loading_note(page, chart)
    finally:
        page.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)


def loading_note(page: Page, chart: str) -> bool:
    """Whether the chart shows only its "Loading…" note (no traces, no axes)."""
    script = """
        const graph = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
        return Boolean(graph && graph.layout && (graph.data || []).length === 0
            && (graph.layout.annotations || []).map(note => note.text).join() === 'Loading…'
            && document.querySelectorAll('#' + arguments[0] + ' .xtick').length === 0);
    """
    return page.driver.execute_script(script, chart)


def test_sessions_page_lists_the_session_with_its_counts(classroom: Classroom, page: Page) -> None:
    page.open("/sessions")
    row = page.wait_for("the session's row", lambda: session_row(page))
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    # Columns: started, session, teacher, class, source, duration, students, average engagement (scored as
    # capture ended), observations, report link.
    assert [cells[6], cells[8]] == [str(classroom.count("students")), str(classroom.count("observations"))]
    assert 0 <= float(cells[7]) <= 1
    page.screenshot("sessions")


def session_row(page: Page) -> WebElement | None:
    for row in page.elements(f"#{ids.SESSIONS_TABLE} tbody tr"):
        if row.find_elements(By.TAG_NAME, "td")[1].text == SESSION:
            return row
    return None


def test_report_page_renders_its_charts_and_one_row_per_student(classroom: Classroom, page: Page) -> None:
    page.open(report_path(SESSION))
    students = classroom.count("students")
    rows = page.wait_for(
        f"{students} rows in the students table",
        lambda: len(found := page.elements(f"#{ids.REPORT_STUDENTS} tbody tr")) == students and found,
    )
    assert [row.get_attribute("data-student") for row in rows] == [f"tile-{n}" for n in range(1, students + 1)]
    charts = page.wait_for("the report's charts", lambda: page.graph_points(f"#{ids.PAGE}"))
    for chart in charts:
        assert all(points > 0 for points in chart.values()), chart
    assert list(page.graph_points(f"#{ids.REPORT_TIMELINE}")[0]) == [*EMOTIONS, "engagement"]
    page.screenshot("report")


def test_csv_exports_download_one_row_per_face_and_per_student(classroom: Classroom, page: Page) -> None:
    page.open(report_path(SESSION))
    page.wait_for("the download buttons", lambda: page.elements(f"#{ids.DOWNLOAD_ROWS_BUTTON}"))
    rows = read_csv(page.download(ids.DOWNLOAD_ROWS_BUTTON, "-rows.csv"))
    assert len(rows) == classroom.count("observations WHERE presence = 'face'")
    assert {row["student"] for row in rows} == {f"tile-{n}" for n in range(1, classroom.count("students") + 1)}
    students = read_csv(page.download(ids.DOWNLOAD_STUDENTS_BUTTON, "-students.csv"))
    assert len(students) == classroom.count("students")


def read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_student_renamed_from_their_row_shows_in_its_table_and_heatmap(page: Page) -> None:
    page.open(report_path(SESSION))
    page.wait_for("the report's charts", lambda: page.graph_points(f"#{ids.REPORT_HEATMAP}"))
    page.wait_for("the page's callbacks to settle", lambda: page.driver.title == "ClassPulse")
    assert not page.driver.find_element(By.ID, RENAME_PANEL).is_displayed()  # nothing asked yet
    page.driver.execute_script("window.notReloaded = true;")
    typed = "Zoë <i>O'Brien</i>"  # markup typed as a name must show as text, in the table and in the chart
    name_box = open_rename(page, "tile-2")
    assert name_box.get_attribute("value") == ""  # no name yet
    name_box.send_keys(typed)
    page.driver.find_element(By.ID, ids.RENAME_BUTTON).click()
    page.wait_for("the new name in the students table", lambda: table_name(page, "tile-2") == typed)
    page.wait_for("the new name in the heatmap", lambda: typed in heatmap_labels(page))
    (label,) = [label for label in page.elements(f"#{ids.REPORT_HEATMAP} .ytick text") if label.text == typed]
    assert label.location["x"] >= page.driver.find_element(By.ID, ids.REPORT_HEATMAP).location["x"]  # not cut off
    notice = page.wait_for("the rename's notice", lambda: [e for e in page.elements(".merge-notice") if e.text])
    assert notice[0].text == f"Renamed tile-2 to {typed}."
    assert not page.driver.find_element(By.ID, RENAME_PANEL).is_displayed()  # closed by the redrawn page
    assert not page.elements(f"#{ids.REPORT_STUDENTS} i, #{ids.REPORT_HEATMAP} i")
    assert page.driver.execute_script("return window.notReloaded === true;")
    page.screenshot("report-renamed")

    open_rename(page, "tile-3")
    page.driver.find_element(By.ID, ids.RENAME_BUTTON).click()  # with no name typed
    page.wait_for("the refusal", lambda: page.text(ids.FIX_MESSAGE) == "Not changed: the new name is empty.")
    assert table_name(page, "tile-3") == ""
    page.screenshot("report-rename-refused")


def open_rename(page: Page, student: str) -> WebElement:
    """Press the "Rename…" button of `student`'s row; the rename panel's name box, once the panel shows."""
    row = page.elements(f"#{ids.REPORT_STUDENTS} tbody tr[data-student='{student}']")[0]
    button = row.find_element(By.CSS_SELECTOR, f"button[id*='{RENAME_OPEN}']")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    page.wait_for(
        f"the rename panel for {student}",
        lambda: page.driver.find_element(By.ID, RENAME_PANEL).is_displayed()
        and page.text(RENAME_TITLE) == f"Rename {student}",
    )
    return page.driver.find_element(By.ID, ids.RENAME_NAME)


def table_name(page: Page, student: str) -> str | None:
    rows = page.elements(f"#{ids.REPORT_STUDENTS} tbody tr[data-student='{student}']")
    return rows[0].find_elements(By.TAG_NAME, "td")[1].text if rows else None


def rows(page: Page) -> list[WebElement]:
    return page.elements(f"#{ids.REPORT_STUDENTS} tbody tr")


def heatmap_labels(page: Page) -> list[str]:
    return [label.text for label in page.elements(f"#{ids.REPORT_HEATMAP} .ytick text")]


def test_the_report_prints_on_a4_without_its_controls_and_with_its_charts_fitted(page: Page) -> None:
    page.open(report_path(SESSION))
    charts = page.wait_for("the report's charts", lambda: page.graph_points(f"#{ids.PAGE}"))
    names = {
        row.get_attribute("data-student"): table_name(page, row.get_attribute("data-student")) for row in rows(page)
    }
    widths = "[...document.querySelectorAll('.js-plotly-plot')].map(chart => chart._fullLayout.width)"
    screen_widths = page.driver.execute_script(f"return {widths};")
    # What the charts measure as printing starts (this listener runs after the page's own).
    page.driver.execute_script(
        f"window.printWidths = []; addEventListener('beforeprint', () => printWidths.push(...{widths}));"
    )
    options = PrintOptions()
    options.page_width, options.page_height = A4_CM
    pdf = base64.b64decode(page.driver.print_page(options))
    (page.artifacts / "report.pdf").write_bytes(pdf)
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    # A report of a dozen students is longer than one page: the timeline, the heatmap, then the table.
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000 and pages >= 2, (len(pdf), pages)
    printed = page.driver.execute_script("return window.printWidths;")
    assert len(printed) == len(charts) and all(0 < width <= PRINT_WIDTH_PX for width in printed), printed
    assert page.driver.execute_script(f"return {widths};") == screen_widths  # back to the screen's width after printing

    # The PDF's text is compressed, and no PDF reader is installed: what prints is read off the print-media page.
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shown = [element for element in page.elements("header, nav, button, input, .card") if element.is_displayed()]
        assert [element.tag_name for element in shown] == ["section"] * 4  # timeline, heatmap, drops, students
        assert page.driver.find_element(By.TAG_NAME, "h1").text == SESSION
        # Every student prints with the name the screen shows (tile-2's typed by the test above).
        assert all(row.is_displayed() for row in rows(page)) and len(rows(page)) == len(names)
        assert {student: table_name(page, student) for student in names} == names
        breaks = "return getComputedStyle(document.querySelector(arguments[0])).breakInside;"
        for kept_whole in (f"#{ids.REPORT_STUDENTS} tbody tr", f"#{ids.REPORT_HEATMAP}"):
            assert page.driver.execute_script(breaks, kept_whole) == "avoid", kept_whole
        page.screenshot("report-print-media")
    finally:
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    # The button hands over to the browser's print (headless Chromium starts it and never finishes it).
    page.driver.execute_script("window.printWidths = [];")
    page.driver.find_element(By.ID, ids.REPORT_PRINT).click()
    page.wait_for("printing to start", lambda: page.driver.execute_script("return window.printWidths.length;"))


def capture_camera_off(classroom: Classroom, session: str, cameras_off: int = 1) -> None:
    """`session` of its own: a 2x2 gallery whose last `cameras_off` tiles have the camera off, one frame every
    50 s of recording time (a folder's images are stamped i / fps apart), so those tiles are absent for 100 s,
    over the 60 s rule."""
    frames = classroom.folder / session.replace(" ", "-")
    frames.mkdir()
    off = set(range(4 - cameras_off, 4))
    gallery = compose_gallery(lfw_faces(4 - cameras_off, start=90), 2, 2, seed=5, camera_off=off)
    for index in range(3):
        cv2.imwrite(str(frames / f"{index:03d}.png"), gallery.image)
    result = run_module(
        "capture", "--source", str(frames), "--db", classroom.url, "--session", session, "--fps", "0.02"
    )
    assert result.returncode == 0, result.stderr


def test_a_camera_off_student_is_flagged_first_and_the_flag_can_be_acknowledged(
    classroom: Classroom, page: Page
) -> None:
    # After the tests that count whole tables.
    capture_camera_off(classroom, CAMERA_OFF)

    page.open(live_path(CAMERA_OFF))
    flag_css = f"#{ids.FLAG_LIST} .flag[data-rule='camera_off']"
    (flag,) = page.wait_for("a camera-off flag", lambda: page.elements(flag_css))
    assert "camera off" in flag.text and "new" in flag.get_attribute("class").split()
    # Flagged students' cards come first (the faces' held expressions may raise "negative" flags too).
    flagged = {card.get_attribute("data-student"): card.get_attribute("data-flagged") == "true" for card in cards(page)}
    assert flagged[flag.get_attribute("data-student")] and list(flagged.values()) == sorted(
        flagged.values(), reverse=True
    )
    page.screenshot("live-flag")
    flag.find_element(By.CSS_SELECTOR, "button.acknowledge").click()
    page.wait_for("the acknowledged flag", lambda: page.elements(f"{flag_css}.acknowledged"))


def test_the_camera_off_student_is_named_in_the_grouped_list_and_the_times_are_the_viewers(
    classroom: Classroom, page: Page
) -> None:
    # A session of its own: CAMERA_OFF's flag has been acknowledged, which takes it off the list.
    capture_camera_off(classroom, CAMERA_OFF_AGAIN)
    # The browser says it is in New York; the server is not.
    page.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    try:
        page.open(live_path(CAMERA_OFF_AGAIN))
        lines = page.wait_for("the needs-attention list", lambda: page.elements(f"#{ids.NEEDS_ATTENTION} .attention"))
        flagged = [card for card in cards(page) if card.get_attribute("data-flagged") == "true"]
        assert flagged and len(lines) <= ATTENTION_LINES
        listed = " ".join(line.text for line in lines)
        for card in flagged:  # each flagged student is in the list and their card says why
            name = card.find_element(By.CSS_SELECTOR, ".student-name").text
            assert name in listed and card.find_element(By.CSS_SELECTOR, ".flag-why").text.startswith("⚑ ")
        camera_off = [card for card in cards(page) if card.get_attribute("data-state") == "camera_off"]
        assert camera_off and all("engagement –" in card.text for card in camera_off)
        assert page.text(ids.TIME_ZONE) == "times in America/New_York"
        assert page.elements(".legend .legend-scale")  # the colours of the cards are explained
        page.screenshot("live-needs-attention")
    finally:
        page.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_an_acknowledgement_and_a_snooze_survive_a_reload(classroom: Classroom, page: Page) -> None:
    capture_camera_off(classroom, TWO_CAMERAS_OFF, cameras_off=2)
    page.open(live_path(TWO_CAMERAS_OFF))
    flag_css = f"#{ids.FLAG_LIST} .flag[data-rule='camera_off']"
    flags = page.wait_for("two camera-off flags", lambda: len(page.elements(flag_css)) == 2 and page.elements(flag_css))
    acknowledged, snoozed = (flag.get_attribute("data-student") for flag in flags)
    flags[0].find_element(By.CSS_SELECTOR, "button.acknowledge").click()
    page.wait_for("the acknowledgement", lambda: page.elements(f"{flag_css}.acknowledged"))
    # The list is redrawn from the database at every refresh: find the other flag's line again.
    line = page.wait_for(
        "the other flag's buttons",
        lambda: page.elements(f"{flag_css}[data-student='{snoozed}']:not(.acknowledged) button.snooze"),
    )
    line[0].click()
    page.wait_for("the snooze", lambda: page.elements(f"{flag_css}[data-student='{snoozed}'].silenced"))

    page.driver.refresh()  # F5: the page starts again from nothing but the database
    page.wait_for(
        "the acknowledged flag again", lambda: page.elements(f"{flag_css}[data-student='{acknowledged}'].acknowledged")
    )
    page.wait_for("the snoozed flag again", lambda: page.elements(f"{flag_css}[data-student='{snoozed}'].silenced"))
    silenced = page.wait_for("the silenced line", lambda: page.elements(f"#{ids.SILENCED} .silence"))
    assert [
        (item.get_attribute("data-student"), item.find_element(By.TAG_NAME, "button").text) for item in silenced
    ] == [(snoozed, "Unsnooze")]
    # Neither is on the needs-attention list any more: nothing there about cameras off.
    assert not page.elements(f"#{ids.NEEDS_ATTENTION} .attention[data-rule='camera_off']")
    page.screenshot("live-silenced")


def test_the_class_mood_and_each_card_say_how_sure_the_model_was(page: Page) -> None:
    page.open(live_path(SESSION))
    page.wait_for("the emotions of the last seconds", lambda: page.graph_points(f"#{ids.LIVE_NOW_CHART}"))
    bars = page.driver.execute_script(
        "const graph = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return [graph.data[0].x, graph.data[0].error_x.array, graph.layout.title.text];",
        f"#{ids.LIVE_NOW_CHART}",
    )
    shares, bands, title = bars
    # Expected shares from calibrated probabilities: they add up to the whole, each with its 95 % band.
    assert len(shares) == len(bands) == len(EMOTIONS) and abs(sum(shares) - 1) < 1e-6
    assert all(0 <= band <= 1 for band in bands) and any(band > 0 for band in bands)
    assert re.search(r"\d+ face\(s\) · model unsure about \d+%", title), title
    assert UNSURE_TRACE in page.graph_points(f"#{ids.LIVE_TIMELINE}")[0]
    # Each emotion on a card says in its tooltip how sure the model was, and "?" marks an unsure one.
    badges = page.wait_for("the cards' emotions", lambda: page.elements(f"#{ids.STUDENT_GRID} .badges .badge[title]"))
    for badge in badges:
        title = badge.get_attribute("title")
        assert re.fullmatch(r"\w+: model (sure|unsure), \d+% likely \(calibrated probability\)", title), title
        assert badge.text.endswith("?") == ("model unsure" in title)
    page.screenshot("live-confidence")


def show_emotions_box(page: Page) -> WebElement:
    return page.driver.find_element(By.CSS_SELECTOR, f"#{ids.SHOW_EMOTIONS} input[type=checkbox]")


def emotions_hidden(page: Page) -> bool:
    """Whether the page shows no emotion at all: no mood chart, no emotion areas, strips or badges."""
    timeline = page.graph_points(f"#{ids.LIVE_TIMELINE}")
    mood = page.driver.find_element(By.ID, ids.LIVE_MOOD_CARD)
    return (
        bool(timeline)
        and list(timeline[0]) == ["engagement"]
        and not mood.is_displayed()
        and not page.elements(f"#{ids.STUDENT_GRID} .sparkline")
        and all(card.get_attribute("data-emotion") == "hidden" for card in cards(page))
        and not any(item.is_displayed() for item in page.elements(".legend .legend-emotion"))
        and timeline_heading(page) == "Class engagement"
    )


def timeline_heading(page: Page) -> str:
    """The visible text of the timeline's heading."""
    return page.driver.find_element(By.XPATH, "//h2[starts-with(normalize-space(.), 'Class ')]").text


def test_hiding_emotions_holds_after_a_reload_and_in_another_tab_and_for_this_user_only(page: Page) -> None:
    page.open(live_path(SESSION))
    page.wait_for("the student cards", lambda: cards(page))
    assert show_emotions_box(page).is_selected()
    show_emotions_box(page).click()
    page.wait_for("the page without emotions", lambda: emotions_hidden(page))
    page.screenshot("live-emotions-hidden")
    stored = page.driver.execute_script(f"return JSON.parse(localStorage.getItem('{ids.LIVE_PREFERENCES}'));")
    assert stored == {ADMIN: {"show_emotions": False}}  # in the browser, under this user's name

    page.driver.refresh()
    page.wait_for("the page without emotions after a reload", lambda: emotions_hidden(page))
    assert not show_emotions_box(page).is_selected()
    first_tab = page.driver.current_window_handle
    page.driver.switch_to.new_window("tab")
    try:
        page.open(live_path(SESSION))
        page.wait_for("the page without emotions in another tab", lambda: emotions_hidden(page))
    finally:
        page.driver.close()
        page.driver.switch_to.window(first_tab)

    # Another user of the same browser has their own setting: emotions shown.
    page.driver.execute_script(
        f"localStorage.setItem('{ids.LIVE_PREFERENCES}', JSON.stringify({{'someone-else': {{show_emotions: false}}}}));"
    )
    page.driver.refresh()
    page.wait_for("the emotions back", lambda: page.graph_points(f"#{ids.LIVE_NOW_CHART}"))
    assert show_emotions_box(page).is_selected() and not emotions_hidden(page)
    assert timeline_heading(page) == "Class mood and engagement"


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_above_the_fold_the_class_now_the_needs_attention_list_and_the_grid(
    page: Page, width: int, height: int
) -> None:
    page.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        page.open(live_path(CAMERA_OFF_AGAIN))
        page.wait_for("the needs-attention list", lambda: page.elements(f"#{ids.NEEDS_ATTENTION} .attention"))
        page.wait_for("the student cards", lambda: cards(page))
        page.wait_for("the charts", lambda: page.graph_points(f"#{ids.LIVE_TIMELINE}"))
        boxes = page.driver.execute_script(
            "return arguments[0].map(id => document.getElementById(id).getBoundingClientRect().toJSON());",
            [ids.LIVE_NOW, ids.NEEDS_ATTENTION, ids.STUDENT_GRID],
        )
        now, attention, grid = boxes
        assert now["bottom"] <= height and attention["bottom"] <= height, boxes
        assert grid["top"] < height - 100, boxes  # at least the first row of cards shows
        assert page.elements(".legend .legend-scale") and page.elements(".legend .legend-emotion")
        # Nothing is wider than the window: no sideways scrolling, nothing cut off at the right.
        assert page.driver.execute_script("return document.documentElement.scrollWidth;") <= width
        (page.artifacts / f"live-{width}x{height}.png").write_bytes(page.driver.get_screenshot_as_png())
    finally:
        page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_sign_out_button_ends_the_session_through_the_csrf_check(page: Page) -> None:
    # After the tests above, which need the signed-in browser; it signs in again for any test that follows.
    page.open("/sessions")
    sign_out = page.wait_for("the sign-out button", lambda: page.elements(f"#{ids.SIGN_OUT}"))[0]
    sign_out.click()
    page.wait_for("the sign-in form", lambda: urlsplit(page.driver.current_url).path == "/login")
    assert page.elements("#login-name"), page.driver.page_source[:500]
    page.open("/sessions")  # signed out: sent back to the sign-in form
    page.wait_for("the sign-in form again", lambda: urlsplit(page.driver.current_url).path == "/login")
    sign_in_browser(page.driver, page.base_url, ADMIN)
