"""Reading participants' names off gallery tiles with Tesseract: cleaning, real OCR on drawn galleries, caching."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

import config
from capture.detect import make_detector
from capture.grid import find_tile_grid
from capture.names import NameReader, clean_name
from capture.pipeline import FramePipeline
from tests.conftest import require_tool
from tests.galleries import PARTICIPANT_NAMES, LabelStyle, compose_gallery, lfw_faces

# Names with the punctuation real names have, and the decorations video calls add to them.
NAMES = [
    "Ada Lovelace",
    "Sean O'Brien",
    "Anne-Marie Dubois",
    "Martin King Jr.",
    "Zoe Chen (she/her)",
    "Li Wei",
    "Priya Natarajan (2)",
    "Jose Garcia",
    "Mary-Kate O'Neil",
    "D'Andre Jackson",
    "Kim Nguyen",
    "St. John Rivers",
]
EXPECTED = [*PARTICIPANT_NAMES, "St. John Rivers"]
CAMERA_OFF = {2, 7}
MUTED = {0, 5}
STYLES = {
    "simplex": LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.5),
    "duplex-small": LabelStyle(cv2.FONT_HERSHEY_DUPLEX, 0.45),
    "duplex-large": LabelStyle(cv2.FONT_HERSHEY_DUPLEX, 0.8),
    "triplex": LabelStyle(cv2.FONT_HERSHEY_TRIPLEX, 0.5),
    "complex": LabelStyle(cv2.FONT_HERSHEY_COMPLEX, 0.5),
    "bold": LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2),
}


@pytest.fixture(autouse=True)
def tesseract() -> None:
    require_tool("tesseract")


def gallery(names: list[str], seed: int = 0, label: LabelStyle = STYLES["simplex"], cols: int = 4, rows: int = 3):
    faces = lfw_faces(len(names) - len(CAMERA_OFF))
    return compose_gallery(faces, cols, rows, seed=seed, camera_off=CAMERA_OFF, names=names, label=label, muted=MUTED)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Tom Smith (he/him)", "Tom Smith"),
        ("Ngozi Okafor (2)", "Ngozi Okafor"),
        ("Kim Lee (she/her) (2)", "Kim Lee"),
        ("Sam Ortiz [Guest]", "Sam Ortiz"),
        ("Sam Ortiz she/her", "Sam Ortiz"),
        ("Sam Ortiz hehim 2.", "Sam Ortiz"),
        ("Sean O’Brien", "Sean O'Brien"),
        ("Anne—Marie Dubois", "Anne-Marie Dubois"),
        ("Aisha Al--Farsi", "Aisha Al-Farsi"),
        ("& Ada Lovelace", "Ada Lovelace"),
        ("| Li Wei |", "Li Wei"),
        ("“Zoe Chen”", "Zoe Chen"),
        ("Martin Luther King Jr.", "Martin Luther King Jr."),
        ("Martin King dr.", "Martin King Jr."),
        ("  Priya   Natarajan  ", "Priya Natarajan"),
        # Cut short by the app, however the ellipsis was read; an abbreviation's full stop is no ellipsis.
        ("Donna Norkeliun...", "Donna Norkeliun…"),
        ("Donna Norkeliun…", "Donna Norkeliun…"),
        ("Donna Norkeliun.", "Donna Norkeliun…"),
        ("Tammy Stevens-...", "Tammy Stevens…"),
        ("Thinh (James) T...", "Thinh James T…"),
        ("Thinh James T.", "Thinh James T."),
        # Student numbers stay; Tesseract's spaces between the syllables of a Korean name go.
        ("김 선 경(20200756)", "김선경 20200756"),
        ("20200759 양 예지", "20200759 양예지"),
        ("Kim Lee 20200756", "Kim Lee 20200756"),
        ("", ""),
    ],
)
def test_clean_name_drops_call_decorations_and_keeps_name_punctuation(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize("style", STYLES, ids=list(STYLES))
@pytest.mark.parametrize("seed", [0, 1])
def test_names_in_several_fonts_and_sizes_are_read_exactly(style: str, seed: int) -> None:
    drawn = gallery(NAMES, seed=seed, label=STYLES[style])
    tiles = find_tile_grid(drawn.image)
    assert tiles == drawn.tiles
    assert NameReader().read(drawn.image, tiles) == EXPECTED


def test_a_schools_names_settings_reach_the_reader_through_the_pipeline(tmp_path: Path) -> None:
    drawn = gallery(NAMES)
    detector = make_detector("blazeface")
    default = FramePipeline(detector, None, settings=config.load().capture).names
    assert default.read(drawn.image, drawn.tiles) == EXPECTED
    # A school whose names have at least 30 letters: no line on these tiles is one, and Tesseract is not run.
    school = tmp_path / "school.toml"
    school.write_text("[capture.names]\nmin_glyphs = 30\n")
    reader = FramePipeline(detector, None, settings=config.load(school).capture).names
    assert reader.read(drawn.image, drawn.tiles) == [""] * len(NAMES)
    assert reader.tesseract_calls == 0


def test_tiles_without_a_label_have_no_name() -> None:
    drawn = compose_gallery(lfw_faces(6), 3, 2)
    assert NameReader().read(drawn.image, drawn.tiles) == [""] * 6


def test_tesseract_runs_only_when_a_tile_or_its_label_changes() -> None:
    reader = NameReader()
    first = gallery(NAMES)
    for _ in range(3):
        assert reader.read(first.image, first.tiles) == EXPECTED
    assert reader.tesseract_calls == 1
    # Same grid, names moved to other tiles (the tile boxes do not change): the labels changed, so read again.
    moved = NAMES[1:] + NAMES[:1]
    shuffled = gallery(moved, seed=3)
    assert shuffled.tiles == first.tiles
    # (Compared with a fresh reader's result: this test is about when Tesseract runs, not how well it reads.)
    reread = reader.read(shuffled.image, shuffled.tiles)
    assert reread == NameReader().read(shuffled.image, shuffled.tiles)
    assert sum(a == b for a, b in zip(reread, EXPECTED[1:] + EXPECTED[:1], strict=True)) >= len(NAMES) - 1
    assert reader.tesseract_calls == 2
    # A new layout (a student joined: 13 tiles, 5 per row): every tile is new.
    joined = gallery([*NAMES, "Olga Petrova"], cols=5, rows=3)
    names = reader.read(joined.image, joined.tiles)
    assert names == NameReader().read(joined.image, joined.tiles)
    assert names[-1] == "Olga Petrova"
    assert reader.tesseract_calls == 3
    assert reader.read(joined.image, joined.tiles) == names
    assert reader.tesseract_calls == 3


def test_a_longer_name_that_starts_the_same_is_read_again() -> None:
    reader = NameReader()
    first = gallery(NAMES)
    reader.read(first.image, first.tiles)
    longer = gallery([*NAMES[:5], "Li Weissman", *NAMES[6:]])
    names = reader.read(longer.image, longer.tiles)
    assert names[5] == "Li Weissman"
    assert names[:5] + names[6:] == EXPECTED[:5] + EXPECTED[6:]
    assert reader.tesseract_calls == 2


# Where apps put names (tests/galleries.py draws each), with how many of 9 must be read exactly: names are
# found by what text looks like, not by a box. White letters straight on the picture read less well than
# on a plain fill (measured: 7-8 of 9 on Meet's small ones, 8-9 on Nextcloud Talk's large ones).
APP_STYLES = {
    "meet-over-video": (LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.55, place="over-video"), 6, 7),
    "nextcloud-bottom-centre": (LabelStyle(cv2.FONT_HERSHEY_DUPLEX, 0.9, place="bottom-centre"), 6, 8),
    "bigbluebutton-title-bar": (LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.5, place="title-bar"), 40, 9),
}


@pytest.mark.parametrize("style", APP_STYLES, ids=list(APP_STYLES))
def test_names_where_each_app_puts_them_are_read(style: str) -> None:
    label, gap, exact = APP_STYLES[style]
    names = [name for name in NAMES if "(" not in name][:9]
    drawn = compose_gallery(lfw_faces(9), 3, 3, gap=gap, names=names, label=label, seed=2)
    read = NameReader().read(drawn.image, drawn.tiles)
    assert sum(got == clean_name(name) for got, name in zip(read, names, strict=True)) >= exact, read


def test_names_in_the_middle_of_camera_off_tiles_are_read() -> None:
    names = [name for name in NAMES if "(" not in name][:6]
    drawn = compose_gallery(
        lfw_faces(2), 3, 2, size=(1280, 720), names=names, label=LabelStyle(place="none"), camera_off={0, 2, 3, 5}
    )
    read = NameReader().read(drawn.image, drawn.tiles)
    assert [read[i] for i in (0, 2, 3, 5)] == [names[i] for i in (0, 2, 3, 5)]
    assert read[1] == read[4] == ""


def test_a_name_above_marks_on_a_patterned_shirt_is_read() -> None:
    """Teams draws its label a little above the tile's bottom; below it a checked shirt's light marks line up
    like two letters over the video. The lowest line that looks like a name (on a plain label) is the name."""
    names = [name for name in NAMES if "(" not in name][:6]
    drawn = compose_gallery(lfw_faces(6), 3, 2)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.55
    for tile, name in zip(drawn.tiles, names, strict=True):
        view = drawn.image[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w]
        shirt = view[-16:]
        shirt[:] = (40, 60, 90)
        shirt[:, ::6] = (100, 110, 120)  # the checks: darker than any letter
        for x in (150, 180):  # two light buttons side by side
            shirt[3:13, x : x + 8] = (235, 235, 235)
        (width, height), _ = cv2.getTextSize(name, font, scale, 1)
        top = tile.h - 16 - height - 16
        view[top : top + height + 12, 6 : 6 + width + 12] = (30, 30, 30)
        cv2.putText(view, name, (12, top + height + 5), font, scale, (245, 245, 245), 1, cv2.LINE_AA)
    read = NameReader().read(drawn.image, drawn.tiles)
    assert sum(got == clean_name(name) for got, name in zip(read, names, strict=True)) >= 5, read
