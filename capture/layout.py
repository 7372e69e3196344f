"""Finds participant tiles on any video-call screen as rectangles of video, and names the layout.

Apps draw tiles in many ways: on a dark background with gaps (Zoom, Teams), edge to edge (Nextcloud Talk,
Meet's grid extension), rounded (LiveKit), in a browser window on a desktop, as a strip beside a screen
share, large and small together (Teams), framed by an active-speaker border. What they share is that a
tile is an axis-aligned rectangle of video whose four sides are straight edges: the picture changes
abruptly across them, against a gap, the window around it, the next tile or the frame's border. So:

1. long straight edges are found (horizontal ones from row differences, vertical ones from column
   differences; texture, which changes both ways, is left out); a side drawn over a few lines (blended by a
   down-scale) is one line;
2. every rectangle whose sides lie on lines holding such an edge is scored by how much of each side is
   edge (prefix sums); a rounded corner, a name label over the border or a dark face at the edge leaves
   most of a side. One with an edge right across its inside is two tiles (or a window), not one;
3. a rectangle holding two equal rectangles side by side is a container (a window, a panel), unless it has
   equal neighbours and its halves have none (a door frame down a strip tile's picture); tiles come
   in families of one size in rows or columns, so the rectangles with the most equal neighbours are taken
   first, then the larger of overlapping ones (an active-speaker border inside its tile, a picture on the
   wall inside the video);
4. a tile shows video (many distinct colours, and not mostly flat: a shared screen, a whiteboard or a chat
   panel is drawn, not filmed, and is no student's tile) or is the size of the video tiles and in line with
   them (a camera-off tile); where the tiles form a lattice, its cells that hold something (an avatar, a
   name) on the gaps' colour are camera-off tiles too, and so are the tile-like cells of further rows or
   columns of the lattice (a last row of camera-off tiles, video tiles too alike to show an edge between
   them, a last row the screenshot cuts a few pixels short); a small rectangle inside such a cell is part of
   its picture (a shelf, a picture frame); neighbours joined where a codec hid the edge between them, and a
   rectangle of a tile's picture found a few pixels off its cell, give way to the lattice's cells; a strip's
   last tile cut short by its panel's bar (a camera-off tile in a fill of its own) is found from that fill.

The regular gap grid of capture/grid.py (1-2 ms, exact on the gallery views it knows) is kept when it
finds at least as many tiles. Measured on the ten real screenshots of ../shared/galleries
(`python -m bench.galleries`): 146 of 148 tiles, none of them a shared screen or a chat panel (19 with
the gap grid alone); on composed galleries through JPEG at quality 50-80 or scaled to 640x360
(`python -m bench.layouts`): 99.4 % of 5052 tiles. The search costs 45-110 ms
of CPU a frame here (a 7x7 1080p gallery: 107 ms), so TileFinder runs it again only when a tile's sides
stop being edges, or for a frame without tiles when the screen changes as a whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from capture.grid import DEFAULT as DEFAULT_GRID
from capture.grid import find_tile_grid
from config import GridSettings, LayoutSettings
from vocabulary.records import Box, Layout

# The thresholds a school may tune are the configuration's [capture.layout] (config/classpulse.toml says why
# each has its value); these are the search's own workings.
DEFAULT = LayoutSettings()
# Edge runs broken by at most this many pixels (antialiasing, a bright pixel in a dark gap) are joined.
EDGE_BRIDGE = 5
# Edge runs this long (working pixels) mark where a tile side may be.
MIN_RUN = 24
# A side's position holds one edge run at least this share of the shortest side (rounded corners take
# the rest); few lines of a picture hold one.
ANCHOR_RUN = 0.8
# Positions of side candidates closer than this are one.
POSITION_MERGE = 2
# Of such positions, a later one replaces the first when it holds this many times the first's edge pixels.
STRONGER = 1.5
# Video shows at least this many distinct colours (5 bits a channel) in DISTINCT_SAMPLES pixels; flat
# UI panels, text and camera-off tiles show tens.
VIDEO_COLOURS = 100
DISTINCT_SAMPLES = 4096
# A lattice cell holds a camera-off tile when this share of its pixels differ from the gaps' colour (by more
# than BACKGROUND_TOLERANCE grey levels), and, beyond the tiles found, when the cell's outermost pixels are
# CAMERA_OFF_BORDER the gaps' colour (its content is inside it).
CELL_CONTENT = 0.01
CAMERA_OFF_BORDER = 0.9
BACKGROUND_TOLERANCE = 12
# A rectangle across a strip's whole column (or row), at most STRIP_PANEL times its tiles' width (the panel's
# margin around them) and MERGED_TILES to MERGED_TILES + 1 tiles long, is a tile joined with what lies beyond
# it where the picture hides the one edge between them (a dark sweater over a dark camera-off tile): not a
# tile of its own. A longer one is a panel of its own (Teams' round avatars and self-view below its strip).
STRIP_PANEL = 1.25
MERGED_TILES = 1.5
# Pixels (working) by which a tile's side may lie off its lattice cell's: the lattice's own rounding.
LATTICE_SLACK = 2
# Share of a smaller rectangle's area inside a lattice cell from which it is part of that cell's picture.
INSIDE_CELL = 0.9
# Below every grey level: the gaps' colour of tiles that fill the whole frame.
NO_BACKGROUND = -256
# A strip's camera-off tile at its end, cut short by the panel's own bar, runs at least this share of a cell.
SHORT_CELL = 0.6
# A frame without tiles is compared with the one last searched at this size (layout.screen_change).
THUMBNAIL = (64, 36)


@dataclass(frozen=True)
class TileLayout:
    """The tiles of one frame in reading order and how they are arranged; no tiles: Layout.NONE."""

    layout: Layout
    tiles: list[Box]


NO_TILES = TileLayout(Layout.NONE, [])


def find_tiles(
    image: np.ndarray, settings: LayoutSettings = DEFAULT, grid_settings: GridSettings = DEFAULT_GRID
) -> TileLayout:
    """The frame's participant tiles (see the module docstring). image: H x W x 3 BGR (or H x W grey) uint8;
    settings and grid_settings: the configuration's [capture.layout] and [capture.grid]."""
    grid = find_tile_grid(image, grid_settings)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = min(1.0, settings.work_width / image.shape[1])
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = _tiles_among(small, _rectangles(small, settings), settings)
    # The gap grid is exact where it holds; the rectangles win where it saw only part of the tiles.
    if grid is not None and len(grid) >= len(boxes):
        return TileLayout(Layout.GRID, grid)
    # One rectangle alone is a photo, a webcam or a screen share: followed face by face, not as a tile.
    if len(boxes) < 2:
        return NO_TILES
    tiles = [_scaled(box, 1 / scale, image.shape) for box in boxes]
    return TileLayout(_kind(tiles, image.shape, settings), _reading_order(tiles))


class TileFinder:
    """find_tiles for a stream of frames: a layout stays until its tiles' sides stop being edges, so the
    full search runs when the layout changes (or every recheck_frames), not on every frame. A frame with no
    tiles (a webcam, a screen share) is searched again when it changes as a whole: a new layout redraws the
    screen, a person moving in a webcam view does not. settings, grid: as find_tiles takes them."""

    def __init__(self, settings: LayoutSettings = DEFAULT, grid: GridSettings = DEFAULT_GRID) -> None:
        self.settings, self.grid = settings, grid
        self._last: TileLayout | None = None
        self._shape: tuple[int, ...] = ()
        self._thumbnail = np.zeros(0)
        self._age = 0

    def find(self, image: np.ndarray) -> TileLayout:
        self._age += 1
        settings = self.settings
        if self._last is not None and image.shape == self._shape and self._age < settings.recheck_frames:
            if self._last.tiles and _still_there(image, self._last.tiles, settings):
                return self._last
            change = float(np.mean(cv2.absdiff(_thumbnail(image), self._thumbnail)))
            if not self._last.tiles and change < settings.screen_change:
                return self._last
        self._last = find_tiles(image, settings, self.grid)
        self._shape, self._thumbnail, self._age = image.shape, _thumbnail(image), 0
        return self._last


def _thumbnail(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, THUMBNAIL, interpolation=cv2.INTER_AREA)


def _still_there(image: np.ndarray, tiles: list[Box], settings: LayoutSettings) -> bool:
    """Whether every tile's top and left sides are still edges in this frame (two thin strips a tile)."""
    for tile in tiles:
        if tile.y < 1 or tile.x < 1:
            continue
        top = image[tile.y - 1 : tile.y + 1, tile.x : tile.x + tile.w]
        left = image[tile.y : tile.y + tile.h, tile.x - 1 : tile.x + 1]
        if top.shape[0] < 2 or left.shape[1] < 2:
            return False
        across = _channel_max(cv2.absdiff(top[1:], top[:1])) > settings.edge_level
        down = _channel_max(cv2.absdiff(left[:, 1:], left[:, :1])) > settings.edge_level
        if across.mean() < settings.side_coverage or down.mean() < settings.side_coverage:
            return False
    return True


def _rectangles(image: np.ndarray, settings: LayoutSettings) -> list[tuple[Box, float]]:
    """Rectangles whose four sides run along straight edges, with their mean side coverage."""
    height, width = image.shape[:2]
    min_side = max(settings.min_side_pixels, round(min(width, height) * settings.min_side_fraction))
    # Locals: the loop below runs thousands of times a search.
    coverage, sides_mean, cut = settings.side_coverage, settings.sides_mean, settings.cut_coverage
    across, down = _edges(image, settings.edge_level)
    # The frame's own border is a tile side too (a gallery drawn edge to edge, a cropped screenshot): one
    # more row below and column to the right, and the first row and column, count as edge.
    across = np.vstack([across, np.ones((1, width), np.uint8)])
    across[0] = 1
    down = np.hstack([down, np.ones((height, 1), np.uint8)])
    down[:, 0] = 1
    # Coverage counts edge runs of MIN_RUN and more, joined over small breaks; a side's position needs one
    # run nearly a whole short side long, which few lines of a picture have.
    horizontal = _long_runs(across, (1, EDGE_BRIDGE), (1, MIN_RUN))
    vertical = _long_runs(down, (EDGE_BRIDGE, 1), (MIN_RUN, 1))
    anchor = round(min_side * ANCHOR_RUN)
    ys = _positions(cv2.morphologyEx(horizontal, cv2.MORPH_OPEN, np.ones((1, anchor), np.uint8)).sum(axis=1))
    xs = _positions(cv2.morphologyEx(vertical, cv2.MORPH_OPEN, np.ones((anchor, 1), np.uint8)).sum(axis=0))
    if len(xs) < 2 or len(ys) < 2:
        return []
    # A side read at a merged position counts the edge pixels of the lines merged into it.
    near = 2 * POSITION_MERGE + 1
    horizontal = cv2.dilate(horizontal, np.ones((near, 1), np.uint8))
    vertical = cv2.dilate(vertical, np.ones((1, near), np.uint8))
    # Edge pixels from each candidate side's start: row prefix sums along x, column prefix sums along y.
    along_x = np.concatenate([np.zeros((len(ys), 1), np.int32), np.cumsum(horizontal[ys], axis=1)], axis=1)
    along_y = np.concatenate([np.zeros((len(xs), 1), np.int32), np.cumsum(vertical[:, xs].T, axis=1)], axis=1)
    x_pairs = _pairs(xs, min_side)
    if not len(x_pairs):
        return []
    x1, x2 = xs[x_pairs[:, 0]], xs[x_pairs[:, 1]]
    # Coverage of each candidate top or bottom side: every side-row over every x pair. Sparse: few rows
    # cover a given stretch, so the rest is checked per x pair.
    rows = (along_x[:, x2] - along_x[:, x1]) / (x2 - x1)  # (len(ys), x pairs)
    covered = rows >= coverage
    found = []
    for q in np.flatnonzero(covered.sum(axis=0) >= 2):
        at = np.flatnonzero(covered[:, q])
        a, b = _upper_pairs(len(at))
        top, bottom = at[a], at[b]
        h = ys[bottom] - ys[top]
        w = x2[q] - x1[q]
        # Aspect limits as heights: w / h from min_aspect to max_aspect.
        keep = (h >= min_side) & (h * settings.min_aspect <= w) & (h * settings.max_aspect >= w)
        top, bottom, h = top[keep], bottom[keep], h[keep]
        if not len(top):
            continue
        left = (along_y[x_pairs[q, 0], ys[bottom]] - along_y[x_pairs[q, 0], ys[top]]) / h
        right = (along_y[x_pairs[q, 1], ys[bottom]] - along_y[x_pairs[q, 1], ys[top]]) / h
        upper, lower = rows[top, q], rows[bottom, q]
        # Elementwise, not np.stack(...).min(axis=0): this loop runs thousands of times a search.
        lowest = np.minimum(np.minimum(upper, lower), np.minimum(left, right))
        mean = (upper + lower + left + right) / 4
        for k in np.flatnonzero((lowest >= coverage) & (mean >= sides_mean)):
            if _cut_across(rows, int(q), top[k], bottom[k], cut) or _cut_down(
                along_y, ys, x_pairs[q], top[k], bottom[k], cut
            ):
                continue
            box = Box(int(x1[q]), int(ys[top[k]]), int(w), int(h[k]))
            found.append((box, float(mean[k])))
    return found


@functools.cache
def _upper_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of count items; asked for thousands of times a search, for a few distinct counts."""
    return np.triu_indices(count, k=1)


def _cut_across(rows: np.ndarray, q: int, top: int, bottom: int, cut: float) -> bool:
    """Whether a horizontal edge runs across `cut` of the rectangle inside it: two tiles, one above the other."""
    inside = rows[top + 1 : bottom, q]
    return bool(len(inside)) and bool((inside >= cut).any())


def _cut_down(along_y: np.ndarray, ys: np.ndarray, pair: np.ndarray, top: int, bottom: int, cut: float) -> bool:
    """Whether a vertical edge runs across `cut` of the rectangle inside it: two tiles side by side."""
    left, right = int(pair[0]), int(pair[1])
    if right - left < 2:
        return False
    inside = (along_y[left + 1 : right, ys[bottom]] - along_y[left + 1 : right, ys[top]]) / (ys[bottom] - ys[top])
    return bool((inside >= cut).any())


def _edges(image: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 masks of pixels that differ (by more than `level`) from the one above (across a horizontal edge)
    but not from the one to the left, and the other way round."""
    across = np.zeros(image.shape[:2], np.uint8)
    down = np.zeros(image.shape[:2], np.uint8)
    across[1:] = _channel_max(cv2.absdiff(image[1:], image[:-1])) > level
    down[:, 1:] = _channel_max(cv2.absdiff(image[:, 1:], image[:, :-1])) > level
    # A boundary changes across it, not along it; texture (foliage, a patterned shirt) changes both ways
    # and would otherwise join into long runs.
    return cv2.subtract(across, down), cv2.subtract(down, across)


def _channel_max(image: np.ndarray) -> np.ndarray:
    blue, green, red = cv2.split(image)
    return cv2.max(cv2.max(blue, green), red)


def _long_runs(mask: np.ndarray, bridge: tuple[int, int], run: tuple[int, int]) -> np.ndarray:
    joined = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones(bridge, np.uint8))
    return cv2.morphologyEx(joined, cv2.MORPH_OPEN, np.ones(run, np.uint8))


def _positions(run_pixels: np.ndarray) -> np.ndarray:
    """Lines holding a long edge run (run_pixels: each line's pixels in such runs). Lines within
    POSITION_MERGE of the first of them are one side drawn over several lines (blended by a down-scale, an
    antialiased border): the first of them, or a later one holding STRONGER times its pixels (the tiles'
    common side, where the first ran along one tile only: an active speaker's border)."""
    kept: list[int] = []
    first = -POSITION_MERGE - 1
    for line in np.flatnonzero(run_pixels):
        if line - first > POSITION_MERGE:
            kept.append(int(line))
            first = int(line)
        elif run_pixels[line] > STRONGER * run_pixels[kept[-1]]:
            kept[-1] = int(line)
    return np.array(kept, np.int64)


def _pairs(positions: np.ndarray, min_side: int) -> np.ndarray:
    """Index pairs (i, j), i < j, of positions at least min_side apart."""
    i, j = np.triu_indices(len(positions), k=1)
    keep = positions[j] - positions[i] >= min_side
    return np.stack([i[keep], j[keep]], axis=1)


def _tiles_among(image: np.ndarray, found: list[tuple[Box, float]], settings: LayoutSettings) -> list[Box]:
    """The participant tiles among the edge rectangles (steps 3 and 4 of the module docstring).

    No rectangle left holds an edge right across it (see _rectangles). One that holds two equal rectangles
    side by side or one above the other is a container (the call window, a panel, a strip), not a tile;
    of the others, the largest of overlapping ones is the tile, and smaller ones inside it are what its
    video shows (a picture frame, a window, a self-view).
    """
    if not found:
        return []
    overlap, tolerance = settings.tile_overlap, settings.size_tolerance
    boxes = np.array([[b.x, b.y, b.w, b.h] for b, _ in found], np.int64)
    x, y, w, h = boxes.T
    area = w * h
    inter_w = np.minimum(x + w, (x + w)[:, None]) - np.maximum(x, x[:, None])
    inter_h = np.minimum(y + h, (y + h)[:, None]) - np.maximum(y, y[:, None])
    inter = np.clip(inter_w, 0, None) * np.clip(inter_h, 0, None)
    holds = (inter == area[None, :]) & (area[None, :] < area[:, None])  # holds[i, j]: j lies inside i
    apart = inter <= overlap * np.minimum(area, area[:, None])
    same = (np.abs(w - w[:, None]) <= tolerance * w) & (np.abs(h - h[:, None]) <= tolerance * h)
    aligned = (np.abs(y - y[:, None]) <= tolerance * h) | (np.abs(x - x[:, None]) <= tolerance * w)
    siblings = apart & same & aligned
    container = [_container(i, holds, siblings) for i in range(len(found))]
    # Tiles come in families of one size in rows or columns; a rectangle made of parts of several tiles
    # rarely has as many equal neighbours. Among equals, the larger one.
    support = siblings.sum(axis=1)
    kept: list[Box] = []
    for i in sorted(np.flatnonzero(~np.array(container)), key=lambda i: (-support[i], -area[i])):
        box = found[i][0]
        if all(_overlap(box, other) <= overlap for other in kept):
            kept.append(box)
    video = [box for box in kept if _is_video(image, box, settings.screen_flat)]
    if not video:
        return []
    # Camera-off tiles: the size of a video tile and in its row or column, showing something (a name, an
    # avatar); an empty one is a panel's margin beside the tiles.
    flat = [
        box
        for box in kept
        if box not in video
        and any(_same_size(box, v, tolerance) and _in_line(box, v, tolerance) for v in video)
        and _holds_something(image, box)
    ]
    tiles = video + flat
    cells = _lattice_cells(image, tiles, settings)
    # A small rectangle in a lattice cell was a picture in that tile's video (a shelf, a frame), not a tile.
    return [t for t in tiles if not any(_overlap(t, c) > overlap for c in cells)] + cells


def _container(i: int, holds: np.ndarray, siblings: np.ndarray) -> bool:
    """Whether rectangle i holds two equal rectangles side by side (or one above the other) that are tiles.

    A tile whose picture holds a straight line most of the way across it (a door frame down to a table)
    holds two such halves too; a gap between two tiles runs right across their container (see _cut_across),
    a line in a picture rarely does. Where the rectangle has equal neighbours (the other tiles of its strip
    or row) and its halves have none beyond it and those neighbours (whose pictures may hold the same
    line), it is that tile: a window or a panel has no equal neighbours, and tiles inside a container have
    theirs. holds[i, j]: j lies inside i; siblings[i, j]: i and j are apart, of one size and in line.
    """
    held = np.flatnonzero(holds[i])
    pairs = siblings[np.ix_(held, held)]
    if not pairs.any():
        return False
    neighbours = np.flatnonzero(siblings[i])
    if not len(neighbours):
        return True
    beyond = ~holds[i] & ~holds[neighbours].any(axis=0)
    beyond[i] = False
    halves = held[pairs.any(axis=1)]
    return bool(siblings[np.ix_(halves, np.flatnonzero(beyond))].any())


def _lattice_cells(image: np.ndarray, tiles: list[Box], settings: LayoutSettings) -> list[Box]:
    """Camera-off tiles with no edge of their own (drawn on the gaps' colour), in the lattice of equal tiles,
    and tiles in rows or columns of the lattice beyond the tiles found (every tile of a last row on camera
    off, or too alike its neighbours to show an edge). A single row or column of tiles (a strip beside or
    over a shared screen) is a lattice too, grown along its length only."""
    if len(tiles) < 3:
        return []
    tolerance = settings.size_tolerance
    w = int(np.median([t.w for t in tiles]))
    h = int(np.median([t.h for t in tiles]))
    same = [t for t in tiles if abs(t.w - w) <= tolerance * w and abs(t.h - h) <= tolerance * h]
    xs, ys = _lattice_axis([t.x for t in same], w, tolerance), _lattice_axis([t.y for t in same], h, tolerance)
    if xs is None or ys is None or max(len(xs), len(ys)) < 2:
        return []
    found_xs, found_ys = xs, ys  # the lattice of the tiles found, before it grows
    # A strip's one column (or row), where the lattice is one.
    column, row = xs[0] if len(xs) == 1 else None, ys[0] if len(ys) == 1 else None
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    occupied = np.zeros(grey.shape, bool)
    for tile in tiles:
        occupied[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w] = True
    # The gaps' colour: what the lattice's cells show where no tile is, most often (or, in a lattice of
    # tiles found edge to edge, the rest of the frame; tiles filling the whole frame have none, and every
    # pixel differs from NO_BACKGROUND).
    inside = grey[ys[0] : ys[-1] + h, xs[0] : xs[-1] + w][~occupied[ys[0] : ys[-1] + h, xs[0] : xs[-1] + w]]
    if inside.size == 0:
        inside = grey[~occupied]
    background = int(np.bincount(inside.ravel(), minlength=256).argmax()) if inside.size else NO_BACKGROUND

    def content(cell: Box) -> float:
        view = grey[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w]
        return float((np.abs(view.astype(np.int16) - background) > BACKGROUND_TOLERANCE).mean())

    def tile_like(cell: Box) -> bool:
        """A camera-off tile (something small inside a cell of the gaps' colour) or video; not a panel, a
        wallpaper, or a piece of a window's frame."""
        view = grey[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w]
        border = np.concatenate([view[0], view[-1], view[:, 0], view[:, -1]]).astype(np.int16)
        plain_border = float((np.abs(border - background) <= BACKGROUND_TOLERANCE).mean()) >= CAMERA_OFF_BORDER
        share = content(cell)
        camera_off = plain_border and CELL_CONTENT <= share <= settings.camera_off_content
        return camera_off or _is_video(image, cell, settings.screen_flat)

    def merged(tile: Box) -> bool:
        """Tiles of a strip joined with what lies beyond them (see STRIP_PANEL), or two neighbours (or two by
        two) in the lattice joined where the picture hides the edges between them (walls of one colour after
        a codec): the cells it covers are searched as free, and it gives way to those found."""
        if column is not None:
            across = tile.x <= column and tile.x + tile.w >= column + w and tile.w <= STRIP_PANEL * w
            return across and _two_tiles_long(tile.h, h)
        if row is not None:
            across = tile.y <= row and tile.y + tile.h >= row + h and tile.h <= STRIP_PANEL * h
            return across and _two_tiles_long(tile.w, w)
        on_lines = any(abs(tile.x - x) <= tolerance * w for x in found_xs) and any(
            abs(tile.y - y) <= tolerance * h for y in found_ys
        )
        wide, high = _two_tiles_long(tile.w, w), _two_tiles_long(tile.h, h)
        one_wide, one_high = abs(tile.w - w) <= tolerance * w, abs(tile.h - h) <= tolerance * h
        return on_lines and (wide or high) and (wide or one_wide) and (high or one_high)

    def astray(tile: Box) -> bool:
        """A tile's size but sides more than LATTICE_SLACK off its lattice cell: a rectangle of its picture
        (a wall's edge a codec sharpened) found where the tile's own edge was too faint; the cell is the tile."""
        if not (abs(tile.w - w) <= tolerance * w and abs(tile.h - h) <= tolerance * h):
            return False
        cell = nearest_cell(tile)
        x, y = cell.x, cell.y
        off = max(abs(tile.x - x), abs(tile.y - y), abs(tile.x + tile.w - x - w), abs(tile.y + tile.h - y - h))
        return _overlap(tile, cell) > 0.5 and off > LATTICE_SLACK

    def nearest_cell(tile: Box) -> Box:
        return Box(min(found_xs, key=lambda x: abs(x - tile.x)), min(found_ys, key=lambda y: abs(y - tile.y)), w, h)

    def picture_part(tile: Box) -> bool:
        """Part of a cell's picture, not a tile: under part_of_tile of a cell's area, or narrower or lower than
        a cell beyond the size tolerance and lying inside one (a curtain's folds between the tile's top and
        bottom)."""
        if tile.w * tile.h < settings.part_of_tile * w * h:
            return True
        smaller = tile.w < (1 - tolerance) * w or tile.h < (1 - tolerance) * h
        return smaller and _overlap(tile, nearest_cell(tile)) >= INSIDE_CELL

    def free(cell: Box) -> bool:
        return not any(
            _overlap(cell, t) > 0.2 for t in tiles if not picture_part(t) and not merged(t) and not astray(t)
        )

    columns: list[int] = xs
    ys = _extended(ys, h, grey.shape[0], lambda y: [Box(x, y, w, h) for x in columns], tile_like, free)
    rows: list[int] = ys
    xs = _extended(xs, w, grey.shape[1], lambda x: [Box(x, y, w, h) for y in rows], tile_like, free)
    cells = []
    for y in ys:
        for x in xs:
            # The last row or column may be cut a few pixels short by the frame's edge.
            cell = Box(int(x), int(y), min(w, grey.shape[1] - int(x)), min(h, grey.shape[0] - int(y)))
            if free(cell) and cell.h >= (1 - tolerance) * h and cell.w >= (1 - tolerance) * w:
                inner = ys[0] <= y <= ys[-1] and xs[0] <= x <= xs[-1]
                if content(cell) >= CELL_CONTENT and (inner or tile_like(cell)):
                    cells.append(cell)
    if column is not None:
        cells += _strip_ends(grey, ys, h, Box(column, 0, w, grey.shape[0]), background, settings, free)
    elif row is not None:
        cells += _strip_ends(grey, xs, w, Box(0, row, grey.shape[1], h), background, settings, free)
    return cells


def _strip_ends(
    grey: np.ndarray,
    starts: list[int],
    size: int,
    band: Box,
    background: int,
    settings: LayoutSettings,
    free: Callable[[Box], bool],
) -> list[Box]:
    """Camera-off tiles at the ends of a strip that are shorter than its cells (Zoom's floating strip: the
    panel's own bar cuts the last one short) and drawn in a fill of their own, not the gaps' colour: past the
    strip's end and the gap after it, the lines of that fill, when they run for SHORT_CELL of a cell or more
    and hold something (a name). band: the strip's column (or row) over the whole frame."""
    if len(starts) < 2:
        return []
    vertical = band.h == grey.shape[0]
    view = grey[:, band.x : band.x + band.w] if vertical else grey[band.y : band.y + band.h].T
    profile = np.median(view, axis=1).astype(np.int16)
    # The fill may start anywhere in the gap after the strip's end, which the lattice knows to a few pixels.
    slack = max(0, round((starts[-1] - starts[0]) / (len(starts) - 1)) - size) + round(settings.size_tolerance * size)
    found = []
    for step in (-1, 1):
        # Lines outward from the strip's end (read backwards before its first tile).
        outward = profile if step > 0 else profile[::-1]
        edge = starts[-1] + size if step > 0 else len(profile) - starts[0]
        lines = outward[edge : edge + slack + size]
        run, skip, level = 0, 0, 0
        for first in np.flatnonzero(np.abs(lines[: slack + 1] - background) > BACKGROUND_TOLERANCE):
            # The fill's level as most of such a tile would show it (a first line may blend it with the gap).
            fill_level = int(np.median(lines[first : first + max(1, round(SHORT_CELL * size))]))
            off = np.flatnonzero(np.abs(lines[first:] - fill_level) > BACKGROUND_TOLERANCE)
            length = min(size, int(off[0]) if len(off) else len(lines) - int(first))
            if length > run:
                run, skip, level = length, int(first), fill_level
        start = edge + skip if step > 0 else len(profile) - edge - skip - run
        cell = Box(band.x, start, band.w, run) if vertical else Box(start, band.y, run, band.h)
        fill = grey[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w].astype(np.int16)
        share = float((np.abs(fill - level) > BACKGROUND_TOLERANCE).mean()) if fill.size else 0.0
        if run >= SHORT_CELL * size and CELL_CONTENT <= share <= settings.camera_off_content and free(cell):
            found.append(cell)
    return found


def _two_tiles_long(length: int, size: int) -> bool:
    return MERGED_TILES * size <= length <= (MERGED_TILES + 1) * size


def _extended(
    starts: list[int],
    size: int,
    limit: int,
    line_of: Callable[[int], list[Box]],
    tile_like: Callable[[Box], bool],
    free: Callable[[Box], bool],
) -> list[int]:
    """The lattice's starts along one axis, grown outward by whole pitches while the next row (or column)
    fits in the frame and holds a tile-like cell that no tile found covers. A single start has no pitch: a
    strip is not grown across, where beside it lies the page it floats over."""
    if len(starts) < 2:
        return starts
    pitch = (starts[-1] - starts[0]) / (len(starts) - 1)
    grown = list(starts)
    for step in (-1, 1):
        while True:
            nxt = round((grown[0] if step < 0 else grown[-1]) + step * pitch)
            if nxt < 0 or nxt + size > limit or not any(free(c) and tile_like(c) for c in line_of(nxt)):
                break
            grown = [nxt, *grown] if step < 0 else [*grown, nxt]
    return grown


def _lattice_axis(starts: list[int], size: int, tolerance: float) -> list[int] | None:
    """Evenly spaced tile starts along one axis covering the given ones, or None when they are not even;
    starts within `tolerance` of a tile's size are one."""
    unique: list[int] = []
    for start in sorted(starts):
        if not unique or start - unique[-1] > size * tolerance:
            unique.append(start)
    if len(unique) < 2:
        return unique
    steps = np.diff(unique)
    # Whole rows (columns) of tiles may lie unfound between two found ones (joined where a codec hid the
    # edges between them): the shortest step spans a whole number of tiles.
    pitch = float(steps.min()) / max(1, round(float(steps.min()) / size))
    if pitch < size * (1 - tolerance) or pitch > size * 1.25:
        return None
    counts = steps / pitch
    if np.abs(counts - np.round(counts)).max() > 0.1:
        return None
    # The pitch over the whole span: one step alone is a pixel or two off, which adds up over many rows.
    cells = int(round((unique[-1] - unique[0]) / pitch))
    pitch = (unique[-1] - unique[0]) / cells
    return [round(unique[0] + k * pitch) for k in range(cells + 1)]


def _holds_something(image: np.ndarray, box: Box) -> bool:
    """Whether CELL_CONTENT of a box's inside (its sides' own pixels left out) differs from its fill."""
    inset = max(2, min(box.w, box.h) // 50)
    inside = image[box.y + inset : box.y + box.h - inset, box.x + inset : box.x + box.w - inset]
    if inside.size == 0:
        return False
    grey = cv2.cvtColor(np.ascontiguousarray(inside), cv2.COLOR_BGR2GRAY)
    fill = int(np.bincount(grey.ravel(), minlength=256).argmax())
    return float((np.abs(grey.astype(np.int16) - fill) > BACKGROUND_TOLERANCE).mean()) >= CELL_CONTENT


def _is_video(image: np.ndarray, box: Box, screen_flat: float) -> bool:
    """Many distinct colours, and less than `screen_flat` of it flat: a shared screen, a whiteboard or a chat
    panel is colourful too, but drawn, not filmed."""
    return _distinct_colours(image, box) >= VIDEO_COLOURS and _flat_share(image, box) < screen_flat


def _flat_share(image: np.ndarray, box: Box) -> float:
    """The share of a box's pixels equal to their right and lower neighbours in every channel."""
    crop = image[box.y : box.y + box.h, box.x : box.x + box.w]
    right = _channel_max(cv2.absdiff(crop[:-1, 1:], crop[:-1, :-1]))
    below = _channel_max(cv2.absdiff(crop[1:, :-1], crop[:-1, :-1]))
    return float(np.mean((right == 0) & (below == 0))) if right.size else 1.0


def _distinct_colours(image: np.ndarray, box: Box) -> int:
    crop = image[box.y : box.y + box.h, box.x : box.x + box.w]
    step = max(1, int(np.sqrt(box.w * box.h / DISTINCT_SAMPLES)))
    q = (crop[::step, ::step] >> 3).astype(np.int32)
    return len(np.unique(q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2]))


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(0, w) * max(0, h) / min(a.w * a.h, b.w * b.h)


def _same_size(a: Box, b: Box, tolerance: float) -> bool:
    return abs(a.w - b.w) <= tolerance * b.w and abs(a.h - b.h) <= tolerance * b.h


def _in_line(a: Box, b: Box, tolerance: float) -> bool:
    return abs(a.y - b.y) <= tolerance * b.h or abs(a.x - b.x) <= tolerance * b.w


def _scaled(box: Box, factor: float, shape: tuple[int, ...]) -> Box:
    if factor == 1.0:
        return box
    x, y = round(box.x * factor), round(box.y * factor)
    w = min(round((box.x + box.w) * factor), shape[1]) - x
    h = min(round((box.y + box.h) * factor), shape[0]) - y
    return Box(x, y, w, h)


def _reading_order(tiles: list[Box]) -> list[Box]:
    """Rows top to bottom (a tile starting within half the shortest tile's height is in the same row), then left
    to right."""
    tiles = sorted(tiles, key=lambda t: (t.y, t.x))
    row_step = min(t.h for t in tiles) / 2
    rows: list[list[Box]] = []
    for tile in tiles:
        if rows and tile.y - rows[-1][0].y < row_step:
            rows[-1].append(tile)
        else:
            rows.append([tile])
    return [tile for row in rows for tile in sorted(row, key=lambda t: t.x)]


def _kind(tiles: list[Box], shape: tuple[int, ...], settings: LayoutSettings) -> Layout:
    first, tolerance = tiles[0], settings.size_tolerance
    equal = all(_same_size(t, first, tolerance) for t in tiles)
    one_line = all(abs(t.x - first.x) <= tolerance * first.w for t in tiles) or all(
        abs(t.y - first.y) <= tolerance * first.h for t in tiles
    )
    area = sum(t.w * t.h for t in tiles) / (shape[0] * shape[1])
    if one_line and area < settings.strip_area:
        return Layout.STRIP
    return Layout.GRID if equal else Layout.IRREGULAR
