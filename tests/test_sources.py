"""Frame sources: folders, images, videos and the X screen give the right frames, and bad input one clear error."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from capture.errors import CaptureError
from capture.sources import Pacer, natural_sort_key, open_source
from capture.windows import Window, shown_windows
from tests.cli import assert_one_clear_line, run_module, sqlite_rows
from tests.screen import ScreenError, showing_fullscreen, x_window

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SCREEN_SIZE = (1080, 1920)


def solid_image(level: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    return np.full((*size, 3), level, np.uint8)


def write_png(path: Path, level: int) -> None:
    assert cv2.imwrite(str(path), solid_image(level))


def levels(frames: list) -> list[int]:
    return [round(float(frame.image.mean())) for frame in frames]


# --- folders and images ---------------------------------------------------------------------------


def test_folder_gives_images_in_natural_order_spaced_by_fps(tmp_path: Path) -> None:
    for name, level in [("10.png", 100), ("2.png", 20), ("1.png", 10)]:
        write_png(tmp_path / name, level)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "0.png", 255)

    with open_source(str(tmp_path), fps=2.0, start=START) as source:
        frames = list(source)

    assert levels(frames) == [10, 20, 100]
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert [frame.timestamp for frame in frames] == [
        START,
        START + timedelta(seconds=0.5),
        START + timedelta(seconds=1),
    ]
    assert source.skipped_frames == 0
    assert not source.is_live
    assert source.total_frames == 3  # the progress bar's total: images only


def test_natural_sort_orders_numbers_by_value() -> None:
    names = ["img10.png", "IMG2.png", "img1.png", "a.png"]
    assert sorted(names, key=natural_sort_key) == ["a.png", "img1.png", "IMG2.png", "img10.png"]


def test_corrupt_image_in_folder_is_skipped_and_counted(tmp_path: Path) -> None:
    write_png(tmp_path / "1.png", 10)
    (tmp_path / "2.png").write_bytes(b"this is not a png")
    write_png(tmp_path / "3.png", 30)

    with open_source(str(tmp_path), fps=1.0, start=START) as source:
        frames = list(source)

    assert levels(frames) == [10, 30]
    assert [frame.index for frame in frames] == [0, 1]
    # The skipped image keeps its place in time, so the third file is still stamped 2 s in.
    assert [frame.timestamp for frame in frames] == [START, START + timedelta(seconds=2)]
    assert source.skipped_frames == 1


def test_file_names_that_are_not_utf8_are_read_and_a_file_that_vanished_is_skipped_and_counted(
    tmp_path: Path,
) -> None:
    # Names copied from a Windows or Latin-1 system: OpenCV's own file functions crashed on them (SIGSEGV).
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/cla\xdfe"))
    folder.mkdir()
    for index, name in enumerate([b"1.png", b"2-\xe9t\xe9.png", b"3.png", b"4-\xff.png"]):
        # Written by Python: OpenCV's imwrite crashes on such a name as its imread did.
        Path(os.fsdecode(os.fsencode(folder) + b"/" + name)).write_bytes(
            cv2.imencode(".png", solid_image(10 * (index + 1)))[1]
        )
    source = open_source(str(folder), fps=1.0, start=START)
    assert source.description == f"folder {tmp_path}/cla\\xdfe (4 images)"
    (folder / "3.png").unlink()  # gone between listing the folder and reading it
    with source:
        frames = list(source)
    assert levels(frames) == [10, 20, 40] and source.skipped_frames == 1


def test_a_folder_with_a_file_name_that_is_not_utf8_is_captured_and_the_session_closed(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    astronaut = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    for name in (b"1.png", b"2-\xe9.png", b"3.png"):
        assert cv2.imwrite(str(folder / "scratch.png"), astronaut)
        os.rename(folder / "scratch.png", os.fsencode(folder) + b"/" + name)
    url = f"sqlite:///{tmp_path / 'class.db'}"
    result = run_module("capture", "--source", str(folder), "--db", url, "--session", "s", "--attention-only")
    assert result.returncode == 0, result.stderr
    assert "frames=3 faces=3 " in result.stdout
    assert sqlite_rows(tmp_path / "class.db", "SELECT count(*), ended_at IS NOT NULL FROM sessions") == [(1, 1)]


def test_single_image_is_one_exact_frame(tmp_path: Path) -> None:
    astronaut = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut)

    with open_source(str(path), start=START) as source:
        frames = list(source)

    assert len(frames) == 1 and source.total_frames == 1
    assert frames[0].index == 0 and frames[0].timestamp == START
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == astronaut.shape
    assert np.array_equal(frames[0].image, astronaut)


def test_default_start_is_now_in_utc(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", 50)
    before = datetime.now(UTC)
    with open_source(str(tmp_path / "a.png")) as source:
        timestamp = next(source).timestamp
    assert timestamp.utcoffset() == timedelta(0)
    assert before <= timestamp <= datetime.now(UTC)


# --- videos ---------------------------------------------------------------------------------------

VIDEO_FPS = 5
VIDEO_LEVELS = [10 + 24 * i for i in range(10)]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 10-frame MJPG video at 5 fps whose frame i is a flat grey of VIDEO_LEVELS[i]."""
    path = tmp_path / "lesson.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), VIDEO_FPS, (320, 240))
    assert writer.isOpened()
    for level in VIDEO_LEVELS:
        writer.write(solid_image(level, (240, 320)))
    writer.release()
    return path


def test_video_frames_are_stamped_with_their_position(video: Path) -> None:
    with open_source(str(video), start=START) as source:
        frames = list(source)

    assert [frame.index for frame in frames] == list(range(10))
    offsets = [(frame.timestamp - START).total_seconds() for frame in frames]
    assert offsets == pytest.approx([i / VIDEO_FPS for i in range(10)], abs=1e-3)
    assert levels(frames) == pytest.approx(VIDEO_LEVELS, abs=3)  # JPEG is lossy
    assert frames[0].image.shape == (240, 320, 3)
    assert source.skipped_frames == 0
    assert source.total_frames == 10


def test_video_frame_that_fails_to_decode_is_skipped_and_counted(video: Path) -> None:
    content = bytearray(video.read_bytes())
    jpeg_starts = [i for i in range(len(content)) if content.startswith(b"\xff\xd8\xff", i)]
    assert len(jpeg_starts) == 10
    start, end = jpeg_starts[4], jpeg_starts[5]
    content[start : start + (end - start) // 2] = bytes((end - start) // 2)  # wipe frame 4's JPEG data
    video.write_bytes(content)

    with open_source(str(video), start=START) as source:
        frames = list(source)

    assert source.skipped_frames == 1
    assert [frame.index for frame in frames] == list(range(9))
    offsets = [(frame.timestamp - START).total_seconds() for frame in frames]
    assert offsets == pytest.approx([i / VIDEO_FPS for i in range(10) if i != 4], abs=1e-3)
    assert levels(frames) == pytest.approx([level for i, level in enumerate(VIDEO_LEVELS) if i != 4], abs=3)


# --- bad input ------------------------------------------------------------------------------------


def make_missing(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-lesson.mp4")


def make_corrupt_image(tmp_path: Path) -> str:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    return str(path)


def make_garbage_video(tmp_path: Path) -> str:
    path = tmp_path / "garbage.avi"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return str(path)


def make_frameless_video(tmp_path: Path) -> str:
    """A real video cut off right before its first frame: it opens, but has nothing to read."""
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), VIDEO_FPS, (320, 240))
    for level in VIDEO_LEVELS:
        writer.write(solid_image(level, (240, 320)))
    writer.release()
    content = path.read_bytes()
    path.write_bytes(content[: content.index(b"\xff\xd8\xff")])
    return str(path)


def make_folder_without_images(tmp_path: Path) -> str:
    (tmp_path / "readme.txt").write_text("no pictures here")
    return str(tmp_path)


def make_folder_of_corrupt_images(tmp_path: Path) -> str:
    for name in ("1.jpg", "2.jpg"):
        (tmp_path / name).write_bytes(b"not a jpeg")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("make_spec", "expected"),
    [
        (make_missing, r"no such file or folder: .*no-such-lesson\.mp4"),
        (make_corrupt_image, r"cannot read image .*broken\.png"),
        (make_garbage_video, r"cannot open .*garbage\.avi as a video"),
        (make_frameless_video, r"video .*cut\.avi has no readable frames"),
        (make_folder_without_images, r"folder .* has no images"),
        (make_folder_of_corrupt_images, r"none of the 2 images in folder .* can be read"),
        (lambda _: "camera:1", r"unknown source 'camera:1'"),
        (lambda _: "screen:left", r"unknown source 'screen:left'"),
        (lambda _: "", r"unknown source ''"),
    ],
)
def test_bad_source_raises_one_clear_capture_error(tmp_path: Path, make_spec, expected: str) -> None:
    with pytest.raises(CaptureError, match=expected) as raised:
        open_source(make_spec(tmp_path))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("fps", [0.0, -1.0, float("nan"), float("inf")])
def test_fps_must_be_positive(tmp_path: Path, fps: float) -> None:
    write_png(tmp_path / "1.png", 10)
    with pytest.raises(CaptureError, match="fps must be a positive number"):
        open_source(str(tmp_path), fps=fps)


def test_webcam_that_cannot_be_opened(tmp_path: Path) -> None:
    if Path("/dev/video9").exists():
        pytest.skip("this machine has a /dev/video9")
    with pytest.raises(CaptureError, match="webcam 9 cannot be opened"):
        open_source("webcam:9")


# --- pacing ---------------------------------------------------------------------------------------


class FakeClock:
    """A clock that moves only when the code under test sleeps or the test says time passed."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_waits_for_each_tick_and_a_late_caller_skips_ticks_without_drift() -> None:
    clock = FakeClock()
    pacer = Pacer(fps=2.0, clock=clock, sleep=clock.sleep)
    ticks = []
    for work_seconds in [0.1, 0.1, 1.3, 0.1]:
        pacer.wait()
        ticks.append(clock.now)
        clock.now += work_seconds

    # Ticks every 0.5 s from 100.0; the 1.3 s of work at 101.0 ends at 102.3, past the ticks at 101.5 and
    # 102.0: the next frame is taken at once, and the one after lands back on the grid at 102.5.
    assert ticks == pytest.approx([100.0, 100.5, 101.0, 102.3])
    pacer.wait()
    assert clock.now == pytest.approx(102.5)
    assert clock.sleeps == pytest.approx([0.4, 0.4, 0.1])


# --- the X screen ---------------------------------------------------------------------------------


def gallery_image() -> np.ndarray:
    """A 1920x1080 video-call gallery: 3x3 tiles, each a coloured background with a face and a name."""
    face = cv2.cvtColor(skimage_data.astronaut()[0:220, 140:330], cv2.COLOR_RGB2BGR)
    image = np.zeros((*SCREEN_SIZE, 3), np.uint8)
    tile_h, tile_w = SCREEN_SIZE[0] // 3, SCREEN_SIZE[1] // 3
    rng = np.random.default_rng(7)
    for row in range(3):
        for col in range(3):
            y, x = row * tile_h, col * tile_w
            tile = image[y : y + tile_h, x : x + tile_w]
            tile[:] = rng.integers(30, 200, 3)
            tile[40 : 40 + 220, 225 : 225 + 190] = face
            cv2.putText(
                tile, f"Student {row * 3 + col + 1}", (20, 340), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2
            )
    return image


@pytest.fixture(scope="module")
def shown_gallery(xvfb_display: str, needs_tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[np.ndarray]:
    """gallery_image() shown full-screen by feh on the virtual screen, once it is really there."""
    needs_tool("feh")
    try:
        with showing_fullscreen(gallery_image(), tmp_path_factory.mktemp("gallery")) as image:
            yield image
    except ScreenError as error:
        pytest.fail(str(error))


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("spec", ["screen", "screen:1"])
def test_screen_grab_matches_the_shown_image(shown_gallery: np.ndarray, spec: str) -> None:
    with open_source(spec, fps=20.0, start=START) as source:
        frames = [next(source) for _ in range(3)]

    assert source.is_live and source.total_frames is None
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert frames[0].timestamp >= START
    assert frames[0].timestamp < frames[1].timestamp < frames[2].timestamp
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.flags.c_contiguous
        assert mean_abs_difference(frame.image, shown_gallery) < 1.0


@pytest.mark.parametrize(("x", "y"), [(0, 0), (700, 500)])
def test_screen_region_grab_matches_that_part_of_the_image(shown_gallery: np.ndarray, x: int, y: int) -> None:
    with open_source(f"screen:{x},{y},640,360") as source:
        image = next(source).image

    assert mean_abs_difference(image, shown_gallery[y : y + 360, x : x + 640]) < 1.0


def test_monitor_that_does_not_exist_names_the_monitor_count(xvfb_display: str) -> None:
    with pytest.raises(CaptureError, match=f"there is no monitor 5: display {xvfb_display} has 1 monitor "):
        open_source("screen:5")


def test_region_outside_the_screen_is_refused(xvfb_display: str) -> None:
    with pytest.raises(CaptureError, match=r"region 1900,0,640,360 is not inside the screen .*1920x1080"):
        open_source("screen:1900,0,640,360")


def test_screen_without_display_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(CaptureError, match="no display: DISPLAY is not set"):
        open_source("screen")
    with pytest.raises(CaptureError, match="no display: DISPLAY is not set"):
        open_source("window:zoom")


def test_screen_on_a_display_nobody_serves_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":999")
    with pytest.raises(CaptureError, match="cannot capture display :999"):
        open_source("screen")


# --- a window, by its title ------------------------------------------------------------------------

ZOOM_BLUE = 0x2060C0


def shows(image: np.ndarray, rgb: int) -> bool:
    return bool((image == [rgb & 0xFF, (rgb >> 8) & 0xFF, rgb >> 16]).all())


def test_a_window_is_listed_with_its_title_and_place_and_followed_as_it_moves_or_hides(xvfb_display: str) -> None:
    with (
        x_window("Zoom Meeting", 100, 50, 320, 180, ZOOM_BLUE) as zoom,
        x_window("Notes", 600, 400, 200, 100, 0x10A010),
    ):
        listed = {window.title: window for window in shown_windows()}
        assert listed["Zoom Meeting"] == Window(zoom.id, "Zoom Meeting", 100, 50, 320, 180)
        assert listed["Notes"].width == 200
        # Words of the title in any case; follow_seconds=0: its place is read again before every frame.
        with open_source("window:zoom MEETING", fps=50.0, follow_seconds=0) as source:
            first = next(source).image
            assert first.shape == (180, 320, 3) and shows(first, ZOOM_BLUE)
            assert source.description.startswith(f"window 'Zoom Meeting' ({zoom.id:#x}) on display ")
            zoom.move(700, 500, 400, 240)
            moved = next(source).image
            assert moved.shape == (240, 400, 3) and shows(moved, ZOOM_BLUE)
            zoom.move(1800, 1000)  # only its top-left 120×80 is on the screen
            assert next(source).image.shape == (80, 120, 3)
            # Hidden (minimised), it gives no frame, counted as skipped, until it is shown again.
            zoom.move(40, 30)
            zoom.hide()
            threading.Timer(0.3, zoom.show).start()
            again = next(source).image
            assert again.shape == (240, 400, 3) and shows(again, ZOOM_BLUE) and source.skipped_frames > 0
        with open_source(f"window-id:{zoom.id:#x}", fps=50.0) as source:
            assert shows(next(source).image, ZOOM_BLUE)
    with pytest.raises(CaptureError, match=f"there is no window {zoom.id:#x}"):
        open_source(f"window-id:{zoom.id}")
    with pytest.raises(CaptureError, match="there is no window 0x174876e7ff"):
        open_source("window-id:99999999999")


def test_a_closed_window_ends_the_capture_with_one_line(xvfb_display: str) -> None:
    with x_window("Zoom Meeting", 100, 50, 320, 180, ZOOM_BLUE) as zoom:
        source = open_source("window:zoom", fps=50.0, follow_seconds=0)
        next(source)
    with pytest.raises(CaptureError, match=r"window 'Zoom Meeting' .* the window was closed"):
        next(source)
    source.close()
    assert zoom.id


def test_capture_window_names_the_windows_when_no_or_several_titles_match(xvfb_display: str) -> None:
    with x_window("Zoom Meeting", 0, 0, 320, 180, ZOOM_BLUE), x_window("Zoom Workplace", 400, 0, 320, 180, 0x10A010):
        several = run_module("capture", "--window", "zoom", "--db", "sqlite:///:memory:", timeout=120)
        assert_one_clear_line(several, "2 windows' titles contain 'zoom': ", "'Zoom Meeting'", "'Zoom Workplace'")
        with pytest.raises(
            CaptureError, match=r"no window's title contains 'teams'; the windows shown now: .*'Zoom Meeting'"
        ):
            open_source("window:teams")
