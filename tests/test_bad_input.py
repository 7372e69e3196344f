"""Bad input, tried systematically through the real `python -m capture` and `python -m db` commands: truncated,
empty and huge files, a resolution that changes mid-stream, a 100-tile gallery, a black screen, wrong
database URLs, and hostile text as student names, which the dashboard must show as plain text.

Covered elsewhere, not repeated here: a missing file, an empty folder, a non-image file with an image suffix, a
corrupt video, a missing monitor and an unreachable database port (test_capture_cli), unknown session names in
`analytics export` (test_export), `db students` (test_identity) and dashboard URLs (test_dashboard), malformed
training CSV (test_model).
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import Engine

from dashboard import ids
from dashboard.app import create_app
from dashboard.pages.live import WHOLE_SESSION
from db.migrate import upgrade
from tests.cli import REPO, assert_one_clear_line, count_rows, run_module, sqlite_rows
from tests.dashboard_users import signed_in_client
from tests.galleries import astronaut, compose_gallery, lfw_faces
from tests.test_capture_cli import capture, export, inside, written
from tests.test_dashboard import dash_call, page, walk
from vocabulary.records import Box

SQL_NAME = "Robert'); DROP TABLE students;--"
SCRIPT_NAME = "<script>alert(1)</script>"


def encoded(image: np.ndarray, suffix: str) -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def library_lines(stderr: str) -> list[str]:
    """stderr lines other than LiteRT's INFO lines: what a user would have to read."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("INFO:")]


def assert_faces_in(rows: list[dict[str, str]], faces: list[Box | None]) -> None:
    """Every face row's box holds the centre of one of the pasted faces."""
    for row in rows:
        box = tuple(float(row[k]) for k in "xywh")
        assert any(face is not None and inside(box, *face.center) for face in faces), row


# Broken and empty files.


@pytest.mark.parametrize(
    ("name", "make_content"),
    [
        ("truncated.png", lambda: encoded(astronaut(), ".png")[:200_000]),
        ("empty.png", lambda: b""),
        ("empty.jpg", lambda: b""),
        ("empty.mp4", lambda: b""),
    ],
)
def test_truncated_or_empty_file_is_one_clear_line(tmp_path: Path, name: str, make_content) -> None:
    # libpng writes "libpng error: Read Error" to stderr itself: the one-line rule caught that.
    result = capture(written(tmp_path / name, make_content()), tmp_path / "class.db")
    assert_one_clear_line(result, name)


def test_truncated_jpeg_is_read_as_far_as_it_goes_without_library_noise(tmp_path: Path) -> None:
    # libjpeg decodes the rows it has and greys the rest; it is a frame, and "Premature end of JPEG file"
    # printed by the library must not reach the user.
    image = written(tmp_path / "truncated.jpg", encoded(astronaut(), ".jpg")[:30_000])
    result = capture(image, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    assert "frames=1 " in result.stdout
    assert library_lines(result.stderr) == []


def test_folder_with_broken_files_analyses_the_good_images_and_counts_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    good = encoded(astronaut(), ".png")
    written(folder / "1.png", good)
    written(folder / "2.png", good[: len(good) // 3])
    written(folder / "3.jpg", b"")
    written(folder / "4.png", b"%PDF-1.7\n" + bytes(range(256)))
    written(folder / "5.png", good)
    result = capture(folder, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    assert "frames=2 faces=2 " in result.stdout and "3 skipped" in result.stdout
    assert library_lines(result.stderr) == []


# Sizes: huge, changing mid-stream, many tiles, nothing at all.


def test_8k_gallery_finds_every_face_in_its_tile(tmp_path: Path) -> None:
    gallery = compose_gallery(lfw_faces(9, start=60), 3, 3, size=(7680, 4320), seed=3)
    image = tmp_path / "8k.png"
    cv2.imwrite(str(image), gallery.image)
    result = capture(image, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    assert "frames=1 faces=9 " in result.stdout
    rows = export(tmp_path / "class.db", tmp_path / "class.csv")
    assert len(rows) == 9
    assert_faces_in(rows, gallery.faces)


def test_folder_whose_image_size_changes_between_frames(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    faces = lfw_faces(4, start=60)
    galleries = [compose_gallery(faces, 2, 2, size=size, seed=3) for size in [(1920, 1080), (640, 360), (3840, 2160)]]
    for index, gallery in enumerate(galleries):
        cv2.imwrite(str(folder / f"{index}.png"), gallery.image)
    result = capture(folder, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    assert "frames=3 faces=12 " in result.stdout
    rows = export(tmp_path / "class.db", tmp_path / "class.csv")
    for index, gallery in enumerate(galleries):
        in_frame = [row for row in rows if row["frame"] == str(index)]
        assert len(in_frame) == 4
        assert_faces_in(in_frame, gallery.faces)


def test_video_whose_resolution_changes_mid_stream(tmp_path: Path) -> None:
    # An MJPEG stream is JPEG images one after another, so two sizes concatenate into one valid video;
    # OpenCV's FFmpeg reader scales the later frames to the first size.
    picture = compose_gallery(lfw_faces(4, start=60), 2, 2, size=(1920, 1080), seed=3).image
    video = tmp_path / "class.mjpeg"
    sizes = [(1280, 720)] * 3 + [(1920, 1080)] * 3
    video.write_bytes(b"".join(encoded(cv2.resize(picture, size), ".jpg") for size in sizes))
    result = capture(video, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    assert "frames=6 faces=24 " in result.stdout


def test_gallery_of_100_tiles_gives_a_row_for_every_tile(tmp_path: Path) -> None:
    gallery = compose_gallery(lfw_faces(100), 10, 10)
    image = tmp_path / "100.png"
    cv2.imwrite(str(image), gallery.image)
    result = capture(image, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    rows = export(tmp_path / "class.db", tmp_path / "class.csv")
    assert len(rows) == 100  # every tile is a student, with or without a face found
    faces = [row for row in rows if row["presence"] == "face"]
    print(f"100-tile gallery: {len(faces)} of 100 faces found")
    assert f"faces={len(faces)} " in result.stdout
    # Tiles of 180x101 px hold faces of 55-70 px, BlazeFace's home ground.
    assert len(faces) >= 90
    assert_faces_in(faces, gallery.faces)


def test_all_black_image_is_a_frame_without_faces(tmp_path: Path) -> None:
    image = tmp_path / "black.png"
    cv2.imwrite(str(image), np.zeros((1080, 1920, 3), np.uint8))
    result = capture(image, tmp_path / "class.db")
    assert result.returncode == 0, result.stderr
    assert "frames=1 faces=0 " in result.stdout
    assert count_rows(tmp_path / "class.db", "frames") == 1


# Wrong database URLs.


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysqlish://user:secret@db/school", ("unknown database kind 'mysqlish'",)),
        ("postgresql+psycopg://user:secret@no-such-host.invalid/school", ("no-such-host.invalid",)),
        ("not a url", ("'not a url' is not a database URL",)),
    ],
    ids=["bad-scheme", "unknown-host", "not-a-url"],
)
def test_wrong_database_url_is_one_clear_line_without_the_password(
    tmp_path: Path, url: str, words: tuple[str, ...]
) -> None:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut())
    result = run_module("capture", "--source", str(image), "--db", url, "--session", "s")
    assert_one_clear_line(result, *words)
    assert "secret" not in result.stderr


# Hostile student names.


@pytest.fixture
def hostile_names(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    """A captured two-student session 'maths' whose students were renamed to SQL_NAME and SCRIPT_NAME by the CLI."""
    image = tmp_path / "gallery.png"
    cv2.imwrite(str(image), compose_gallery(lfw_faces(2, start=60), 2, 1, seed=3).image)
    db = tmp_path / "class.db"
    assert capture(image, db, "maths").returncode == 0
    for key, name in (("tile-1", SQL_NAME), ("tile-2", SCRIPT_NAME)):
        result = run_module("db", "students", "rename", "--db", f"sqlite:///{db}", "--session", "maths", key, name)
        assert result.returncode == 0, result.stderr
    engine = upgrade(f"sqlite:///{db}")
    yield db, engine
    engine.dispose()


def test_hostile_names_read_by_ocr_lose_their_markup_and_the_database_is_intact(tmp_path: Path, needs_tool) -> None:
    needs_tool("tesseract")
    names = [SCRIPT_NAME, SQL_NAME]
    image = tmp_path / "gallery.png"
    cv2.imwrite(str(image), compose_gallery(lfw_faces(2, start=60), 2, 1, seed=3, names=names).image)
    db = tmp_path / "class.db"
    result = capture(image, db, "maths")
    assert result.returncode == 0, result.stderr
    read = dict(sqlite_rows(db, "SELECT key, display_name FROM students"))
    # Name cleaning keeps letters, digits and a name's own punctuation; brackets and semicolons go.
    assert read["tile-2"].startswith("Robert"), read
    assert not any(set(name) & set("<>();") for name in read.values()), read
    assert count_rows(db, "observations") == 2


def test_hostile_names_are_stored_verbatim_and_the_database_is_intact(hostile_names: tuple[Path, Engine]) -> None:
    db, _ = hostile_names
    tables = {name for (name,) in sqlite_rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    names = dict(sqlite_rows(db, "SELECT key, display_name FROM students"))
    assert {"sessions", "students", "frames", "observations", "users"} <= tables
    assert names == {"tile-1": SQL_NAME, "tile-2": SCRIPT_NAME}
    assert count_rows(db, "observations") == 2
    rows = export(db, db.with_suffix(".csv"), "maths")
    assert {row["name"] for row in rows} == {SQL_NAME, SCRIPT_NAME}


def hostile_strings(tree: object, key: str = "") -> Iterator[tuple[str, str]]:
    """(property name, value) of every string in a serialised response that holds a hostile name."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            yield from hostile_strings(value, name)
    elif isinstance(tree, list):
        for item in tree:
            yield from hostile_strings(item, key)
    elif isinstance(tree, str) and (SQL_NAME in tree or SCRIPT_NAME in tree):
        yield key, tree


# Props through which a browser would run or load text instead of showing it.
HTML_PROPS = {"srcDoc", "href", "src", "dangerously_allow_html"}


def assert_shown_as_text(tree: object) -> None:
    """Each hostile name is shown as the text of an HTML component, and nowhere as HTML, a link or a source.

    Text children are set by React as text nodes; a figure's axis labels (the names appear as `y` of charts)
    are drawn by Plotly as SVG text, where a <script> tag is never run.
    """
    for node in walk(tree):
        assert node["type"] != "Markdown" and not node["props"].get("dangerously_allow_html"), node["type"]
    found = list(hostile_strings(tree))
    shown = {value for key, value in found if key == "children"}
    assert shown >= {SQL_NAME, SCRIPT_NAME}, found
    assert not [key for key, _ in found if key in HTML_PROPS], found


def live_tick(client: FlaskClient, app: Dash, session: dict[str, object]) -> dict[str, object]:
    """The live page's refresh callback for `session`, whatever outputs it has (read from the app's callback map)."""
    key, spec = next((key, spec) for key, spec in app.callback_map.items() if f"{ids.STUDENT_GRID}.children" in key)
    outputs = [tuple(name.rsplit(".", 1)) for name in key.strip(".").split("...")]
    values = {ids.LIVE_INTERVAL: 1, ids.LIVE_WINDOW: WHOLE_SESSION, ids.LIVE_SESSION: session}
    inputs = [(item["id"], item["property"], values.get(item["id"])) for item in spec["inputs"]]
    state = [(item["id"], item["property"], values.get(item["id"])) for item in spec["state"]]
    return dash_call(client, outputs, inputs, state)


def test_dashboard_shows_hostile_names_as_plain_text(hostile_names: tuple[Path, Engine]) -> None:
    _, engine = hostile_names
    app = create_app(engine)
    client = signed_in_client(app, engine)
    # The page shell is the same for every path: no name is written into HTML on the server.
    shell = client.get(f"/report/{quote('maths')}").get_data(as_text=True)
    assert "alert(1)" not in shell and "DROP TABLE" not in shell
    report = page(client, "/report/maths")
    assert_shown_as_text(report)
    # Chart labels, which Plotly would read as markup, carry the names escaped.
    heatmap = next(node["props"]["figure"] for node in walk(report) if node["props"].get("id") == ids.REPORT_HEATMAP)
    assert set(heatmap["data"][0]["y"]) == {html.escape(SQL_NAME), html.escape(SCRIPT_NAME)}
    live_page = page(client, "/live/maths")
    session = next(node["props"]["data"] for node in walk(live_page) if node["props"].get("id") == ids.LIVE_SESSION)
    assert_shown_as_text(live_tick(client, app, session))


def assert_argument_refused(result: subprocess.CompletedProcess[str], option: str) -> None:
    """Exit code 2, argparse's usage and one error line naming `option`, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "error: argument" in last and option in last, result.stderr


# The bad inputs of issue 12 (item 11), through every command that takes them.

NOT_UTF8 = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: what a shell in another locale passes on


@pytest.mark.parametrize(
    "command",
    [
        ("capture", "--source", "nowhere.png", "--session", NOT_UTF8),
        ("capture", "--source", "nowhere.png", "--teacher", NOT_UTF8),
        ("db", "purge", "--session", NOT_UTF8),
        ("db", "students", "rename", "--session", NOT_UTF8, "tile-1", "Ada"),
        ("db", "students", "rename", "--session", "maths", "tile-1", NOT_UTF8),
        ("db", "students", "rename", "--session", "maths", NOT_UTF8, "Ada"),
        ("db", "students", "merge", "--session", "maths", "tile-1", NOT_UTF8),
        ("analytics", "export", "--session", NOT_UTF8, "--out", "rows.csv"),
        ("analytics", "report", "--session", NOT_UTF8, "--out", "report"),
    ],
    ids=lambda command: " ".join(part.encode("utf-8", "backslashreplace").decode() for part in command[:3]),
)
def test_a_name_that_is_not_utf8_is_refused_with_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    result = run_module(*command, "--db", url)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not valid UTF-8 text" in last and "caf\\xe9" in last, result.stderr


def test_a_password_on_stdin_that_is_not_utf8_is_refused_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "dashboard", "users", "add", "carol", "--role", "teacher", "--password-stdin"]
        + ["--db", url],
        cwd=REPO,
        input=b"correct horse caf\xe9 battery\n",
        capture_output=True,
        timeout=120,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert stderr.splitlines() == ["python -m dashboard users: error: the password is not valid UTF-8 text"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("bin_seconds = 100000000000000000000", ("score.bin_seconds", "at most 86400")),
        ("bin_seconds = 1e20", ("score.bin_seconds", "an integer")),
        ("absent_seconds = nan", ("flags.absent_seconds", "finite")),
        ("eyes_closed_seconds = inf", ("flags.eyes_closed_seconds", "finite")),
        ("max_yaw_degrees = 1e300", ("score.max_yaw_degrees", "at most 90")),
        ("present = 1e300", ("score.weights.present", "at most 1000")),
    ],
    ids=["huge-int", "huge-float", "nan", "inf", "huge-angle", "huge-weight"],
)
def test_an_absurd_or_non_finite_setting_is_one_clear_line_naming_its_key(
    tmp_path: Path, line: str, words: tuple[str, ...]
) -> None:
    key = line.split(" ", 1)[0]
    default = (REPO / "config" / "classpulse.toml").read_text()
    config = tmp_path / "engagement.toml"
    config.write_text("\n".join(line if row.startswith(f"{key} =") else row for row in default.splitlines()))
    result = run_module(
        "analytics", "report", "--session", "maths", "--out", str(tmp_path / "report"), "--config", str(config)
    )
    assert_one_clear_line(result, *words)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://teacher@127.0.0.1:1/school?password=s3cret-in-query",
        "postgresql://teacher:s3cret-in-userinfo@127.0.0.1:1/school",
        "postgresql://teacher:s3cret-in-userinfo@127.0.0.1:notaport/school?password=s3cret-in-query",
        "sqlite:///{a_file}/x.db?password=s3cret-in-query",  # a folder that cannot be made: a file is in the way
    ],
    ids=["query", "userinfo", "unparsable", "sqlite"],
)
@pytest.mark.parametrize(
    "command",
    [
        ("capture", "--source", "{image}", "--session", "s"),
        ("db", "purge", "--session", "s"),
        ("analytics", "export", "--session", "s", "--out", "rows.csv"),
        ("dashboard", "users", "list"),
        ("dashboard", "--port", "1"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_password_in_a_database_url_is_never_printed(tmp_path: Path, url: str, command: tuple[str, ...]) -> None:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut())
    url = url.replace("{a_file}", str(image))
    result = run_module(*(part.replace("{image}", str(image)) for part in command), "--db", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert len(library_lines(result.stderr)) == 1, result.stderr


def test_alembic_with_a_garbage_url_is_one_line_without_a_traceback() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("alembic")), "-c", "db/alembic.ini", "-x", "db=garbage", "upgrade", "head"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and "'garbage' is not a database URL" in result.stderr
