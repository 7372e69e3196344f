"""Property-based tests (Hypothesis) of the parsers and the tile-grid finder: whatever they are given, they answer
or refuse with their own error, never another exception.

test_grid checks exact tiles on well-formed layouts; here the layouts go to the edges (no gap, 100 tiles,
frames from thumbnail to 4K size) where the only promise is "the composed tiles, or no gallery at all".
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from capture.errors import CaptureError
from capture.grid import find_tile_grid
from capture.sources import FrameSource, open_source
from model.data import USAGES, FerData, FerDataError, load_fer2013
from tests.galleries import compose_gallery, lfw_faces
from tests.test_grid import assert_same_tiles
from vocabulary.emotions import FACE_SIZE

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)

# Source specs: free text, and text shaped like the spec forms with numbers of any size and sign.
numbers = st.integers(-(2**70), 2**70).map(str)
specs = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda kind, fields, separator: f"{kind}:{separator.join(fields)}",
        st.sampled_from(["screen", "webcam", "Screen", "cam", "file", "webcam "]),
        st.lists(st.one_of(numbers, st.text(max_size=3)), max_size=5),
        st.sampled_from([",", ", ", ":", ""]),
    ),
    st.sampled_from(["screen", "webcam", "screen:", "webcam:", ".", "/", "..", "x/" * 200]),
)


@PROPERTY_SETTINGS
@given(spec=specs, fps=st.one_of(st.just(1.0), st.floats()))
# Found by this test, each once a traceback: a name too long for the file system, a webcam index beyond
# OpenCV's int, and a frame spacing of 1/fps seconds beyond what a timedelta holds.
@example(spec="a" * 300, fps=1.0)
@example(spec="webcam:99999999999999999999", fps=1.0)
@example(spec=".", fps=1e-124)
def test_any_source_spec_opens_or_raises_capture_error(spec: str, fps: float) -> None:
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as empty:
        # No display and an empty working folder, so "screen" and relative paths cannot find anything real.
        patch.delenv("DISPLAY", raising=False)
        patch.chdir(empty)
        try:
            source = open_source(spec, fps)
        except CaptureError as error:
            assert str(error)
        else:
            assert isinstance(source, FrameSource)
            source.close()


# FER2013 CSV rows: mostly valid, with one field spoiled in one of many ways.
# Pixel values in range, out of range, beyond a 32-bit integer, and not numbers at all.
pixel_token = st.one_of(
    st.integers(0, 255).map(str),
    st.integers(-300, 600).map(str),
    st.integers(min_value=2**31).map(str),
    st.text(max_size=4),
)
printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@st.composite
def fer_rows(draw: st.DrawFn) -> tuple[str, str, str]:
    pixels = [str(value) for value in draw(st.lists(st.integers(0, 255), min_size=1, max_size=3))]
    pixels = (pixels * FACE_SIZE * FACE_SIZE)[: FACE_SIZE * FACE_SIZE]
    spoil = draw(st.sampled_from(["none", "label", "pixel", "length", "usage"]))
    label = draw(st.integers(-2, 9).map(str) | printable) if spoil == "label" else str(draw(st.integers(0, 6)))
    if spoil == "pixel":
        pixels[draw(st.integers(0, len(pixels) - 1))] = draw(pixel_token)
    if spoil == "length":
        pixels = pixels[: draw(st.integers(0, len(pixels) - 1))] or draw(st.lists(pixel_token, max_size=3))
    usage = draw(st.sampled_from([*USAGES, "training", "", "Test"]) | printable) if spoil == "usage" else "Training"
    return label, " ".join(pixels), usage


@PROPERTY_SETTINGS
@given(
    header=st.sampled_from([("emotion", "pixels", "Usage"), ("Usage", "pixels", "emotion"), ("emotion", "pixels")]),
    rows=st.lists(fer_rows(), max_size=4),
    tail=st.sampled_from(["", "\n", "0,1 2\n", '"unclosed\n', "\x00\n", "1\n"]),
)
# Found by this test: a pixel value beyond a 32-bit integer raised OverflowError.
@example(header=("emotion", "pixels", "Usage"), rows=[("0", " ".join(["2147483648"] * 2304), "Training")], tail="")
def test_any_fer_csv_loads_or_raises_fer_data_error(header: tuple[str, ...], rows: list, tail: str) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        fields = dict(zip(("emotion", "pixels", "Usage"), row, strict=True))
        writer.writerow([fields[column] for column in header])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fer.csv"
        path.write_text(text.getvalue() + tail, encoding="utf-8")
        try:
            data = load_fer2013(path, usages=USAGES)
        except FerDataError as error:
            assert str(path) in str(error)
            return
    assert isinstance(data, FerData)
    assert data.images.shape == (len(data), FACE_SIZE, FACE_SIZE) and data.images.dtype == np.uint8
    assert set(data.labels.tolist()) <= set(range(7)) and set(data.usage.tolist()) <= set(USAGES)


@st.composite
def galleries(draw: st.DrawFn) -> tuple[int, int, int, int, tuple[int, int], set[int]]:
    cols = draw(st.integers(1, 10))
    rows = draw(st.integers(1 if cols > 1 else 2, 10))
    count = draw(st.integers(max(2, (rows - 1) * cols + 1), rows * cols))
    gap = draw(st.integers(0, 24))
    size = (draw(st.integers(160, 3840)), draw(st.integers(90, 2160)))
    # The composer needs room for a face and its faded border in each tile.
    tile_w = min((size[0] - (cols + 1) * gap) / cols, (size[1] - (rows + 1) * gap) / rows * 16 / 9)
    assume(tile_w >= 24)
    camera_off = draw(st.sets(st.integers(0, count - 1)))
    return cols, rows, count, gap, size, camera_off


@PROPERTY_SETTINGS
@given(galleries())
def test_any_gallery_gives_its_own_tiles_or_none(layout: tuple[int, int, int, int, tuple[int, int], set[int]]) -> None:
    cols, rows, count, gap, size, camera_off = layout
    faces = lfw_faces(count - len(camera_off))
    gallery = compose_gallery(faces, cols, rows, size=size, gap=gap, seed=count, camera_off=camera_off)
    found = find_tile_grid(gallery.image)
    if found is not None:
        assert_same_tiles(found, gallery.tiles)


@PROPERTY_SETTINGS
@given(
    shape=st.tuples(st.integers(0, 64), st.integers(0, 64), st.sampled_from([None, 1, 3, 4])),
    seed=st.integers(0, 2**32 - 1),
    dark=st.booleans(),
)
@example(shape=(0, 0, None), seed=0, dark=True)  # found by this test: an empty image raised IndexError
def test_any_array_gives_tiles_none_or_capture_error(shape: tuple[int, int, int | None], seed: int, dark: bool) -> None:
    height, width, channels = shape
    rng = np.random.default_rng(seed)
    image = rng.integers(
        0, 40 if dark else 256, size=(height, width) + ((channels,) if channels else ()), dtype=np.uint8
    )
    try:
        found = find_tile_grid(image)
    except CaptureError as error:
        assert "uint8 BGR" in str(error)
        return
    assert found is None or all(tile.w > 0 and tile.h > 0 for tile in found)
