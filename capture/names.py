"""Reads each gallery tile's participant name, wherever its app puts it.

Apps draw names in many ways: white on a dark box in the bottom-left corner (Zoom, Teams' rounded pill,
LiveKit's small label with a microphone), straight on the video (Meet; Nextcloud Talk, large and centred),
in a grey title bar above the tile (BigBlueButton), large in the middle of a camera-off tile. So a name is
found by what text looks like, not by one app's box: light marks that stand out from their surroundings
at the scale of a stroke (a top-hat), connected into glyphs of like height side by side on one baseline,
along the tile's bottom edge, across its middle, along its top edge or in a bar just above it (see
find_label for which line wins). Icons drawn in the text's colour at a label's end are left out (see
_icons_among). Where nothing is found, the edges are searched again enlarged, for text too small to make
glyphs at its own size (BigBlueButton's title bars, LiveKit's lower-case names). Only the letters' own
pixels go to Tesseract, evenly dark on white, so the video around them adds nothing (in a second reading
with each word space widened to a letter's height: Tesseract runs small words together, "ThiLe").

Tesseract is slow (a process per call), so a tile's label is read only when it is new: each frame, a tile
read before is checked by one small crop where its text was (its grey levels, its "fingerprint", must not
have changed by more than sensor noise: see CHANGE_SHARE); only new tiles, and tiles whose label changed,
are searched again, and those whose text is new go to Tesseract, all of them stacked into one call (49
labels: about 0.6 s here). Marks in live video that pass for text are kept from costing a call every few
frames (see NameReader.read and _confirmed): a label appearing on a tile seen before must stay, and a tile
whose change read as the same name is held a while. Labels this
call reads with low confidence (small text, white letters crossing a light part of the picture), or surely
but against what the label shows (words run together), are read again in four other cuts, all in one more
call, and the five readings vote (see ocr_labels).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytesseract

from capture.errors import CaptureError
from config import NameSettings
from vocabulary.records import Box

# The thresholds a school may tune are the configuration's [capture.names] (config/classpulse.toml says why
# each has its value); these are the search's and the reading's own workings.
DEFAULT = NameSettings()
# A band searched for a name (names.label_band, ...) is at least this many pixels high.
MIN_BAND = 12
# Icons are strongly coloured (max - min channel at least this); white text and grey labels are not.
ICON_SATURATION = 80
ICON_GROW = 3
ICON_MAX_SHARE = 0.3
# An icon drawn in the text's colour at a label's end (see _icons_among): at least ICON_GAP of its height
# from the letters within ICON_REACH of its heights, ICON_HEIGHT times as tall as the tallest of them or
# taller, as wide as ICON_ASPECT of its height, and filling at least ICON_FILL of its box.
ICON_REACH = 3.0
ICON_GAP = 0.3
ICON_HEIGHT = 1.2
ICON_ASPECT = (0.6, 1.6)
ICON_FILL = 0.45
# Name text is light: at least TEXT_MIN grey, and brighter than its surroundings at the scale of a stroke
# kernel (the tile's height / STROKE_DIVISOR, MIN_KERNEL to MAX_KERNEL pixels: wider than any stroke) by
# INK_SHARE of the room above them, at least INK_FLOOR and at most INK_MIN grey levels.
TEXT_MIN = 130
INK_MIN = 60
INK_FLOOR = 30
INK_SHARE = 0.6
STROKE_DIVISOR = 16
MIN_KERNEL = 5
MAX_KERNEL = 15
# A glyph (a connected mark) is names.min_text_height pixels high or more, at most MAX_GLYPH_SHARE of the
# band's height, and at most MAX_GLYPH_ASPECT times as wide as high (small letters touch once anti-aliased).
MAX_GLYPH_SHARE = 0.8
MAX_GLYPH_ASPECT = 6
# Glyphs of one line overlap in height by LINE_OVERLAP of the smaller one and are at most WORD_GAP line
# heights apart (MIN_WORD_GAP pixels on tiny text): a word space, or an icon removed between name parts.
LINE_OVERLAP = 0.5
MAX_HEIGHT_RATIO = 1.8
WORD_GAP = 2.5
MIN_WORD_GAP = 4
# A line of text: names.min_glyphs glyphs or more, ON_BASELINE of them ending within BASELINE_SPREAD line
# heights of the median bottom, none lower than MIN_HEIGHT_RATIO of the tallest (an x-height against a capital).
ON_BASELINE = 0.6
BASELINE_SPREAD = 0.2
MIN_HEIGHT_RATIO = 0.35
# A line stands on a plain background when the grey levels between its glyphs span at most PLAIN_RANGE
# between these percentiles (a label over video darkens it, so it varies a little); a line over the video
# has at least MIN_GLYPHS_OVER_VIDEO glyphs.
PLAIN_PERCENTILES = (10, 90)
PLAIN_RANGE = 40
MIN_GLYPHS_OVER_VIDEO = 3
# MARGIN pixels are kept around the text. Its ink is scaled so that this percentile of it is full white.
MARGIN = 3
# Small text is enlarged at most this many times before its letters are cut out (see _text_pixels).
MAX_UPSCALE = 6.0
# Where no name is found at the frame's own size, a tile's label regions are searched again this many times
# enlarged (see find_label): 4 px letters become 12 px, above names.min_text_height.
SEARCH_SCALE = 3
INK_FULL_PERCENTILE = 95
# A second reading reads the text this many times larger (see _other_cuts), and stretches grey levels up to
# this percentile (see _stretched). In the vote, each reading counts VOTE_BASE + its confidence (see vote): on
# the 141 labels of ../shared/galleries 10-25 read 95 exactly, 1 (confidence alone) 95, 50 and more 94.
LARGER_READING = 1.6
STRETCH_PERCENTILE = 99
VOTE_BASE = 25.0
# A gap between a line's marks is a word space when it is WORD_SPACE times their median gap or wider and at
# least WORD_SPACE_SHARE of the line's height (letters 1-2 px apart, words 4-5 px, in 12 px labels).
WORD_SPACE = 2.5
WORD_SPACE_SHARE = 0.4
# Labels are stacked into one image for a single Tesseract call, this many text heights
# (names.ocr_text_height) apart.
STACK_GAP = 1.0
# A label's pixel has changed (names.fingerprint_change) when its grey level moved by CHANGE_SHARE of the
# label's own contrast (its letters' median grey level minus their background's) and it is light (above the
# level halfway between them) before or after: a letter drawn or wiped, not sensor noise (live video adds a
# few grey levels each frame, labels stand out by 30 or more) nor the video changing in the dark around the
# letters. Beyond the text (where a longer name shows more letters) changed light pixels are counted.
CHANGE_SHARE = 0.5
# Named labels are read again (settings.reread_named_frames) in batches this many frames apart: one Tesseract
# call (a process start, ~30 ms) for several labels rather than one for each.
REREAD_BATCH_FRAMES = 10
# A label is read again too when its text box changed size by more than this many pixels.
SIZE_CHANGE = 2
# Readings of this many letters or fewer that start lower case are marks in the video read as text, no name
# (see names_someone): "a", "yd", "ai" on label-free tiles, where real names start with a capital ("Li").
MAX_LOWER_JUNK = 2
# Such marks move with the picture; a name that appears where they were covers this many times their area
# or more (two glyphs at the least against a whole name).
JUNK_GROWTH = 2
# A block of lines (the stacked labels); no dictionary: names are not English words.
TESSERACT_CONFIG = "--psm 6 -c load_system_dawg=0 -c load_freq_dawg=0"

# Tesseract's OpenMP threads spin against each other on a busy laptop: one thread reads a stack of labels
# 2-4 times faster here (49 labels: 1.8 s instead of 4.4-7.6 s on 2 loaded cores).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# A student number ("(20200756)", four digits or more) is no decoration: it tells two students of one name
# apart. It is kept as a word of its own: "김선경(20200756)" and "김선경 (20200756" are "김선경 20200756".
_NUMBER_IN_BRACKETS = re.compile(r"\s*[\(\[](\d{4,})[\)\]]?")
# Video-call decorations of a name: "(2)" for a second device, pronouns, "(Host)", "(Guest)".
_SUFFIX = re.compile(r"\s*[\(\[][^)\]]*[\)\]]?\s*$")
# ... the same with their brackets lost: "she/her", "hehim", a bare "2" (no name ends in a short number).
_PRONOUNS = re.compile(r"(?i)\s+(he|she|they|xe|ze)\s*/?\s*(him|her|hers|them|theirs|they|he|she)\W*$")
_TRAILING_NUMBER = re.compile(r"\s+\W*\d{1,3}\W*$")
# What may stand at either end of a name; inside it, only letters, marks, digits, space and .'-
_EDGE_JUNK = re.compile(r"^[\W_]+|([^\w.]|_)+$")
_INSIDE_JUNK = re.compile(r"[^\w\s.'\-]")
# A hyphen or apostrophe read twice ("Al--Farsi").
_REPEATED = re.compile(r"([-'.])\1+")
# Small print "Jr." comes back as "dr." (the J's hook is a few pixels); a lower-case "dr." never ends a name.
_LAST_WORD_FIXES = {"dr.": "Jr.", "jr.": "Jr.", "sr.": "Sr."}
# An app cuts a long name short with an ellipsis ("Christopher Colq…"); such names end in ELLIPSIS once
# cleaned. Read as "…", as two or more full stops, or (small) as one full stop after a long lower-case word.
ELLIPSIS = "…"
_ELLIPSIS = re.compile(r"(\s*(…|\.{2,}))+$")
_READ_AS_STOP = re.compile(r"\w{3,}[a-z]\.")
# Tesseract's Korean model reads a space between the syllables of a name ("이 희 래"); names have none.
_HANGUL_GAP = re.compile(r"(?<=[\uac00-\ud7a3]) (?=[\uac00-\ud7a3])")
# Tesseract reads a small "l" after letters as "!" ("Danie! Keller", at 96); no name has one.
_L_READ_AS_BANG = re.compile(r"(?<=[^\W\d_])!")
# Tesseract reads plain apostrophes and hyphens as their typographic cousins; a bar is an icon edge.
_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "`": "'", "—": "-", "–": "-", "‐": "-", "|": " "})


# A connected light mark: x, y, w, h in its region's pixels.
Glyph = tuple[int, int, int, int]


@dataclass(frozen=True)
class Label:
    """A tile's name text, cut out of the frame: its ink and its place in the frame."""

    pixels: np.ndarray  # uint8 ink (light text = high) of the text's bounding box with a small margin, nothing else
    box: Box  # of `pixels`, in frame pixels
    right: int  # frame x up to which a longer name that starts the same would show more letters
    fingerprint: np.ndarray  # int16 grey levels of the frame from the box's left to `right`, over its rows
    level: float  # grey level halfway between the letters' and their background's (see _contrast)
    contrast: float  # the letters' median grey level minus their background's
    grey: np.ndarray  # the box's grey levels as the frame shows them, enlarged as `enlarged` (for a second reading)
    enlarged: np.ndarray  # `pixels` cut out of the box enlarged towards names.ocr_text_height (see _text_pixels)
    words: int  # words its glyphs' gaps show (see _word_gaps): a reading with fewer ran two together


@dataclass
class _Read:
    label: Label
    name: str
    # The frame before which the tile is not read again (see NameReader.read).
    held_until: int = 0
    read_at: int = 0  # the frame Tesseract read it in


def check_languages(languages: str) -> None:
    """Refuses, in one line, Tesseract languages ("eng+kor") whose data is not installed."""
    wanted = [name for name in languages.split("+") if name]
    try:
        installed = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError) as error:
        raise CaptureError(f"cannot read names with Tesseract: {error}") from None
    missing = [name for name in wanted if name not in installed]
    if not wanted or missing:
        raise CaptureError(
            f"Tesseract has no language {'+'.join(missing) or repr(languages)}; installed: "
            f"{', '.join(sorted(installed - {'osd'}))} (scripts/setup.sh installs the tesseract-ocr-* packs)"
        )


@dataclass
class NameReader:
    """Names per tile for a stream of frames; re-reads a tile only when its box or label changed.

    languages: Tesseract's, joined by "+" ("eng+kor+hin"); settings: the configuration's [capture.names].
    """

    tesseract_calls: int = 0
    languages: str = "eng"
    settings: NameSettings = DEFAULT
    _cache: dict[Box, _Read] = field(default_factory=dict)
    # Tiles that showed no label, with the frame at which to look again.
    _unlabelled: dict[Box, int] = field(default_factory=dict)
    # Tiles read before as no name, with the label found since and in how many frames running it was found.
    _candidates: dict[Box, tuple[Label, int]] = field(default_factory=dict)
    _frame: int = 0

    def read(self, image: np.ndarray, tiles: list[Box]) -> list[str]:
        """One name per tile, "" where a tile shows no readable name. image: H x W x 3 BGR uint8."""
        self._frame += 1
        settings = self.settings
        # A cached label still showing the same text costs one small crop; only the others are searched, and a
        # tile read as no name is searched again in turn like one without a label: its "label" may be marks in
        # the video, unchanged, while a name appears elsewhere on the tile.
        labels = [
            cached.label
            if (cached := self._cache.get(tile))
            and _unchanged(image, cached.label, settings)
            and (names_someone(cached.name) or self._unlabelled.get(tile, 0) > self._frame)
            else None
            for tile in tiles
        ]
        searched = [
            i
            for i, label in enumerate(labels)
            if label is None and (self._unlabelled.get(tiles[i], 0) <= self._frame or tiles[i] in self._candidates)
        ]
        due = []
        for i in searched:
            tile, cached = tiles[i], self._cache.get(tiles[i])
            # A tile seen before (read, or showing no label) is no new tile: what it shows now is a change.
            seen = self._unlabelled.pop(tile, None) is not None or tile in self._candidates
            label = labels[i] = find_label(image, tile, tiles, settings)
            if label is None:
                self._candidates.pop(tile, None)
                self._recheck_later(tiles, i)
            elif cached is not None and (
                _same_text(image, cached.label, label, settings.fingerprint_change)
                or (not names_someone(cached.name) and _in_place_of(cached.label, label))
            ):
                # The same text found again (the video around it changed), or marks read as no name moved
                # with the picture: a name appearing there would be wider, or elsewhere.
                cached.label = label
                if not names_someone(cached.name):
                    self._recheck_later(tiles, i)
            elif cached is None and not seen:
                due.append(i)  # a new tile: read in the frame it shows, as every tile of a new layout
            elif self._frame >= (cached.held_until if cached else 0) and self._confirmed(image, tile, label):
                due.append(i)
        due += self._rereads(image, tiles, labels, set(searched))
        if due:
            self.tesseract_calls += 1
            found = [label for i in due if (label := labels[i]) is not None]  # every tile due has a label
            texts = ocr_labels(found, self.languages, settings)
            for i, label, text in zip(due, found, texts, strict=True):
                name, cached = clean_name(text), self._cache.get(tiles[i])
                # A change that read as the name already there (or as no name again) was the video's, not the
                # label's: the tile is not read again for reread_frames.
                hold = cached is not None and (
                    cached.name == name or not (names_someone(cached.name) or names_someone(name))
                )
                held_until = self._frame + settings.reread_frames if hold else 0
                self._cache[tiles[i]] = _Read(label, name, held_until, self._frame)
                self._candidates.pop(tiles[i], None)
                if not names_someone(name):
                    self._recheck_later(tiles, i)
        # Tiles of earlier layouts are forgotten, so the cache stays one layout big.
        self._cache = {tile: self._cache[tile] for tile in tiles if tile in self._cache}
        self._unlabelled = {tile: self._unlabelled[tile] for tile in tiles if tile in self._unlabelled}
        self._candidates = {tile: self._candidates[tile] for tile in tiles if tile in self._candidates}
        return [self._cache[tile].name if tile in self._cache else "" for tile in tiles]

    def _rereads(
        self, image: np.ndarray, tiles: list[Box], labels: list[Label | None], searched: set[int]
    ) -> list[int]:
        """The named tiles whose turn it is to be read again (settings.reread_named_frames), their labels cut
        afresh from this frame into `labels`. Each reading is shown until the next, and the name vote
        (capture.students) counts frames: so a tile is read again no sooner than reread_named_frames after its
        last reading, in its turn (the tiles spread over batches), and every later reading is shown no longer
        than the first was."""
        every = self.settings.reread_named_frames
        batch = min(every, REREAD_BATCH_FRAMES)
        if not every or self._frame % batch:
            return []
        turns, turn = max(1, every // batch), self._frame // batch
        due = []
        for i, tile in enumerate(tiles):
            cached = self._cache.get(tile)
            if i in searched or labels[i] is None or cached is None or not names_someone(cached.name):
                continue
            if self._frame - cached.read_at < every or (turn + i) % turns:
                continue
            fresh = find_label(image, tile, tiles, self.settings)
            if fresh is not None:
                labels[i] = fresh
                due.append(i)
        return due

    def _recheck_later(self, tiles: list[Box], i: int) -> None:
        """Searching costs about a millisecond a tile: a tile without a name is looked at again every
        no_label_recheck_frames, the tiles spread over them."""
        recheck = self.settings.no_label_recheck_frames
        self._unlabelled[tiles[i]] = self._frame + recheck - i % recheck

    def _confirmed(self, image: np.ndarray, tile: Box, label: Label) -> bool:
        """Whether a changed label on a tile seen before is read: at once where the tile showed a name (a
        rename is read in the frame it shows), after confirm_frames frames running of the same text where it
        showed none or no label. Marks in the video that pass for text (a lamp, a shirt's pattern; read as "",
        "a", "yd") come and go as the video moves; a name that appears stays.
        """
        cached = self._cache.get(tile)
        if cached is not None and names_someone(cached.name):
            return True
        candidate = self._candidates.get(tile)
        same = candidate is not None and _same_text(image, candidate[0], label, self.settings.fingerprint_change)
        count = candidate[1] + 1 if candidate is not None and same else 1
        self._candidates[tile] = (label, count)
        return count >= self.settings.confirm_frames


def names_someone(name: str) -> bool:
    """Whether a reading is a name rather than marks in the video read as text: two letters or more, and
    capitalised (or in a script without case) unless longer than MAX_LOWER_JUNK letters ("a", "yd", "ai")."""
    letters = [c for c in name if c.isalpha()]
    return len(letters) >= 2 and (len(letters) > MAX_LOWER_JUNK or not letters[0].islower())


def find_label(
    image: np.ndarray, tile: Box, others: Sequence[Box] = (), settings: NameSettings = DEFAULT
) -> Label | None:
    """The tile's name (see the module docstring), None when it shows none.

    Searched along the tile's bottom edge, across its middle (a camera-off tile), along its top edge and in a
    title bar just above it, in that order. A line of text along the bottom edge is the name, on a label or
    over the video (Meet and Nextcloud Talk draw names so); elsewhere only a line on a plain background (a
    camera-off tile, a title bar) is: marks over video that line up are more often the video's own.
    others: the frame's other tiles; a title bar above the tile is no part of one (that is its label).
    settings: the configuration's [capture.names] (the bands searched, the glyphs a name has).
    """
    # Letters scale with the tile; the kernel must be wider than their strokes.
    kernel = int(np.clip(tile.h // STROKE_DIVISOR, MIN_KERNEL, MAX_KERNEL)) | 1
    regions = _label_regions(tile, image.shape, others, settings)
    for region, pick in regions:
        label = _line_in(image, region, pick, kernel, settings)
        if label is not None:
            return label
    # Text smaller than a glyph may be (BigBlueButton's 5 px title bars, LiveKit's 4 px lower-case names) is
    # looked for again enlarged, where nothing was found at the frame's own size: there its letters fall
    # below min_text_height or merge into blobs. Such small print is a label at a tile's edge, never a
    # camera-off tile's big centred name; a title bar outside the video, where nothing in the picture can
    # pass for text, is looked at first.
    for region, pick in sorted(regions, key=lambda found: found[1] != "bar"):
        if pick != "middle" and (label := _line_in(image, region, pick, kernel, settings, SEARCH_SCALE)) is not None:
            return label
    return None


def _label_regions(
    tile: Box, shape: tuple[int, ...], others: Sequence[Box], settings: NameSettings
) -> list[tuple[Box, str]]:
    """Where a tile's name may be, in the order searched, each with which of its lines is the name's:
    "lowest", "middle", "highest", or "bar" (the lowest, right above the tile)."""
    band = max(MIN_BAND, round(tile.h * settings.label_band))
    middle = round(tile.h * settings.centre_band)
    # A title bar lies in the gap above the tile, never in the tile above it (that one's label is there).
    top = max(
        [0, tile.y - max(MIN_BAND, round(tile.h * settings.above_band))]
        + [
            o.y + o.h
            for o in others
            if o != tile and o.y + o.h <= tile.y and _intersects(o, Box(tile.x, 0, tile.w, tile.y))
        ]
    )
    regions = [
        (Box(tile.x, tile.y + tile.h - band, tile.w, band), "lowest"),
        (Box(tile.x, tile.y + (tile.h - middle) // 2, tile.w, middle), "middle"),
        (Box(tile.x, tile.y, tile.w, band), "highest"),
        (Box(tile.x, top, tile.w, tile.y - top), "bar"),
    ]
    if any(_intersects(regions[-1][0], other) for other in others if other != tile) or tile.y - top < MIN_BAND:
        regions.pop()
    clipped = [(_clipped(box, shape), pick) for box, pick in regions]
    return [(box, pick) for box, pick in clipped if box.h >= MIN_BAND and box.w > 0]


def _intersects(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _text(colour: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey levels, ink and the letters' pixels of a BGR crop.

    Ink is how much brighter a pixel is than its surroundings at a scale wider than a letter's stroke (a
    white top-hat): letters over a dark label or over video stand out, the label and the video's broad
    shapes do not. Over a light background (a white shirt) a white letter has little room to stand out, so
    it needs INK_SHARE of that room, between INK_FLOOR and INK_MIN.
    """
    grey = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    around = cv2.morphologyEx(grey, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel)))
    ink = cv2.subtract(grey, around)
    needed = np.clip(INK_SHARE * (255 - around.astype(np.float32)), INK_FLOOR, INK_MIN)
    # A white glyph inside a coloured icon (Meet's and Zoom's red muted microphone) is no letter.
    mask = (ink >= needed) & (grey >= TEXT_MIN) & ~_icons(colour)
    return grey, ink, mask


def _line_in(
    image: np.ndarray, region: Box, pick: str, kernel: int, settings: NameSettings, scale: int = 1
) -> Label | None:
    """The name's line of glyph-like marks in one region of the frame, cut out for OCR.

    Lines are tried in the order `pick` gives (the lowest first along the bottom edge, ...); the first that
    may be a name is it: along the bottom edge a line on a plain background or of MIN_GLYPHS_OVER_VIDEO
    glyphs (a pattern on a shirt below a label is neither), elsewhere only one on a plain background.
    """
    view = image[region.y : region.y + region.h, region.x : region.x + region.w]
    if scale > 1:
        view = cv2.resize(view, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    grey, _, mask = _text(view, kernel * scale | 1)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    height, width = mask.shape
    # Text stands clear of the tile's sides; a strip of bright video around a label touches them.
    bottom_edge = height if pick in ("lowest", "bar") else height + 1
    top_edge = 0 if pick == "highest" else -1
    glyphs = [
        (int(x), int(y), int(w), int(h))
        for x, y, w, h, _ in stats[1:]
        if settings.min_text_height <= h <= height * MAX_GLYPH_SHARE
        and w <= MAX_GLYPH_ASPECT * h
        and x > 0
        and x + w < width
        and top_edge < y
        and y + h < bottom_edge
    ]
    areas = {(int(x), int(y), int(w), int(h)): int(area) for x, y, w, h, area in stats[1:]}
    icons = _icons_among(glyphs, areas)
    lines = [
        line
        for line in _lines([glyph for glyph in glyphs if glyph not in icons])
        if _is_text(line, settings.min_glyphs, scale > 1)
    ]
    if not lines:
        return None
    if pick in ("lowest", "bar"):
        order = sorted(lines, key=lambda line: -max(g[1] + g[3] for g in line))
    elif pick == "highest":
        order = sorted(lines, key=lambda line: min(g[1] for g in line))
    else:
        order = sorted(lines, key=lambda line: abs(np.mean([g[1] + g[3] / 2 for g in line]) - height / 2))
    for edge in order:
        # Icons beside the name (a microphone, a camera) may form a short line at its height: the widest wins.
        line = max((line for line in lines if _overlap(line, edge) > 0), key=lambda line: sum(g[2] for g in line))
        x0, y0, x1, y1 = _extent(line)
        # A title bar's text sits right above the tile, within a line's height; higher up is other UI (a
        # browser's address bar above the top row).
        if pick == "bar" and height - y1 > y1 - y0:
            return None
        # The background is looked at between the letters and a little around them, where a label's fill is.
        pad = max(2, (y1 - y0) // 4)
        rows, cols = slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad)
        around = ~cv2.dilate(mask[rows, cols].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        background = grey[rows, cols][around]
        plain = background.size > 0 and float(np.ptp(np.percentile(background, PLAIN_PERCENTILES))) <= PLAIN_RANGE
        if plain or (pick == "lowest" and len(line) >= MIN_GLYPHS_OVER_VIDEO):
            return _cut_out(image, region, kernel, stats, line, settings, scale)
    return None


def _extent(line: list[Glyph]) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of a line's glyphs."""
    return (
        min(g[0] for g in line),
        min(g[1] for g in line),
        max(g[0] + g[2] for g in line),
        max(g[1] + g[3] for g in line),
    )


def _cut_out(
    image: np.ndarray,
    region: Box,
    kernel: int,
    stats: np.ndarray,
    line: list[Glyph],
    settings: NameSettings,
    scale: int,
) -> Label | None:
    """A line of text in a region cut out of the frame for OCR; stats: the region's light marks, line: its
    glyphs, both in the region's pixels enlarged `scale` times."""
    x0, y0, x1, y1 = _extent(line)
    # A full stop ends a name ("Jr."): a mark too small for a glyph, right after the line and within it.
    size = max(g[3] for g in line)
    for x, y, w, h, _ in stats[1:]:
        if x1 <= x <= x1 + size // 3 and y >= y0 and y + h <= y1 + 1 and max(w, h) <= size // 3:
            x1 = max(x1, int(x + w))
    x0, y0, x1, y1 = x0 // scale, y0 // scale, -(-x1 // scale), -(-y1 // scale)
    # The line may run past the region (a name across the band's edge): it is cut out of the frame, and
    # everything light in its box is text: dots and accents, and letters joined to something taller (a
    # headset cable through a "W").
    box = _clipped(
        Box(region.x + x0 - MARGIN, region.y + y0 - MARGIN, x1 - x0 + 2 * MARGIN, y1 - y0 + 2 * MARGIN), image.shape
    )
    enlarged, grey_box = _text_pixels(image, box, kernel, settings.ocr_text_height)
    pixels, _ = _text_pixels(image, box, kernel, 1)
    # Word spaces, in the box's pixels: where they are and how wide they are.
    spaces = [
        (region.x + (start + end) / 2 / scale - box.x, (end - start) / scale)
        for start, end in _word_gaps(line)
        if not pixels[:, round(region.x + start / scale - box.x) + 1 : round(region.x + end / scale - box.x) - 1].any()
    ]
    # Only the second reading's cuts: the first reading is the one measured on composed labels, where a
    # widened space changed a few letters' reading.
    height = size / scale
    enlarged = _spaced(enlarged, box.w, spaces, height, 0)
    grey_box = _spaced(grey_box, box.w, spaces, height, int(np.median(grey_box)))
    # A longer name that starts the same shows more letters within a line's height of this one's end.
    right = min(region.x + region.w, box.x + box.w + box.h)
    fingerprint = _grey_from(image, box, right)
    if fingerprint is None:
        return None
    level, contrast = _contrast(fingerprint[:, : box.w], pixels)
    return Label(pixels, box, right, fingerprint, level, contrast, grey_box, enlarged, len(spaces) + 1)


def _contrast(grey: np.ndarray, ink: np.ndarray) -> tuple[float, float]:
    """The grey level halfway between a label's letters and their background, and how much lighter the
    letters are: the label's own contrast, against which a change is measured. ink: the letters' (see
    _text_pixels), whose strokes' cores (half the full ink or more) are the letters, and whose nothing (away
    from any letter's edge) the background."""
    text, background_mask = ink >= 128, ink == 0
    if not text.any() or not background_mask.any():
        return TEXT_MIN, INK_FLOOR
    letters, background = float(np.median(grey[text])), float(np.median(grey[background_mask]))
    # The letters were found INK_FLOOR or more above what surrounds them; a median may say less on a busy picture.
    contrast = max(float(INK_FLOOR), letters - background)
    return (letters + background) / 2, contrast


def _word_gaps(line: list[Glyph]) -> list[tuple[int, int]]:
    """The spaces between a line's words, as (start, end) x: gaps between its marks WORD_SPACE times the
    median gap or wider, and at least WORD_SPACE_SHARE of the line's height."""
    spans: list[list[int]] = []
    for x, _, w, _ in sorted(line):
        if spans and x <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], x + w)
        else:
            spans.append([x, x + w])
    gaps = [(a[1], b[0]) for a, b in zip(spans, spans[1:], strict=False)]
    if len(gaps) < 2:
        return []
    typical = float(np.median([end - start for start, end in gaps]))
    size = max(g[3] for g in line)
    return [(start, end) for start, end in gaps if end - start >= max(WORD_SPACE * typical, WORD_SPACE_SHARE * size)]


def _spaced(pixels: np.ndarray, width: int, spaces: list[tuple[float, float]], size: float, fill: int) -> np.ndarray:
    """A cut-out label with each word space widened to `size` (the line's height), filled with `fill`.

    Tesseract joins small words whose space is a few pixels ("Thi Le" read "ThiLe"): the glyphs found say
    where the spaces are, and a space as wide as a letter is high is one it keeps. spaces: (centre, width)
    in the label box's pixels (`width` wide); the cut may be enlarged, so they are scaled to its width.
    """
    if not spaces:
        return pixels
    factor = pixels.shape[1] / width
    parts, last = [], 0
    for centre, gap in spaces:
        at = round(centre * factor)
        extra = round(max(0.0, size - gap) * factor)
        parts += [pixels[:, last:at], np.full((pixels.shape[0], extra), fill, pixels.dtype)]
        last = at
    return np.hstack([*parts, pixels[:, last:]])


def _text_pixels(image: np.ndarray, box: Box, kernel: int, text_height: int) -> tuple[np.ndarray, np.ndarray]:
    """The ink of the letters in a box of the frame, nothing else, scaled so that strokes are near full, and
    the box's grey levels, both enlarged towards text_height pixels.

    Small text is enlarged before its letters are told from the background, not after: a 5 px letter's
    faint anti-aliased strokes fall below the ink threshold at its own size and are lost, while at
    Tesseract's size they are strokes of their own. The enlarged cut also scales each pixel's ink by the
    room its background left it (a white letter stands out by 45 grey levels over a pale shirt, by 190 over
    a dark wall), so letters crossing both are evenly dark; the cut at the frame's size (text_height 1) keeps
    one scale for the whole label, as the composed labels of tests/test_names.py were measured with.
    """
    scale = min(MAX_UPSCALE, max(1.0, text_height / box.h))
    x0, y0 = max(0, box.x - kernel), max(0, box.y - kernel)
    x1, y1 = min(image.shape[1], box.x + box.w + kernel), min(image.shape[0], box.y + box.h + kernel)
    crop = image[y0:y1, x0:x1]
    if scale > 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    grey, ink, mask = _text(crop, int(kernel * scale) | 1)
    top, left = round((box.y - y0) * scale), round((box.x - x0) * scale)
    inside = (slice(top, top + round(box.h * scale)), slice(left, left + round(box.w * scale)))
    grey, ink, mask = grey[inside], ink[inside], mask[inside]
    if not mask.any():
        return np.zeros(ink.shape, np.uint8), grey
    # Text over video is unevenly bright; Tesseract reads evenly dark letters best.
    keep = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if scale > 1:
        # grey - ink is the background the top-hat saw; 255 minus it, the room a letter had.
        share = ink.astype(np.float32) / np.maximum(1.0, 255.0 - grey.astype(np.float32) + ink)
        full = float(np.percentile(share[mask], INK_FULL_PERCENTILE))
        return np.where(keep, np.clip(share * (255 / full), 0, 255), 0).astype(np.uint8), grey
    full = float(np.percentile(ink[mask], INK_FULL_PERCENTILE))
    return np.where(keep, np.clip(ink * (255 / full), 0, 255), 0).astype(np.uint8), grey


def _clipped(box: Box, shape: tuple[int, ...]) -> Box:
    x0, y0 = max(0, box.x), max(0, box.y)
    return Box(x0, y0, min(shape[1], box.x + box.w) - x0, min(shape[0], box.y + box.h) - y0)


def _lines(glyphs: list[Glyph]) -> list[list[Glyph]]:
    """Glyphs joined left to right into lines: side by side at one height and of like size, at most a few
    letters apart (a letter lost into something taller, an icon between the parts of a name)."""
    lines: list[list[Glyph]] = []
    for glyph in sorted(glyphs):
        x, y, w, h = glyph
        for line in lines:
            top, bottom = min(g[1] for g in line), max(g[1] + g[3] for g in line)
            size = max(g[3] for g in line)
            right = max(g[0] + g[2] for g in line)
            if (
                min(bottom, y + h) - max(top, y) >= LINE_OVERLAP * min(h, size)
                and size / MAX_HEIGHT_RATIO <= h <= size * MAX_HEIGHT_RATIO
                and x - right <= max(MIN_WORD_GAP, WORD_GAP * size)
            ):
                line.append(glyph)
                break
        else:
            lines.append([glyph])
    return lines


def _icons_among(glyphs: list[Glyph], areas: dict[Glyph, int]) -> set[Glyph]:
    """The icons at the ends of labels among a region's marks: a microphone, a camera or a person drawn in
    the text's colour beside the name (LiveKit, BigBlueButton), which Tesseract reads as a letter run into
    the name's first one, and which, taller than the letters, splits them into two lines.

    An icon is a solid, squarish mark with its neighbours (marks at its height within ICON_REACH of its
    heights) on one side only, set apart from them by more than a letter gap, and taller than every one of
    them by ICON_HEIGHT: a letter is drawn in strokes, so it fills less of its box (an "I" is no square),
    and a capital starting a name is no taller than the name's other capitals and ascenders.
    areas: each glyph's pixel count.
    """
    icons = set()
    for glyph in glyphs:
        x, y, w, h = glyph
        if not (ICON_ASPECT[0] <= w / h <= ICON_ASPECT[1] and areas[glyph] >= ICON_FILL * w * h):
            continue
        near = [
            g
            for g in glyphs
            if g != glyph
            and min(y + h, g[1] + g[3]) > max(y, g[1])
            and max(g[0] - (x + w), x - (g[0] + g[2])) <= ICON_REACH * h
        ]
        right = [g[0] - (x + w) for g in near if g[0] >= x + w]
        left = [x - (g[0] + g[2]) for g in near if g[0] + g[2] <= x]
        gaps = right if not left else left if not right else []
        if gaps and len(gaps) == len(near) and min(gaps) >= ICON_GAP * h and h >= ICON_HEIGHT * max(g[3] for g in near):
            icons.add(glyph)
    return icons


def _overlap(a: list[Glyph], b: list[Glyph]) -> int:
    """Rows two lines share."""
    return min(max(g[1] + g[3] for g in a), max(g[1] + g[3] for g in b)) - max(
        min(g[1] for g in a), min(g[1] for g in b)
    )


def _is_text(line: list[Glyph], min_glyphs: int, enlarged: bool) -> bool:
    """Whether a line of marks looks like a name: at least min_glyphs glyphs of like height on one baseline.

    Small blurred letters run together into one mark a word wide ("Calvin" in a 5 px title bar): in an
    enlarged search, where such text is looked for, a mark counts as as many glyphs as it is heights wide.
    At the frame's own size a lone wide mark is more often a lamp or a window frame.
    """
    if sum(max(1, g[2] // g[3]) if enlarged else 1 for g in line) < min_glyphs:
        return False
    heights = np.array([g[3] for g in line])
    bottoms = np.array([g[1] + g[3] for g in line])
    size = int(heights.max())
    # Most glyphs stand on the baseline (descenders hang below it).
    baseline = np.median(bottoms)
    on_line = np.abs(bottoms - baseline) <= max(1, BASELINE_SPREAD * size)
    return bool(on_line.mean() >= ON_BASELINE and heights.min() >= size * MIN_HEIGHT_RATIO)


def _icons(colour: np.ndarray) -> np.ndarray:
    """Pixels of saturated icons and what they enclose (grown by ICON_GROW pixels)."""
    if colour.size == 0:
        return np.zeros(colour.shape[:2], bool)
    # OpenCV per channel, not numpy's max(axis=2): labels are searched in every new tile, 20 times faster.
    blue, green, red = cv2.split(colour)
    spread = cv2.subtract(cv2.max(cv2.max(blue, green), red), cv2.min(cv2.min(blue, green), red))
    # Solid: a strongly coloured picture's noise crosses the threshold in scattered pixels, an icon does not.
    saturated = cv2.morphologyEx(
        (spread >= ICON_SATURATION).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
    )
    # Icons are small coloured marks; where most of the picture is strongly coloured (a purple wall, a blue
    # virtual background), white letters on it are letters.
    if saturated.mean() > ICON_MAX_SHARE:
        return np.zeros(colour.shape[:2], bool)
    grow = 2 * ICON_GROW + 1
    return cv2.dilate(saturated, np.ones((grow, grow), np.uint8)).astype(bool)


def ocr_labels(
    labels: list[Label], languages: str = "eng", settings: NameSettings = DEFAULT, tesseract: str = TESSERACT_CONFIG
) -> list[str]:
    """The raw text of each label: one Tesseract call over all of them stacked one above the other, and for
    those it read with low confidence or against what the label shows (see _unsure) a second call over other cuts of
    their letters (see _other_cuts), after which the five readings vote (see vote). Small text read wrongly
    is read wrongly in different ways by different cuts, the right name alike by several. settings: the
    configuration's [capture.names]; tesseract: its options (bench.tessdata tries other models with them).
    """
    height = settings.ocr_text_height
    read = _ocr_sheet([_for_ocr(label.pixels, height) for label in labels], languages, height, tesseract)
    unsure = [i for i, reading in enumerate(read) if _unsure(reading, labels[i], settings)]
    cuts = [(i, cut, size) for i in unsure for cut, size in _other_cuts(labels[i], height)]
    if not cuts:
        return [text for text, _ in read]
    again = _ocr_sheet([_for_ocr(cut, size) for _, cut, size in cuts], languages, height, tesseract)
    votes: dict[int, list[tuple[str, float]]] = {i: [read[i]] for i in unsure}
    for (i, _, _), reading in zip(cuts, again, strict=True):
        votes[i].append(reading)
    texts = [text for text, _ in read]
    for i, readings in votes.items():
        texts[i] = vote(readings)
    return texts


def _unsure(reading: tuple[str, float], label: Label, settings: NameSettings) -> bool:
    """Whether a first reading is read again: Tesseract is unsure of a word (second_reading_confidence), or
    sure of a reading that the label itself contradicts. Tesseract runs short words together at high
    confidence ("NhiLe" at 89 where the glyphs show a word space), and reads a small capital M as "vi" ("viarjon
    Barton" at 85): a name does not start lower case and go on capitalised. A school that turned the second
    reading off (second_reading_confidence 0) gets none.
    """
    text, confidence = reading
    words = text.split()
    return confidence < settings.second_reading_confidence or (
        settings.second_reading_confidence > 0 and (len(words) < label.words or _lower_start_then_capitalised(words))
    )


def _lower_start_then_capitalised(words: list[str]) -> bool:
    """Whether a name's first word starts lower case and a later one capitalised: no name is written so
    (particles, "Charlotte de Crum", come later), a misreading of its first letter is."""
    return len(words) > 1 and words[0][:1].islower() and any(word[:1].isupper() for word in words[1:])


def vote(readings: Sequence[tuple[str, float]]) -> str:
    """The raw text of the name most readings agree on: each reading (text, confidence 0-100) counts
    VOTE_BASE + its confidence for the letters of the name it cleans to, spaces aside; of the readings of
    the winning letters, the one with the most words is returned (the earliest of those).

    The confidence is that of the least sure word, so a long name read right by several cuts may have low
    ones ("Mary-Kate O'Neil" at 0, 5, 18, 30) against one cut's wrong reading at 74 ("Mory-Kote"): agreement
    counts for more than one reading's confidence. Spaces are set aside because small word spaces are what
    Tesseract loses in some cuts and not in others ("ThiLe", "Thi Le"), rarely what it adds.
    """
    tally: dict[str, float] = {}
    for text, confidence in readings:
        tally[_letters_of(text)] = tally.get(_letters_of(text), 0.0) + VOTE_BASE + confidence
    best = max(tally, key=lambda letters: tally[letters])
    return max(
        (text for text, _ in readings if _letters_of(text) == best), key=lambda text: len(clean_name(text).split())
    )


def _letters_of(text: str) -> str:
    return clean_name(text).replace(" ", "")


def _other_cuts(label: Label, height: int) -> list[tuple[np.ndarray, int]]:
    """A label's letters cut out otherwise than `pixels`, each with the text height it is read at.

    Enlarged before the letters are cut out (see _text_pixels: faint strokes of small text survive), read
    at the usual height and larger (thin strokes that merge at the usual size come apart); the grey levels
    binarised by Otsu's threshold (see _binarised); the grey levels stretched from the background to the
    text (see _stretched: letters that an outline or a shadow cut off from the ink).
    """
    return [
        (label.enlarged, height),
        (label.enlarged, round(height * LARGER_READING)),
        (_binarised(label), height),
        (_stretched(label), height),
    ]


def _stretched(label: Label) -> np.ndarray:
    """The label's grey levels, light = text: its median (the background, a label's fill or the picture
    behind thin letters) to black, its brightest to white."""
    grey = label.grey.astype(np.float32)
    background = float(np.median(grey))
    top = float(np.percentile(grey, STRETCH_PERCENTILE))
    stretched: np.ndarray = np.clip((grey - background) * (255 / max(1.0, top - background)), 0, 255)
    return stretched.astype(np.uint8)


def _binarised(label: Label) -> np.ndarray:
    """The label's letters as the frame's own grey levels split in two by Otsu's threshold, light = text.

    Where white letters cross a light part of the picture (a pale shirt, a lit wall) their ink is weak next
    to the letters over a dark part; one threshold chosen for this label keeps them all whole, and the
    letter mask keeps the picture around them out.
    """
    _, light = cv2.threshold(label.grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    near = cv2.dilate((label.enlarged > 0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return np.where(near, light, 0).astype(np.uint8)


def _ocr_sheet(
    lines: list[np.ndarray], languages: str, text_height: int, tesseract: str = TESSERACT_CONFIG
) -> list[tuple[str, float]]:
    """Each line's text and the confidence of its least sure word (0 when nothing was read), from one
    Tesseract call over all of them stacked (text_height: the lines' text height; tesseract: its options)."""
    gap = int(text_height * STACK_GAP)
    width = max(line.shape[1] for line in lines) + 2 * gap
    height = sum(line.shape[0] for line in lines) + gap * (len(lines) + 1)
    sheet = np.full((height, width), 255, np.uint8)
    spans = []
    y = gap
    for line in lines:
        sheet[y : y + line.shape[0], gap : gap + line.shape[1]] = line
        spans.append((y, y + line.shape[0]))
        y += line.shape[0] + gap
    try:
        data = pytesseract.image_to_data(sheet, lang=languages, config=tesseract, output_type=pytesseract.Output.DICT)
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError) as error:
        raise CaptureError(f"cannot read names with Tesseract: {error}") from error
    words: list[list[tuple[int, str, float]]] = [[] for _ in lines]
    for text, top, h, left, conf in zip(
        data["text"], data["top"], data["height"], data["left"], data["conf"], strict=True
    ):
        if not text.strip() or float(conf) < 0:
            continue
        middle = top + h / 2
        for i, (start, end) in enumerate(spans):
            if start - gap / 2 <= middle < end + gap / 2:
                words[i].append((left, text, float(conf)))
                break
    return [
        (" ".join(text for _, text, _ in sorted(found)), min((conf for *_, conf in found), default=0.0))
        for found in words
    ]


def clean_name(text: str) -> str:
    """A display name from OCR text: no "(2)", pronouns or other bracketed suffixes, no icon or edge junk.

    Keeps the punctuation names have: O'Brien, Anne-Marie, Jr., St. John. A name the app cut short ends in
    ELLIPSIS, however it was read ("...", "…", a lone full stop after a long word).
    """
    text = _L_READ_AS_BANG.sub("l", text.translate(_TYPOGRAPHY))
    name = _HANGUL_GAP.sub("", " ".join(_NUMBER_IN_BRACKETS.sub(r" \1", text).split()))
    cut = _ELLIPSIS.search(name) is not None
    name = _REPEATED.sub(r"\1", _ELLIPSIS.sub("", name))
    while (shorter := _TRAILING_NUMBER.sub("", _PRONOUNS.sub("", _SUFFIX.sub("", name)))) != name:
        name = shorter
    words = [word for word in (_EDGE_JUNK.sub("", _INSIDE_JUNK.sub("", word)) for word in name.split()) if word]
    # An icon read as a lone character ("@", "&", "a") before the name: drop one-character words at the start
    # that are no initial (a capital) nor a letter of a script without case (a Hangul syllable).
    while len(words) > 1 and len(words[0]) == 1 and (words[0].islower() or not words[0].isalpha()):
        words = words[1:]
    # Icons after a capitalised name (Nextcloud's microphone and camera) are read as a short lower-case word
    # ("Emily Grant rm"); a name that capitalises its words does not end in one.
    while len(words) > 1 and words[-1].islower() and len(words[-1]) <= 2 and words[-2][:1].isupper():
        words = words[:-1]
    # Sans-serif fonts draw a capital I as an l: a name that goes on capitalised starts with I ("lan Rebmann");
    # a lower-case particle ("la", "le") never starts one.
    if _lower_start_then_capitalised(words) and words[0][:1] == "l" and words[0][1:2].islower():
        words[0] = "I" + words[0][1:]
    if len(words) > 1:
        words[-1] = _LAST_WORD_FIXES.get(words[-1], words[-1])
    # A small ellipsis is read as one full stop; after a long lower-case word it is no abbreviation ("Jr.").
    if words and _READ_AS_STOP.fullmatch(words[-1]):
        words[-1], cut = words[-1][:-1], True
    if cut and words:
        words[-1] = words[-1].rstrip(".-") + ELLIPSIS
    return " ".join(words)


def _for_ocr(pixels: np.ndarray, text_height: int) -> np.ndarray:
    """Dark text on white, text_height pixels high (Tesseract's preferred size), contrast stretched.

    Not binarised: at label sizes the grey anti-aliasing is what tells an "a" from an "o" once enlarged.
    """
    scale = min(8.0, max(1.0, text_height / max(pixels.shape[0], 1)))
    big = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_LANCZOS4)
    stretched: np.ndarray = cv2.normalize(np.asarray(255 - big), np.empty_like(big), 0, 255, cv2.NORM_MINMAX)
    return stretched


def _moved(grey: np.ndarray, label: Label) -> np.ndarray:
    """Which pixels changed (see CHANGE_SHARE) between the label's fingerprint and `grey`, the frame's grey
    levels in the same place."""
    moved = np.abs(grey - label.fingerprint) >= CHANGE_SHARE * label.contrast
    light: np.ndarray = moved & (np.maximum(grey, label.fingerprint) >= label.level)
    return light


def _changed(grey: np.ndarray, label: Label) -> float:
    """The share of the label's box whose pixels changed."""
    return float(np.mean(_moved(grey, label)[:, : label.box.w]))


def _in_place_of(old: Label, new: Label) -> bool:
    """Whether a label found overlaps an old one and covers less than JUNK_GROWTH times its area."""
    a, b = old.box, new.box
    return _intersects(a, b) and b.w * b.h < JUNK_GROWTH * a.w * a.h


def _same_text(image: np.ndarray, old: Label, new: Label, change: float) -> bool:
    """Whether a label found is the old one's text, found again (the video around it changed): the same
    size, and at most `change` of the old label's box shows other text in this frame."""
    grey = _grey_from(image, old.box, old.right)
    return (
        abs(old.box.w - new.box.w) <= SIZE_CHANGE
        and abs(old.box.h - new.box.h) <= SIZE_CHANGE
        and grey is not None
        and _changed(grey, old) <= change
    )


def _unchanged(image: np.ndarray, label: Label, settings: NameSettings) -> bool:
    """Whether the frame still shows the label's text where it was: the same letters, and no more text
    between it and `right` than there was (a longer name that starts the same adds some)."""
    grey = _grey_from(image, label.box, label.right)
    if grey is None:
        return False
    moved = _moved(grey, label)
    return (
        int(moved[:, label.box.w :].sum()) <= settings.min_text_height
        and float(np.mean(moved[:, : label.box.w])) <= settings.fingerprint_change
    )


def _grey_from(image: np.ndarray, box: Box, right: int) -> np.ndarray | None:
    """The frame's grey levels (int16, to subtract) from the box's left to `right`, over its rows; None where
    that leaves the frame.

    Grey levels compared, not the letter search: this runs for every label every frame, only to notice change.
    """
    view = image[box.y : box.y + box.h, box.x : max(right, box.x + box.w)]
    if view.shape[:2] != (box.h, max(right - box.x, box.w)):
        return None
    grey: np.ndarray = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY).astype(np.int16)
    return grey
