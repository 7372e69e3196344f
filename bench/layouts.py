"""Tiles found on composed galleries in each app's style, as drawn and after a lossy codec or a down-scale.

`python -m bench.layouts [--seeds N]`. Real screens reach capture through a codec: a Zoom recording is
H.264, a shared screenshot is often a JPEG, a recording may be 640x360. Each style (gapless as Nextcloud
and Meet draw it, a thin gap, rounded tiles, an active speaker's border, a strip of thumbnails beside a
shared screen) is composed by tests/galleries.py from real faces at several sizes (2x2 to 7x7, 1080p),
then seen as drawn, as JPEG at quality 80, 65 and 50 (8x8 DCT blocks, colour at half resolution as H.264
keeps it), and scaled down to 640x360 (alone and then at quality 65). A tile is found when a found tile
lies within TOLERANCE of it on every side; "extra" counts found tiles that match none; "kind" counts
frames whose layout is the one drawn (grid, or strip). Prints one line per style and degradation, then the
total.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from capture.layout import find_tiles
from tests.galleries import (
    Gallery,
    compose_gallery,
    degraded,
    lfw_faces,
    with_rounded_corners,
    with_speaker_border,
)
from vocabulary.records import Box, Layout

# A found tile is the drawn one when every side lies this share of the tile's size away, or 3 px.
TOLERANCE = 0.02
SIZES = ((2, 2), (3, 3), (4, 3), (5, 5), (7, 7))
DEGRADATIONS: dict[str, tuple[int | None, tuple[int, int] | None]] = {
    "as drawn": (None, None),
    "jpeg 80": (80, None),
    "jpeg 65": (65, None),
    "jpeg 50": (50, None),
    "640x360": (None, (640, 360)),
    "640x360 q65": (65, (640, 360)),
}


@dataclass(frozen=True)
class Style:
    compose: Callable[[int, int, int], Gallery]
    layout: Layout


def _gallery(cols: int, rows: int, seed: int, gap: int) -> Gallery:
    return compose_gallery(lfw_faces(cols * rows, start=seed % 10), cols, rows, gap=gap, seed=seed)


def _strip(cols: int, rows: int, seed: int) -> Gallery:
    """A column of `rows` thumbnails at the right of a shared slide (cols is unused: a strip has one)."""
    strip = compose_gallery(lfw_faces(rows + 1, start=seed % 10), 1, rows + 1, size=(300, 1000), seed=seed)
    screen = np.full((1080, 1920, 3), 245, np.uint8)
    screen[40:1040, 1580:1880] = strip.image
    tiles = [Box(t.x + 1580, t.y + 40, t.w, t.h) for t in strip.tiles]
    return Gallery(image=screen, tiles=tiles, faces=[None] * len(tiles))


STYLES = {
    "gapless": Style(lambda c, r, s: _gallery(c, r, s, 0), Layout.GRID),
    "thin gap": Style(lambda c, r, s: _gallery(c, r, s, 2), Layout.GRID),
    "rounded": Style(lambda c, r, s: with_rounded_corners(_gallery(c, r, s, 8), 14), Layout.GRID),
    "speaker": Style(lambda c, r, s: with_speaker_border(_gallery(c, r, s, 6), s % (c * r), 4), Layout.GRID),
    "strip": Style(_strip, Layout.STRIP),
}


def matched(found: list[Box], drawn: list[Box]) -> int:
    """How many drawn tiles a found tile matches (each found tile matching one)."""
    left = list(found)
    count = 0
    for tile in drawn:
        slack = max(3.0, TOLERANCE * max(tile.w, tile.h))
        for other in left:
            if max(abs(other.x - tile.x), abs(other.y - tile.y), abs(other.w - tile.w), abs(other.h - tile.h)) <= slack:
                left.remove(other)
                count += 1
                break
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layouts", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="galleries per style and size (default 2)")
    parser.add_argument("--style", choices=sorted(STYLES), action="append", help="only these styles")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    print(f"{'style':<10}{'degradation':<14}{'tiles':>12}{'extra':>7}{'kind':>8}{'ms':>7}")
    totals: Counter[str] = Counter()
    for name in args.style or STYLES:
        style = STYLES[name]
        drawn = [style.compose(c, r, seed) for c, r in SIZES for seed in range(args.seeds)]
        for label, (quality, size) in DEGRADATIONS.items():
            row: Counter[str] = Counter()
            for gallery in drawn:
                seen = degraded(gallery, quality, size)
                started = time.perf_counter()
                found = find_tiles(seen.image)
                row["ms"] += (time.perf_counter() - started) * 1000
                hits = matched(found.tiles, seen.tiles)
                row.update(tiles=len(seen.tiles), found=hits, extra=len(found.tiles) - hits, frames=1)
                row["kind"] += found.layout is style.layout
            totals.update(row)
            print(
                f"{name:<10}{label:<14}{row['found']:>6}/{row['tiles']:<5}{row['extra']:>7}"
                f"{row['kind']:>4}/{row['frames']:<3}{row['ms'] / row['frames']:>7.0f}"
            )
    print(
        f"total: tiles {totals['found']}/{totals['tiles']} = {totals['found'] / totals['tiles']:.1%} "
        f"(+{totals['extra']} extra), layout kind right {totals['kind']}/{totals['frames']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
