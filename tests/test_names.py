"""Reading participants' names off gallery tiles with Tesseract: cleaning, real OCR on drawn galleries, caching."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import config
from capture.detect import make_detector
from capture.grid import find_tile_grid
from capture.names import (
    DEFAULT,
    SEARCH_SCALE,
    NameReader,
    _binarised,
    _for_ocr,
    _label_regions,
    _line_in,
    _ocr_sheet,
    _spaced,
    _stretched,
    _unsure,
    _word_gaps,
    clean_name,
    find_label,
    ocr_labels,
    vote,
)
from capture.pipeline import FramePipeline
from tests.conftest import require_tool
from tests.galleries import (
    PARTICIPANT_NAMES,
    LabelStyle,
    compose_gallery,
    draw_label_with_icon,
    draw_name_on_video,
    lfw_faces,
)
from vocabulary.records import Box

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
        # An icon after the name read as a short lower-case word; lower-case names and particles stay.
        ("Emily Grant rm", "Emily Grant"),
        ("shishir", "shishir"),
        ("jo li", "jo li"),
        ("Charlotte de Crum", "Charlotte de Crum"),
        ("| Li Wei |", "Li Wei"),
        ("“Zoe Chen”", "Zoe Chen"),
        ("Martin Luther King Jr.", "Martin Luther King Jr."),
        ("Martin King dr.", "Martin King Jr."),
        # A small "l" read as "!" after a letter; elsewhere "!" is junk.
        ("Danie! Keller", "Daniel Keller"),
        ("Ada Lovelace !", "Ada Lovelace"),
        # A sans-serif capital I read as an l at the start of a capitalised name; lower-case names stay.
        ("lan Rebmann", "Ian Rebmann"),
        ("lvan de Groot", "Ivan de Groot"),
        ("lan rebmann", "lan rebmann"),
        ("Li la Rue", "Li la Rue"),
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


def noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """A frame of live video: the picture with fresh sensor noise, labels and all (a webcam's and a codec's)."""
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def test_sensor_noise_on_label_free_video_tiles_runs_no_tesseract() -> None:
    """Light marks in the video pass for text (find_label finds "labels" on some tiles) and flicker with the
    noise of live video: read once with the layout, they are not read again however they flicker."""
    drawn = compose_gallery(lfw_faces(40), 7, 7, camera_off=set(range(40, 49)))
    reader, rng = NameReader(), np.random.default_rng(0)
    first = reader.read(drawn.image, drawn.tiles)
    assert first[40:] == ["Student"] * 9  # camera-off tiles' "Student 41": a short number is a device's "(2)"
    assert reader.tesseract_calls == 1
    for _ in range(5):
        assert reader.read(noisy(drawn.image, rng), drawn.tiles) == first
    assert reader.tesseract_calls == 1


def test_a_rename_under_noisy_video_is_read_in_the_frame_it_shows() -> None:
    names = [name for name in NAMES if "(" not in name][:9]
    style = APP_STYLES["meet-over-video"][0]
    drawn = compose_gallery(lfw_faces(9), 3, 3, gap=6, names=names, label=style, seed=2)
    reader, rng = NameReader(), np.random.default_rng(1)
    first = reader.read(drawn.image, drawn.tiles)
    for _ in range(4):
        assert reader.read(noisy(drawn.image, rng), drawn.tiles) == first
    assert reader.tesseract_calls == 1
    renamed = compose_gallery(
        lfw_faces(9), 3, 3, gap=6, names=[*names[:4], "Olga Petrova", *names[5:]], label=style, seed=2
    )
    read = reader.read(noisy(renamed.image, rng), renamed.tiles)
    assert read[4] == "Olga Petrova" and read[:4] + read[5:] == first[:4] + first[5:]
    assert reader.tesseract_calls == 2


def test_a_name_that_appears_on_a_tile_is_read_once_it_stayed() -> None:
    settings = DEFAULT.model_copy(update={"no_label_recheck_frames": 1, "confirm_frames": 3})
    bare, labelled = compose_gallery(lfw_faces(len(NAMES)), 4, 3), gallery(NAMES)
    reader, rng = NameReader(settings=settings), np.random.default_rng(2)
    tiles = labelled.tiles
    assert bare.tiles == tiles
    before = reader.read(bare.image, tiles)
    calls = reader.tesseract_calls
    # Seen twice, the names are not read yet (the video's own marks come and go so); the third time they are.
    for _ in range(2):
        assert reader.read(noisy(labelled.image, rng), tiles) == before
    assert reader.tesseract_calls == calls
    assert reader.read(noisy(labelled.image, rng), tiles) == EXPECTED
    assert reader.tesseract_calls == calls + 1


def test_a_label_that_changed_but_read_the_same_is_not_read_again_for_reread_frames() -> None:
    """A label redrawn (here in another font) that reads as the name it had: the change was not the name's,
    so the tile waits reread_frames before its label is read again."""
    settings = DEFAULT.model_copy(update={"reread_frames": 2})
    reader = NameReader(settings=settings)
    assert reader.read(gallery(NAMES).image, gallery(NAMES).tiles) == EXPECTED
    redrawn = gallery(NAMES, label=STYLES["triplex"])
    assert reader.read(redrawn.image, redrawn.tiles) == EXPECTED
    assert reader.tesseract_calls == 2
    again = gallery(NAMES, label=STYLES["duplex-large"])
    assert reader.read(again.image, again.tiles) == EXPECTED
    assert reader.tesseract_calls == 2
    assert reader.read(again.image, again.tiles) == EXPECTED
    assert reader.tesseract_calls == 3


def test_a_named_label_is_read_again_in_turns_though_it_looks_unchanged() -> None:
    """A first reading Tesseract got wrong would otherwise be kept the whole lesson (the label's pixels never
    change): every named label is read again reread_named_frames after its last reading, the tiles taking turns
    in batches 10 frames apart, and a reading of the same name changes nothing."""
    reader = NameReader(settings=DEFAULT.model_copy(update={"reread_named_frames": 20}))
    drawn = gallery(NAMES)
    read_in = []
    for frame in range(1, 61):
        calls = reader.tesseract_calls
        assert reader.read(drawn.image, drawn.tiles) == EXPECTED
        if reader.tesseract_calls > calls:
            read_in.append(frame)
    # Read on first sight; then half the tiles at frame 30 (20 frames after it, in their turn), the other half at
    # 40, and each half again 20 frames after its last reading.
    assert read_in == [1, 30, 40, 50, 60]
    never = NameReader(settings=DEFAULT.model_copy(update={"reread_named_frames": 0}))
    for _ in range(60):
        never.read(drawn.image, drawn.tiles)
    assert never.tesseract_calls == 1


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


def test_white_letters_over_a_lit_wall_are_read_by_the_otsu_second_reading() -> None:
    """White letters with a thin dark shadow over a lit wall (grey 145-175) have little ink: the first reading,
    of that ink, is unsure, so the label is read again; split by Otsu's threshold, its grey levels are the
    letters alone, that reading is exact, and it wins the vote."""
    image = np.full((270, 480, 3), 60, np.uint8)
    image[150:] = (160 + np.linspace(-15, 15, 480))[None, :, None].astype(np.uint8)
    draw_name_on_video(image, "Maryam Khalifah", LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.8, place="over-video"))
    label = find_label(image, Box(0, 0, 480, 270))
    assert label is not None
    height = DEFAULT.ocr_text_height
    ((first, confidence),) = _ocr_sheet([_for_ocr(label.pixels, height)], "eng", height)
    assert confidence < DEFAULT.second_reading_confidence, first
    ((otsu, _),) = _ocr_sheet([_for_ocr(_binarised(label), height)], "eng", height)
    assert clean_name(otsu) == "Maryam Khalifah"
    assert clean_name(ocr_labels([label])[0]) == "Maryam Khalifah"
    # The stretched cut maps the wall (the label's median grey) to black and the letters to white.
    stretched = _stretched(label)
    assert np.median(stretched) == 0 and stretched.max() == 255


def test_letters_smaller_than_a_glyph_are_found_enlarged() -> None:
    """Lower-case names 4 px high (LiveKit's) are below min_text_height at the frame's own size: no region
    of the tile shows a line there, and the search at SEARCH_SCALE finds each name where it is drawn."""
    names = ["noa", "ceren", "suzanne", "marco", "owen", "emma"]
    style = LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.25)
    drawn = compose_gallery(lfw_faces(6), 3, 2, size=(960, 540), names=names, label=style)
    for tile, name in zip(drawn.tiles, names, strict=True):
        regions = _label_regions(tile, drawn.image.shape, drawn.tiles, DEFAULT)
        assert all(_line_in(drawn.image, region, pick, 5, DEFAULT) is None for region, pick in regions), name
        label = find_label(drawn.image, tile, drawn.tiles)
        assert label is not None, name
        (width, height), _ = cv2.getTextSize(name, style.font, style.scale, style.thickness)
        # tests/galleries.py draws the text 4 + its half height from the tile's left, above the bottom edge.
        left = tile.x + 4 + max(3, height // 2)
        assert label.box.x <= left and label.box.x + label.box.w >= left + width - 1, (name, label.box)
        assert tile.y + tile.h - 3 * height <= label.box.y < tile.y + tile.h, (name, label.box)
    assert SEARCH_SCALE > 1


@pytest.mark.parametrize("scale", [0.5, 0.7])
@pytest.mark.parametrize("name", ["Ada Lovelace", "Li Wei", "Kim Nguyen"])
def test_an_icon_drawn_before_a_name_is_no_part_of_it(name: str, scale: float) -> None:
    """A solid person icon in the text's colour, taller than the letters (BigBlueButton, LiveKit), left of
    the name: it is left out of the label, so it neither splits the name into two lines nor is read as a
    letter."""
    image = np.full((270, 480, 3), 110, np.uint8)
    icon_right = draw_label_with_icon(image, name, LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, scale), (200, 200, 200))
    label = find_label(image, Box(0, 0, 480, 270))
    assert label is not None and label.box.x >= icon_right - 3, label
    assert NameReader().read(image, [Box(0, 0, 480, 270)]) == [name]


def test_word_spaces_are_told_from_letter_gaps_and_widened() -> None:
    # Glyphs (x, y, w, h) 6 px high: letters 1-2 px apart, one gap of 5 px between two words.
    line = [(0, 0, 4, 6), (5, 0, 4, 6), (11, 0, 2, 6), (18, 0, 4, 6), (23, 0, 4, 6)]
    assert _word_gaps(line) == [(13, 18)]
    # Evenly spaced letters (one word), and two letters, have no word space.
    assert _word_gaps([(x, 0, 4, 6) for x in range(0, 30, 6)]) == []
    assert _word_gaps([(0, 0, 4, 6), (9, 0, 4, 6)]) == []
    # A 5 px space in a cut twice the box's size becomes a space as wide as the line is high (6 px).
    cut = np.full((12, 40), 200, np.uint8)
    spaced = _spaced(cut, 20, [(15.5, 5.0)], 6.0, 0)
    assert spaced.shape == (12, 42)
    assert (spaced[:, 31:33] == 0).all() and (spaced[:, :31] == 200).all() and (spaced[:, 33:] == 200).all()


def test_a_sure_reading_that_the_label_contradicts_is_read_again() -> None:
    """Tesseract runs short words together at high confidence ("NhiLe" at 89 on a real Meet screen) and reads a
    small "M" as "vi" ("viarjon Barton" at 85): when the label's glyphs show more words than were read, or the
    reading starts lower case and goes on capitalised, the label is read again in the other cuts however sure
    the first reading was, and the vote gives the words back."""
    image = np.full((270, 480, 3), 60, np.uint8)
    draw_name_on_video(image, "Nhi Le", LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.5, place="over-video"))
    label = find_label(image, Box(0, 0, 480, 270))
    assert label is not None and label.words == 2
    assert _unsure(("NhiLe", 99.0), label, DEFAULT)
    assert _unsure(("nhi Le", 99.0), label, DEFAULT)
    assert not _unsure(("Nhi Le", 99.0), label, DEFAULT)
    # Particles and lower-case names are no contradiction; an unsure word is read again as before.
    assert not _unsure(("Nhi de Le", 99.0), label, DEFAULT)
    assert not _unsure(("nhi le", 99.0), label, DEFAULT)
    assert _unsure(("Nhi Le", DEFAULT.second_reading_confidence - 1), label, DEFAULT)
    # A school that turned the second reading off gets none.
    assert not _unsure(("NhiLe", 0.0), label, DEFAULT.model_copy(update={"second_reading_confidence": 0.0}))
    assert clean_name(ocr_labels([label])[0]) == "Nhi Le"


def test_readings_vote_for_the_name_most_of_them_agree_on() -> None:
    # Two readings agree, once with an icon's edge read as a bar: together surer than one sure reading.
    assert vote([("ThiLe", 92.0), ("Thi Le", 63.0), ("| Thi Le", 40.0)]) == "Thi Le"
    # One sure reading outweighs two unsure ones that disagree with it and with each other.
    assert vote([("Ada Lovelace", 95.0), ("Ado Lovelace", 10.0), ("Adu Lovelace", 10.0)]) == "Ada Lovelace"
    # A reading at confidence 0 (a word Tesseract gave up on) still counts.
    assert vote([("Li Wei", 0.0), ("Li We", 0.0), ("Li Wei", 0.0)]) == "Li Wei"
    # Four cuts agreeing, unsure of some word of a long name, outweigh one cut's surer wrong reading.
    readings = [("Mary-Kate O'Neil", 0.0), ("Mary-Kate O'Neil", 30.0), ("Mary-Kate O'Neil", 5.0)]
    assert vote([*readings, ("Mary-Kote O'Neil", 74.0), ("Mary-Kate O'Neil", 18.0)]) == "Mary-Kate O'Neil"
    # Spaces aside, three readings agree on the letters; one of them kept the small word space the others lost.
    assert vote([("ThiLe", 90.0), ("ThiLe", 85.0), ("Thi Le", 10.0), ("Thi Lo", 60.0)]) == "Thi Le"
