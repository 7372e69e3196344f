"""Gallery tile finding on composed Zoom-like galleries and on pictures that are not galleries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import config
from capture.errors import CaptureError
from capture.grid import find_tile_grid
from tests.galleries import astronaut, compose_gallery, degraded, grace_hopper, lfw_faces
from vocabulary.records import Box

TOLERANCE_PX = 2
CODEC_TOLERANCE_PX = 4


def assert_same_tiles(found: list[Box] | None, expected: list[Box], tolerance: int = TOLERANCE_PX) -> None:
    assert found is not None, "no gallery found"
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        deltas = np.abs(np.array([got.x, got.y, got.w, got.h]) - [want.x, want.y, want.w, want.h])
        assert deltas.max() <= tolerance, f"tile {got} differs from {want}"


@pytest.mark.parametrize(
    ("cols", "rows", "faces", "camera_off"),
    [
        (2, 1, 2, set()),
        (2, 2, 3, {1}),
        (3, 3, 9, set()),
        (5, 5, 20, {3, 21}),  # 22 tiles: the last row holds 2, centred
        (7, 7, 40, set(range(40, 49))),
    ],
)
def test_finds_every_tile_in_reading_order(cols: int, rows: int, faces: int, camera_off: set[int]) -> None:
    gallery = compose_gallery(lfw_faces(faces), cols, rows, camera_off=camera_off)
    assert_same_tiles(find_tile_grid(gallery.image), gallery.tiles)


def test_partial_last_row_is_centred_and_last() -> None:
    gallery = compose_gallery(lfw_faces(7), 3, 3)
    tiles = find_tile_grid(gallery.image)
    assert tiles is not None and len(tiles) == 7
    last = tiles[-1]
    assert last.y > tiles[0].y and abs(last.center[0] - gallery.image.shape[1] / 2) <= TOLERANCE_PX


def test_all_camera_off_gallery_is_still_a_gallery() -> None:
    gallery = compose_gallery([], 4, 3, camera_off=set(range(12)))
    assert_same_tiles(find_tile_grid(gallery.image), gallery.tiles)


def test_photos_are_not_galleries() -> None:
    assert find_tile_grid(astronaut()) is None
    hopper = grace_hopper()
    if hopper is not None:
        assert find_tile_grid(hopper) is None


def test_a_schools_grid_settings_decide_what_is_a_gallery(tmp_path: Path) -> None:
    gallery = compose_gallery(lfw_faces(9), 3, 3)
    assert_same_tiles(find_tile_grid(gallery.image, config.load().capture.grid), gallery.tiles)
    # A background brighter than the school's limit (the composed one is grey 12): no gallery of gaps.
    school = tmp_path / "school.toml"
    school.write_text("[capture.grid]\nmax_background_level = 10\n")
    assert find_tile_grid(gallery.image, config.load(school).capture.grid) is None


def test_blank_frame_is_not_a_gallery() -> None:
    assert find_tile_grid(np.zeros((1080, 1920, 3), np.uint8)) is None


def test_single_picture_on_black_is_not_a_gallery() -> None:
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[40:552, 60:572] = astronaut()
    assert find_tile_grid(frame) is None


def test_grey_image_is_accepted() -> None:
    gallery = compose_gallery(lfw_faces(4), 2, 2)
    grey = gallery.image[..., 1].copy()
    assert_same_tiles(find_tile_grid(grey), gallery.tiles)


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)])
def test_bad_image_is_refused_clearly(bad: np.ndarray) -> None:
    with pytest.raises(CaptureError, match="uint8 BGR"):
        find_tile_grid(bad)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, int, int, int, tuple[int, int], set[int]]:
    cols = draw(st.integers(1, 8))
    rows = draw(st.integers(1 if cols > 1 else 2, 6))
    count = draw(st.integers(max(2, (rows - 1) * cols + 1), rows * cols))
    gap = draw(st.integers(1, 16))
    size = draw(st.sampled_from([(1920, 1080), (1280, 720), (1600, 900), (1366, 768)]))
    camera_off = draw(st.sets(st.integers(0, count - 1)))
    return cols, rows, count, gap, size, camera_off


@settings(max_examples=25, deadline=None)
@given(layouts())
def test_property_any_layout_gives_exact_tiles(layout: tuple[int, int, int, int, tuple[int, int], set[int]]) -> None:
    cols, rows, count, gap, size, camera_off = layout
    faces = lfw_faces(count - len(camera_off))
    gallery = compose_gallery(faces, cols, rows, size=size, gap=gap, seed=count, camera_off=camera_off)
    assert_same_tiles(find_tile_grid(gallery.image), gallery.tiles)


@settings(max_examples=15, deadline=None)
@given(layouts(), st.integers(4, 16), st.integers(50, 95))
def test_property_a_gallery_through_a_lossy_codec_keeps_its_tiles(
    layout: tuple[int, int, int, int, tuple[int, int], set[int]], gap: int, quality: int
) -> None:
    # A recording or a JPEG screenshot: the codec's ringing reaches into the gaps beside every tile and
    # blurs each tile's edge over half a codec block.
    cols, rows, count, _, size, camera_off = layout
    faces = lfw_faces(count - len(camera_off))
    drawn = compose_gallery(faces, cols, rows, size=size, gap=gap, seed=count, camera_off=camera_off)
    gallery = degraded(drawn, quality)
    assert_same_tiles(find_tile_grid(gallery.image), gallery.tiles, CODEC_TOLERANCE_PX)


def test_a_schools_codec_tolerance_decides_whether_a_recordings_gaps_are_gaps(tmp_path: Path) -> None:
    gallery = degraded(compose_gallery(lfw_faces(9), 3, 3, gap=4), 50)
    school = tmp_path / "school.toml"
    school.write_text("[capture.grid]\ncodec_tolerance = 6\n")
    assert find_tile_grid(gallery.image, config.load(school).capture.grid) is None
