"""Tiles, faces and names found on real video-call screenshots, against what a person counts in them.

`python -m bench.galleries [--folder DIR] [--names] [--ocr-lang kor+eng]`. DIR (default
../shared/galleries) holds screenshots of Zoom, Meet, Teams, BigBlueButton, LiveKit and Nextcloud Talk and
an `index.csv` with, per file, the tiles and faces a person counts and the names the labels show
(`|`-separated; "..." marks a label the app cut short). Each screenshot goes through the capture
pipeline's own stages (tiles, faces, names) once.

- tiles, faces: found against counted; "extra" is what was found beyond the count (the index has counts,
  not boxes, so a miss and an extra in one screenshot cancel out there). Faces are people on camera: a
  profile photo on a camera-off tile is no face (capture drops faces on a flat fill). index.csv counts
  Meet's 48 photos so but Teams' 3 round photos as faces; PROFILE_PHOTOS takes those out of its count;
- names: of the names in Latin script that the app did not cut short, how many were read exactly (one read
  name per expected name, compared case-, accent-spacing- and bracket-insensitively: "Fred Dixon (you)" is
  "fred dixon"), per screenshot, per app and in all; with --ocr-lang other than eng, the names in other
  scripts are graded too, on a line of their own; and the time to read every tile's name on first sight
  ("ocr ms": search and Tesseract; capture does this once per layout, later frames only check each label's
  fingerprint).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2

from capture.detect import make_detector
from capture.names import clean_name
from capture.pipeline import FramePipeline
from config import CaptureConfig

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared/galleries"


# Profile photos on camera-off tiles that index.csv counts among a screenshot's faces (see its notes).
PROFILE_PHOTOS = {"teams_screenshare_rightstrip_1200.png": 3}


@dataclass(frozen=True)
class Expected:
    file: str
    app: str
    tiles: int
    faces: int
    names: list[str]


@dataclass(frozen=True)
class Found:
    layout: str
    tiles: int
    faces: int
    names: list[str]
    ms: dict[str, float]


def read_index(folder: Path) -> list[Expected]:
    with (folder / "index.csv").open(newline="", encoding="utf-8") as file:
        return [
            Expected(
                row["file"],
                row["app"],
                int(row["tiles"]),
                int(row["faces"]) - PROFILE_PHOTOS.get(row["file"], 0),
                row["names"].split("|"),
            )
            for row in csv.DictReader(file)
        ]


def normalised(name: str) -> str:
    """A name as compared: decorations dropped as capture drops them, case and spacing ignored."""
    return " ".join(clean_name(unicodedata.normalize("NFC", name)).casefold().split())


def gradable(name: str) -> bool:
    """Whether a name counts towards "names read exactly": Latin script and not cut short by the app."""
    letters = [c for c in name if c.isalpha()]
    return (
        not name.rstrip().endswith(("...", "…"))
        and bool(letters)
        and all(unicodedata.name(c, "").startswith("LATIN") for c in letters)
    )


def other_script(name: str) -> bool:
    """Whether a name is written in another script than Latin (and not cut short): graded apart, with the
    languages asked for."""
    letters = [c for c in name if c.isalpha()]
    return not name.rstrip().endswith(("...", "…")) and bool(letters) and not gradable(name)


def names_matched(expected: list[str], read: list[str]) -> int:
    """How many expected names were read exactly, each read name matching at most one expected name."""
    available = Counter(normalised(name) for name in read if name)
    matched = 0
    for name in expected:
        key = normalised(name)
        if available[key] > 0:
            available[key] -= 1
            matched += 1
    return matched


def analyse(pipeline: FramePipeline, path: Path) -> Found:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read {path}")
    started = time.perf_counter()
    layout, tiles, detections = pipeline.locate(image)
    located = time.perf_counter()
    names = pipeline.names.read(image, tiles) if tiles else []
    read = time.perf_counter()
    ms = {"locate": (located - started) * 1000, "names": (read - located) * 1000}
    return Found(layout, len(tiles or []), len(detections), names, ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.galleries", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--names", action="store_true", help="also print every name read")
    parser.add_argument(
        "--ocr-lang", default="eng", help="Tesseract languages (kor+eng: also grade the Korean names, apart)"
    )
    args = parser.parse_args(argv)
    if not (args.folder / "index.csv").is_file():
        print(f"error: no index.csv in {args.folder} (the real screenshots are not on this machine)", file=sys.stderr)
        return 2
    try:
        expected = read_index(args.folder)
    except (KeyError, ValueError, OSError) as error:
        print(f"error: bad {args.folder / 'index.csv'}: {error}", file=sys.stderr)
        return 2
    pipeline = FramePipeline(make_detector("blazeface"), None, settings=CaptureConfig(ocr_lang=args.ocr_lang))
    photos = ", ".join(f"{count} in {file}" for file, count in PROFILE_PHOTOS.items())
    print(f"faces: people on camera; profile photos on camera-off tiles are no faces (not counted: {photos})")
    header = f"{'screenshot':<44}{'layout':>10}{'tiles':>8}{'faces':>8}{'extra':>6}{'names':>8}{'ms':>7}{'ocr ms':>8}"
    print(header)
    totals = Counter()
    by_app: dict[str, Counter[str]] = {}
    for item in expected:
        try:
            found = analyse(pipeline, args.folder / item.file)
        except OSError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        gradable_names = [name for name in item.names if gradable(name)]
        named = names_matched(gradable_names, found.names)
        totals.update(
            tiles=item.tiles,
            tiles_found=min(found.tiles, item.tiles),
            tiles_extra=max(0, found.tiles - item.tiles),
            faces=item.faces,
            faces_found=min(found.faces, item.faces),
            faces_extra=max(0, found.faces - item.faces),
            names=len(gradable_names),
            names_read=named,
            other_names=len(others := [name for name in item.names if other_script(name)]),
            other_names_read=names_matched(others, found.names),
            names_ms=round(found.ms["names"]),
            tiles_named=found.tiles,
        )
        by_app.setdefault(item.app, Counter()).update(names=len(gradable_names), read=named)
        print(
            f"{item.file[:43]:<44}{found.layout:>10}{found.tiles:>4}/{item.tiles:<3}{found.faces:>4}/{item.faces:<3}"
            f"{max(0, found.faces - item.faces):>6}{named:>4}/{len(gradable_names):<3}"
            f"{found.ms['locate']:>7.0f}{found.ms['names']:>8.0f}"
        )
        if args.names:
            print("    read:", " | ".join(found.names))
    if args.ocr_lang != "eng" and totals["other_names"]:
        print(
            f"names in other scripts read exactly ({args.ocr_lang}): "
            f"{totals['other_names_read']}/{totals['other_names']}"
        )
    print(
        f"names read on first sight (every tile's label searched and read, two Tesseract calls at most): "
        f"{totals['names_ms']} ms for {totals['tiles_named']} tiles = "
        f"{totals['names_ms'] / max(1, totals['tiles_named']):.0f} ms a tile; later frames re-read only changed labels"
    )
    print(
        "names read exactly by app: "
        + ", ".join(f"{app} {count['read']}/{count['names']}" for app, count in by_app.items() if count["names"])
    )
    print(
        f"total: tiles {totals['tiles_found']}/{totals['tiles']} (+{totals['tiles_extra']} extra), "
        f"faces {totals['faces_found']}/{totals['faces']} = {totals['faces_found'] / totals['faces']:.1%} "
        f"(+{totals['faces_extra']} extra = {totals['faces_extra'] / totals['faces']:.1%}), "
        f"names read exactly {totals['names_read']}/{totals['names']} = {totals['names_read'] / totals['names']:.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
