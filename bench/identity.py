"""Names and identity on 1080p galleries: exact names read, identity kept through reshuffles, per-frame cost.

`python -m bench.identity [--reshuffles N] [--frames N] [--recording-frames N]`. Galleries are drawn by
tests/galleries.py from skimage's LFW faces with a name label on every tile (OpenCV Hershey fonts; names with
apostrophes, hyphens, "Jr.", pronoun and "(2)" suffixes; some tiles muted, some cameras off), 9 to 49 tiles.

- names: the share of tiles whose cleaned name is exactly the drawn name (without its decorations);
- identity: over reshuffles of a 49-tile gallery that move every tile (and switch a few cameras), the
  share of tile moves after which the tile's student key is still the student's; with names (and cameras
  switching on and off), and with no labels at all and every camera on (appearance and place only);
- newcomers: without labels, students leave and others sit down in their tiles (the layout stays; every
  face moves a little within its tile): the share of newcomers given a key never seen before (not the
  leaver's, nor anyone else's), and of the first students' tile sightings (while they stay) that keep theirs;
- recording: a 49-tile gallery as a recorded call shows it frame after frame (sensor noise, JPEG at quality
  80), with labels drawn as OCR misreads them (h as "li", m as "rn", ...): a tenth of them in the first frame,
  then each label with a small chance a frame for one or two frames; the students (keys) per person, the
  people shown by their true name in the last frame, and the share of tile-frames showing the true name;
- cost: the identity stage (names from the cache + matching) on a 49-tile frame with no OCR due.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from capture.detect import make_detector
from capture.detect.regions import find_faces
from capture.grid import find_tile_grid
from capture.names import NameReader
from capture.students import StudentTracker
from config import NameSettings
from tests.galleries import Gallery, LabelStyle, compose_gallery, lfw_faces

FIRST = ["Ada", "Sean", "Anne-Marie", "Zoe", "Li", "Priya", "Jose", "Mary-Kate", "D'Andre", "Kim", "Olga"]
FIRST += ["Ravi", "Emily", "Chloe", "Juan", "Aisha", "Tom", "Ngozi", "Bjorn", "Fatima", "Noor", "Luca"]
LAST = ["O'Brien", "Dubois", "Chen", "Wei", "Natarajan", "Garcia", "O'Neil", "Jackson", "Nguyen", "Petrova"]
LAST += ["Shankar", "Watson", "Martin", "Diaz", "Al-Farsi", "King Jr.", "Okafor", "Alund", "Khan", "St. John"]
DECORATIONS = ["", "", "", " (she/her)", " (he/him)", " (2)"]
STYLES = {
    "simplex 0.5": LabelStyle(cv2.FONT_HERSHEY_SIMPLEX, 0.5),
    "duplex 0.45": LabelStyle(cv2.FONT_HERSHEY_DUPLEX, 0.45),
    "triplex 0.5": LabelStyle(cv2.FONT_HERSHEY_TRIPLEX, 0.5),
    "complex 0.5": LabelStyle(cv2.FONT_HERSHEY_COMPLEX, 0.5),
}
GRIDS = [(3, 3), (4, 4), (5, 5), (6, 6), (7, 7)]
# OCR's usual confusions, each drawn so that the label visibly changes (the reader re-reads it).
MISREADS = [("h", "li"), ("m", "rn"), ("rn", "m"), ("d", "cl"), ("n", "ri"), ("e", "c"), ("a", "o"), ("i", "l")]
FIRST_FRAME_MISREAD = 0.1
MISREAD_CHANCE = 0.02
CAMERA_OFF_SHARE = 0.2
MUTED_SHARE = 0.3


def class_names(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """n distinct names as drawn (with decorations) and as they should be read."""
    clean: list[str] = []
    while len(clean) < n:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name not in clean:
            clean.append(name)
    return [name + str(rng.choice(DECORATIONS)) for name in clean], clean


def draw(order: list[int], names: list[str] | None, off: set[int], cols: int, rows: int, seed: int, **kw) -> Gallery:
    faces = lfw_faces(len(order))
    return compose_gallery(
        [faces[s] for s in order if s not in off],
        cols,
        rows,
        seed=seed,
        camera_off={t for t, s in enumerate(order) if s in off},
        names=None if names is None else [names[s] for s in order],
        **kw,
    )


def bench_names(rng: np.random.Generator) -> None:
    print(f"{'grid':<6}{'font':<13}{'tiles':>6}{'exact':>7}{'rate':>8}{'OCR ms':>8}")
    exact = total = 0
    for cols, rows in GRIDS:
        n = cols * rows
        for font, style in STYLES.items():
            drawn, clean = class_names(n, rng)
            off = set(rng.choice(n, int(n * CAMERA_OFF_SHARE), replace=False).tolist())
            muted = set(rng.choice(n, int(n * MUTED_SHARE), replace=False).tolist())
            gallery = draw(list(range(n)), drawn, off, cols, rows, seed=n, label=style, muted=muted)
            started = time.perf_counter()
            read = NameReader().read(gallery.image, find_tile_grid(gallery.image) or [])
            ms = (time.perf_counter() - started) * 1000
            right = sum(a == b for a, b in zip(read, clean, strict=True))
            exact, total = exact + right, total + n
            print(f"{cols}x{rows:<4}{font:<13}{n:>6}{right:>7}{right / n:>8.1%}{ms:>8.0f}")
            for want, got in zip(clean, read, strict=True):
                if want != got:
                    print(f"      read {got!r} for {want!r}")
    print(f"names read exactly: {exact}/{total} = {exact / total:.1%} (target >= 95%)")


def bench_identity(detector, reshuffles: int, named: bool, rng: np.random.Generator) -> float:
    n, cols, rows = 49, 7, 7
    drawn, _ = class_names(n, rng)
    names = drawn if named else None
    tracker, reader = StudentTracker(), NameReader()
    # Without labels a camera-off tile has nothing to be known by: that run has every camera on.
    off = set(range(40, 49)) if named else set()
    key_of: dict[int, str] = {}
    kept = moves = 0
    order = list(range(n))
    for step in range(reshuffles + 1):
        gallery = draw(order, names, off, cols, rows, seed=step)
        tiles = find_tile_grid(gallery.image) or []
        detections = find_faces(detector, gallery.image, tiles)
        tracker.assign(tiles, detections, gallery.image, reader.read(gallery.image, tiles) if named else None)
        keys = [tracker.tile_key(t) for t in range(len(tiles))]
        if step == 0:
            key_of = dict(zip(order, keys, strict=True))
        else:
            kept += sum(key_of[s] == key for s, key in zip(order, keys, strict=True))
            moves += n
        order = _derangement(order, rng)
        if named:  # a few students switch their camera between layouts
            switch = set(rng.choice(n, 4, replace=False).tolist())
            off = off ^ switch if len(off ^ switch) <= 12 else off
    how = "names, 9-12 cameras off" if named else "no labels, every camera on: appearance + place"
    print(f"identity kept through {reshuffles} reshuffles of 49 tiles, {how}: {kept}/{moves} = {kept / moves:.2%}")
    return kept / moves


def bench_newcomers(detector, rounds: int, rng: np.random.Generator) -> float:
    n, cols, rows, per_round = 49, 7, 7, 5
    faces = lfw_faces(100)
    pool = len(faces)
    seated = list(range(n))  # the LFW face in each tile
    arriving = iter(range(n, pool))
    tracker = StudentTracker()
    keys_seen: set[str] = set()
    key_of: dict[int, str] = {}
    fresh = newcomers = kept = stayed = 0
    for step in range(min(rounds, (pool - n) // per_round) + 1):
        if step:
            for tile in rng.choice(n, per_round, replace=False).tolist():
                seated[tile] = next(arriving)
        gallery = compose_gallery([faces[s] for s in seated], cols, rows, seed=step)
        tiles = find_tile_grid(gallery.image) or []
        tracker.assign(tiles, find_faces(detector, gallery.image, tiles), gallery.image, None)
        keys = [tracker.tile_key(t) for t in range(len(tiles))]
        for face, key in zip(seated, keys, strict=True):
            if step and face < n:
                kept, stayed = kept + (key_of[face] == key), stayed + 1
            elif step and face not in key_of:
                fresh, newcomers = fresh + (key not in keys_seen), newcomers + 1
            key_of.setdefault(face, key)
        keys_seen.update(keys)
    print(
        f"newcomers in a leaver's tile, no labels: {fresh}/{newcomers} given a new key = {fresh / newcomers:.0%}; "
        f"the first students kept theirs {kept}/{stayed} = {kept / stayed:.2%}"
    )
    return fresh / newcomers


def misread(name: str, rng: np.random.Generator) -> str:
    """The name with one of OCR's usual confusions, or itself when it has none of them."""
    confusions = [(a, b) for a, b in MISREADS if a in name]
    if not confusions:
        return name
    a, b = confusions[int(rng.integers(len(confusions)))]
    at = [i for i in range(len(name)) if name.startswith(a, i)]
    i = at[int(rng.integers(len(at)))]
    return name[:i] + b + name[i + len(a) :]


def bench_recording(detector, frames: int, rng: np.random.Generator, tracker: StudentTracker | None = None) -> None:
    n, cols, rows = 49, 7, 7
    drawn, clean = class_names(n, rng)
    off = set(range(40, 49))
    tracker, reader = tracker or StudentTracker(), NameReader()
    wrong = {s: (misread(drawn[s], rng), 1) for s in rng.choice(n, int(n * FIRST_FRAME_MISREAD), replace=False)}
    keys: dict[int, set[str]] = {s: set() for s in range(n)}
    right = shown = 0
    names: dict[str, str] = {}
    for _ in range(frames):
        labels = [wrong[s][0] if s in wrong else drawn[s] for s in range(n)]
        gallery = draw(list(range(n)), labels, off, cols, rows, seed=0)
        noisy = np.clip(gallery.image + rng.normal(0, 2.0, gallery.image.shape), 0, 255).astype(np.uint8)
        image = cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR)
        # The tiles as drawn: this measures names and identity, not finding tiles through a codec.
        tiles = gallery.tiles
        tracker.assign(tiles, find_faces(detector, image, tiles), image, reader.read(image, tiles))
        names = tracker.display_names()
        for s in range(n):
            key = tracker.tile_key(s)
            keys[s].add(key)
            right, shown = right + (names.get(key) == clean[s]), shown + 1
        wrong = {s: (text, left - 1) for s, (text, left) in wrong.items() if left > 1}
        for s in np.flatnonzero(rng.random(n) < MISREAD_CHANCE).tolist():
            wrong.setdefault(s, (misread(drawn[s], rng), int(rng.integers(1, 3))))
    students = len(set().union(*keys.values()))
    split = sum(len(k) > 1 for k in keys.values())
    last = sum(names.get(tracker.tile_key(s)) == clean[s] for s in range(n))
    print(
        f"recording, {frames} frames of 49 tiles, noise + JPEG 80, labels misread now and then: {students} students "
        f"for {n} people ({split} people under several keys); true name shown in the last frame {last}/{n}, in "
        f"{right}/{shown} = {right / shown:.1%} of tile-frames; Tesseract calls {reader.tesseract_calls}"
    )
    for s in range(n):
        if names.get(tracker.tile_key(s)) != clean[s]:
            print(f"      shown {names.get(tracker.tile_key(s))!r} for {clean[s]!r}")


def bench_cost(detector, frames: int, rng: np.random.Generator) -> float:
    drawn, _ = class_names(49, rng)
    gallery = draw(list(range(49)), drawn, set(range(40, 49)), 7, 7, seed=0)
    tiles = find_tile_grid(gallery.image) or []
    detections = find_faces(detector, gallery.image, tiles)
    # Without the periodic re-reads: this measures a frame in which no label is due for Tesseract.
    tracker, reader = StudentTracker(), NameReader(settings=NameSettings(reread_named_frames=0))
    tracker.assign(tiles, detections, gallery.image, reader.read(gallery.image, tiles))
    names_ms, match_ms = [], []
    for _ in range(frames):
        started = time.perf_counter()
        names = reader.read(gallery.image, tiles)
        read = time.perf_counter()
        tracker.assign(tiles, detections, gallery.image, names)
        names_ms.append((read - started) * 1000)
        match_ms.append((time.perf_counter() - read) * 1000)
    assert reader.tesseract_calls == 1
    total = [a + b for a, b in zip(names_ms, match_ms, strict=True)]
    print(f"identity per 49-tile frame, no OCR due ({frames} frames): median {statistics.median(total):.1f} ms")
    print(f"  label check {statistics.median(names_ms):.1f} ms + matching {statistics.median(match_ms):.1f} ms")
    print(f"  p90 {np.percentile(total, 90):.1f} ms")
    return statistics.median(total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__.splitlines()[0])
    parser.add_argument("--reshuffles", type=int, default=10)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--recording-frames", type=int, default=30)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(4)
    detector = make_detector("blazeface")
    bench_names(rng)
    bench_identity(detector, args.reshuffles, True, rng)
    bench_identity(detector, args.reshuffles, False, rng)
    bench_newcomers(detector, args.reshuffles, rng)
    bench_recording(detector, args.recording_frames, rng)
    bench_cost(detector, args.frames, rng)
    return 0


def _derangement(order: list[int], rng: np.random.Generator) -> list[int]:
    """`order` permuted so that every student lands on another tile."""
    while True:
        moved = [order[i] for i in rng.permutation(len(order))]
        if all(a != b for a, b in zip(moved, order, strict=True)):
            return moved


if __name__ == "__main__":
    sys.exit(main())
