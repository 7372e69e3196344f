"""Reads each gallery tile's participant name from its bottom-left label (white text on a dark label).

Tesseract is slow (a process per call), so a tile's label is read only when it is new: each frame, a tile
read before is checked by one small crop where its text was (its text mask, its "fingerprint", must not
have changed); only new tiles, and tiles whose label changed, are searched again, and those whose text
is new go to Tesseract, all of them stacked into one call (49 labels: about 0.6 s here).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytesseract

from capture.errors import CaptureError
from vocabulary.records import Box

# The label sits in this bottom fraction of the tile's height and left fraction of its width.
LABEL_BAND = 0.25
LABEL_WIDTH = 1.0
# Icons are strongly coloured (max - min channel at least this); white text and grey labels are not.
ICON_SATURATION = 80
ICON_GROW = 3
# Name text is near white; the label under it is dark (Zoom and Teams draw it black, mostly opaque,
# so even over a white wall it stays below LABEL_MAX).
TEXT_MIN = 170
LABEL_MAX = 60
# The label holds the tile's bottom-left CORNER x CORNER pixels (it sits a few pixels in from the edges).
CORNER = 12
# Text shorter than this (pixels) is a speck, not a name; MARGIN pixels are kept around the text.
MIN_TEXT_HEIGHT = 4
MARGIN = 2
# Empty rows inside one line of text (between an i and its dot) up to this many, or a quarter of its height.
MIN_LINE_GAP = 2
# A label is at least this wide (pixels); gaps in its dark bottom rows up to GAP_CLOSE wide are descenders.
MIN_LABEL_WIDTH = 20
GAP_CLOSE = 7
# Rows whose darkest LABEL_LEVEL_SHARE of pixels is within LABEL_LEVEL_SPREAD grey levels of the label's
# bottom row belong to the label.
LABEL_LEVEL_SHARE = 0.05
LABEL_LEVEL_SPREAD = 20
# Label text is enlarged (Lanczos) to this many pixels high for Tesseract. Measured on 540 drawn labels
# in 4 fonts: 36 px cubic 97.6 % exact, 36 px Lanczos 98.1 %, 44 px Lanczos 99.3 %.
OCR_TEXT_HEIGHT = 44
# Labels are stacked into one image for a single Tesseract call, this many text heights apart.
STACK_GAP = 1.0
# A label whose text mask (on a FINGERPRINT grid) differs from the cached one in more than this
# fraction of cells is read again: a different name moved into the tile ("Sam 12" and "Sam 21" differ in
# about 5 %; the same label over a moving video in well under 1 %).
FINGERPRINT = (12, 96)
FINGERPRINT_CHANGE = 0.02
# ... or whose text box changed size by more than this many pixels.
SIZE_CHANGE = 2
# A fingerprint cell is text when this share of its pixels is.
FINGERPRINT_INK = 0.1
# A block of lines (the stacked labels); no dictionary: names are not English words.
TESSERACT_CONFIG = "--psm 6 -c load_system_dawg=0 -c load_freq_dawg=0"

# Tesseract's OpenMP threads spin against each other on a busy laptop: one thread reads a stack of labels
# 2-4 times faster here (49 labels: 1.8 s instead of 4.4-7.6 s on 2 loaded cores).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# Video-call decorations of a name: "(2)" for a second device, pronouns, "(Host)", "(Guest)".
_SUFFIX = re.compile(r"\s*[\(\[][^)\]]*[\)\]]?\s*$")
# ... the same with their brackets lost: "she/her", "hehim", a bare "2" (no name ends in a number).
_PRONOUNS = re.compile(r"(?i)\s+(he|she|they|xe|ze)\s*/?\s*(him|her|hers|them|theirs|they|he|she)\W*$")
_TRAILING_NUMBER = re.compile(r"\s+\W*\d+\W*$")
# What may stand at either end of a name; inside it, only letters, marks, digits, space and .'-
_EDGE_JUNK = re.compile(r"^[^\w]+|[^\w.]+$")
_INSIDE_JUNK = re.compile(r"[^\w\s.'\-]")
# A hyphen or apostrophe read twice ("Al--Farsi").
_REPEATED = re.compile(r"([-'.])\1+")
# Small print "Jr." comes back as "dr." (the J's hook is a few pixels); a lower-case "dr." never ends a name.
_LAST_WORD_FIXES = {"dr.": "Jr.", "jr.": "Jr.", "sr.": "Sr."}
# Tesseract reads plain apostrophes and hyphens as their typographic cousins; a bar is an icon edge.
_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "`": "'", "—": "-", "–": "-", "‐": "-", "|": " "})


@dataclass(frozen=True)
class Label:
    """A tile's name text, cut out of the frame: grey pixels and its place in the frame."""

    pixels: np.ndarray  # grey uint8, the text's bounding box with a small margin
    box: Box  # of `pixels`, in frame pixels
    right: int  # the label's right end (frame x): the label background between box and right holds no text
    fingerprint: np.ndarray  # FINGERPRINT-shaped bool text mask


@dataclass
class _Read:
    label: Label
    name: str


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

    languages: Tesseract's, joined by "+" ("eng+kor+hin").
    """

    tesseract_calls: int = 0
    languages: str = "eng"
    _cache: dict[Box, _Read] = field(default_factory=dict)

    def read(self, image: np.ndarray, tiles: list[Box]) -> list[str]:
        """One name per tile, "" where a tile shows no readable name. image: H x W x 3 BGR uint8."""
        # A cached label still showing the same text costs one small crop; only the others are searched.
        labels = [
            cached.label if (cached := self._cache.get(tile)) and _unchanged(image, cached.label) else None
            for tile in tiles
        ]
        searched = [i for i, label in enumerate(labels) if label is None]
        due = []
        for i in searched:
            label = labels[i] = find_label(image, tiles[i])
            cached = self._cache.get(tiles[i])
            if label is not None and cached is not None and _same_text(cached.label, label):
                cached.label = label  # the same name, found again (the video around it changed)
            elif label is not None:
                due.append(i)
        if due:
            self.tesseract_calls += 1
            texts = ocr_labels([labels[i] for i in due], self.languages)  # type: ignore[misc]
            for i, text in zip(due, texts, strict=True):
                self._cache[tiles[i]] = _Read(labels[i], clean_name(text))  # type: ignore[union-attr]
        # Tiles of earlier layouts are forgotten, so the cache stays one layout big.
        self._cache = {tile: self._cache[tile] for tile in tiles if tile in self._cache}
        return [self._cache[tile].name if tile in self._cache else "" for tile in tiles]


def find_label(image: np.ndarray, tile: Box) -> Label | None:
    """The name text on the label in the tile's bottom-left corner, or None when there is none.

    The label's bottom rows are plain dark from near the tile's left edge to its right end, which gives
    its width; it reaches up as far as the rows keep the label's dark level. Only white pixels inside
    that rectangle count as text, so the video around it adds nothing.
    """
    band_h = max(12, int(tile.h * LABEL_BAND))
    top, left = tile.y + tile.h - band_h, tile.x
    colour = image[top : tile.y + tile.h, left : left + int(tile.w * LABEL_WIDTH)]
    band = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    # Descenders (g, j, y) cut the bottom rows' dark run: close gaps up to GAP_CLOSE pixels wide.
    dark = cv2.morphologyEx(
        (band <= LABEL_MAX).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, GAP_CLOSE), np.uint8)
    ).astype(bool)
    bottom = None
    for row in range(band.shape[0] - 1, max(band.shape[0] - CORNER, 0) - 1, -1):
        span = _dark_run(dark[row])
        if span is not None and (bottom is None or span[1] - span[0] > bottom[2] - bottom[1]):
            bottom = (row, *span)
    if bottom is None:
        return None
    row, x0, x1 = bottom
    # A row is the label's when its darkest LABEL_LEVEL_SHARE of pixels sit at the label's level: a low
    # share, since in rows through bold text most pixels may be text. (Counts, not a percentile: 10x faster.)
    span = band[: row + 1, x0:x1].astype(np.int16)
    level = int(np.median(span[row]))
    at_level = (span <= level + LABEL_LEVEL_SPREAD).mean(axis=1) >= LABEL_LEVEL_SHARE
    below_level = (span < level - LABEL_LEVEL_SPREAD).mean(axis=1) >= LABEL_LEVEL_SHARE
    off_label = np.flatnonzero(~at_level | below_level)
    y0 = int(off_label[-1]) + 1 if len(off_label) else 0
    text = band[y0 : row + 1, x0:x1] >= TEXT_MIN
    # A white glyph inside a coloured icon (Meet's and Zoom's red muted microphone) is no letter.
    text &= ~_icons(colour[y0 : row + 1, x0:x1])
    line = _text_line(np.flatnonzero(text.any(axis=1)))
    if line is None:
        return None
    top_row, bottom_row = line
    text[:top_row] = False
    cols = np.flatnonzero(text.any(axis=0))
    ya, yb = y0 + max(0, top_row - MARGIN), y0 + min(text.shape[0], bottom_row + 1 + MARGIN)
    xa, xb = x0 + max(0, cols[0] - MARGIN), x0 + min(text.shape[1], cols[-1] + 1 + MARGIN)
    pixels = band[ya:yb, xa:xb].copy()
    return Label(pixels, Box(left + xa, top + ya, xb - xa, yb - ya), left + x1, _fingerprint(pixels))


def _icons(colour: np.ndarray) -> np.ndarray:
    """Pixels of saturated icons and what they enclose (grown by ICON_GROW pixels)."""
    if colour.size == 0:
        return np.zeros(colour.shape[:2], bool)
    spread = colour.max(axis=2).astype(np.int16) - colour.min(axis=2)
    saturated = (spread >= ICON_SATURATION).astype(np.uint8)
    grow = 2 * ICON_GROW + 1
    return cv2.dilate(saturated, np.ones((grow, grow), np.uint8)).astype(bool)


def _text_line(rows: np.ndarray) -> tuple[int, int] | None:
    """The lowest line of text: rows with text from the bottom up, across gaps (an i's dot, a quote) of up to
    a quarter of the text's height so far; a wider gap is the label's top margin, above it the video."""
    if len(rows) == 0:
        return None
    top = bottom = int(rows[-1])
    for above in rows[-2::-1]:
        if top - int(above) - 1 > max(MIN_LINE_GAP, (bottom - top + 1) // 4):
            break
        top = int(above)
    return (top, bottom) if bottom - top >= MIN_TEXT_HEIGHT else None


def _dark_run(row: np.ndarray) -> tuple[int, int] | None:
    """[start, end) of the dark run that starts within CORNER pixels of the row's left end, if long enough."""
    starts = np.flatnonzero(row[:CORNER])
    if len(starts) == 0:
        return None
    start = int(starts[0])
    ends = np.flatnonzero(~row[start:])
    end = start + (int(ends[0]) if len(ends) else len(row) - start)
    return (start, end) if end - start >= MIN_LABEL_WIDTH else None


def ocr_labels(labels: list[Label], languages: str = "eng") -> list[str]:
    """The raw text of each label, in one Tesseract call over all of them stacked one above the other."""
    lines = [_for_ocr(label.pixels) for label in labels]
    gap = int(OCR_TEXT_HEIGHT * STACK_GAP)
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
        data = pytesseract.image_to_data(
            sheet, lang=languages, config=TESSERACT_CONFIG, output_type=pytesseract.Output.DICT
        )
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError) as error:
        raise CaptureError(f"cannot read names with Tesseract: {error}") from error
    words: list[list[tuple[int, str]]] = [[] for _ in lines]
    for text, top, h, left, conf in zip(
        data["text"], data["top"], data["height"], data["left"], data["conf"], strict=True
    ):
        if not text.strip() or float(conf) < 0:
            continue
        middle = top + h / 2
        for i, (start, end) in enumerate(spans):
            if start - gap / 2 <= middle < end + gap / 2:
                words[i].append((left, text))
                break
    return [" ".join(text for _, text in sorted(found)) for found in words]


def clean_name(text: str) -> str:
    """A display name from OCR text: no "(2)", pronouns or other bracketed suffixes, no icon or edge junk.

    Keeps the punctuation names have: O'Brien, Anne-Marie, Jr., St. John.
    """
    name = _REPEATED.sub(r"\1", " ".join(text.translate(_TYPOGRAPHY).split()))
    while (shorter := _TRAILING_NUMBER.sub("", _PRONOUNS.sub("", _SUFFIX.sub("", name)))) != name:
        name = shorter
    words = [word for word in (_EDGE_JUNK.sub("", _INSIDE_JUNK.sub("", word)) for word in name.split()) if word]
    # An icon read as a lone character ("@", "&", "Q") before the name: drop one-letter non-initials at the start.
    while len(words) > 1 and len(words[0]) == 1 and not words[0].isupper():
        words = words[1:]
    if len(words) > 1:
        words[-1] = _LAST_WORD_FIXES.get(words[-1], words[-1])
    return " ".join(words)


def _for_ocr(pixels: np.ndarray) -> np.ndarray:
    """Dark text on white at Tesseract's preferred size, contrast stretched.

    Not binarised: at label sizes the grey anti-aliasing is what tells an "a" from an "o" once enlarged.
    """
    scale = min(8.0, max(1.0, OCR_TEXT_HEIGHT / max(pixels.shape[0], 1)))
    big = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_LANCZOS4)
    return cv2.normalize(255 - big, None, 0, 255, cv2.NORM_MINMAX)


def _fingerprint(grey: np.ndarray) -> np.ndarray:
    text = (grey >= TEXT_MIN).astype(np.float32)
    return cv2.resize(text, FINGERPRINT[::-1], interpolation=cv2.INTER_AREA) > FINGERPRINT_INK


def _same_text(old: Label, new: Label) -> bool:
    return (
        abs(old.box.w - new.box.w) <= SIZE_CHANGE
        and abs(old.box.h - new.box.h) <= SIZE_CHANGE
        and float(np.mean(old.fingerprint != new.fingerprint)) <= FINGERPRINT_CHANGE
    )


def _unchanged(image: np.ndarray, label: Label) -> bool:
    """Whether the frame still shows the label's text where it was: the same text mask, and no text between
    it and the label's right end (a longer name that starts the same)."""
    box = label.box
    grey = cv2.cvtColor(image[box.y : box.y + box.h, box.x : max(label.right, box.x + box.w)], cv2.COLOR_BGR2GRAY)
    if grey.shape != (box.h, max(label.right - box.x, box.w)) or (grey[:, box.w :] >= TEXT_MIN).any():
        return False
    return float(np.mean(_fingerprint(grey[:, : box.w]) != label.fingerprint)) <= FINGERPRINT_CHANGE
