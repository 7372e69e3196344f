"""Test and benchmark helper: composes synthetic video-call gallery screenshots from real face images.

The layout copies Zoom's gallery view: a near-black background, equal 16:9 tiles in a centred grid separated
by a few pixels, a last row that may hold fewer tiles (centred), dark-grey camera-off tiles showing a name.
Each video tile gets a muted "room" backdrop and one face pasted near its centre. With `names`, every tile
also carries the participant's name on a dark label in its bottom-left corner, as Zoom draws it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vocabulary.records import Box

if TYPE_CHECKING:
    from model.data import FerData

FER_CSV = Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz"

# Names with the punctuation real class rosters have, as a clean OCR read should return them.
PARTICIPANT_NAMES = (
    "Ada Lovelace",
    "Sean O'Brien",
    "Anne-Marie Dubois",
    "Martin King Jr.",
    "Zoe Chen",
    "Li Wei",
    "Priya Natarajan",
    "Jose Garcia",
    "Mary-Kate O'Neil",
    "D'Andre Jackson",
    "Kim Nguyen",
)

BACKGROUND_BGR = (12, 12, 12)
CAMERA_OFF_BGR = (42, 42, 42)
TILE_ASPECT = 16 / 9
# Pasted faces span this fraction of the tile height (a webcam framing a head and shoulders).
FACE_HEIGHT_RANGE = (0.55, 0.70)
# Faces sit off the tile centre by up to this fraction of the free space on either side.
FACE_SHIFT = 0.4
# Tight face crops (FER2013) get a faded border this wide on each side, as a fraction of the face height,
# so the detector sees the face blend into the room instead of a hard-edged square.
CONTEXT_PAD = 0.2
# Name labels: near-black, mostly opaque, white text; their text height follows the label font's scale.
LABEL_BGR = (22, 22, 22)
LABEL_OPACITY = 0.8
NAME_BGR = (245, 245, 245)
MUTE_BGR = (40, 40, 230)
TITLE_BAR_BGR = (90, 90, 90)


@dataclass(frozen=True)
class LabelStyle:
    """How name labels are drawn: an OpenCV Hershey font, its scale and stroke thickness, and where.

    place: "label", Zoom's and Teams' dark box in the bottom-left corner; "over-video", Meet's white text
    on the picture itself, bottom left; "bottom-centre", Nextcloud Talk's larger white text centred along
    the bottom; "title-bar", BigBlueButton's grey bar above the tile (the gallery's gap must hold it);
    "none", no label (camera-off tiles still show their name in the middle).
    """

    font: int = cv2.FONT_HERSHEY_SIMPLEX
    scale: float = 0.5
    thickness: int = 1
    place: str = "label"


ZOOM_LABEL = LabelStyle()


@dataclass(frozen=True)
class Gallery:
    image: np.ndarray  # H x W x 3 BGR uint8
    tiles: list[Box]  # reading order
    faces: list[Box | None]  # per tile: where the face image was pasted, None for camera-off tiles


def compose_gallery(
    faces: Sequence[np.ndarray],
    cols: int,
    rows: int,
    size: tuple[int, int] = (1920, 1080),
    gap: int = 6,
    seed: int = 0,
    camera_off: frozenset[int] | set[int] = frozenset(),
    names: Sequence[str] | None = None,
    label: LabelStyle = ZOOM_LABEL,
    muted: frozenset[int] | set[int] = frozenset(),
) -> Gallery:
    """A gallery of len(faces) + len(camera_off) tiles; tiles whose index is in camera_off show a name, not a face.

    faces: grey (H x W) or BGR (H x W x 3) uint8 images of any size, used in order for the video tiles.
    The tiles must fill exactly `rows` rows of at most `cols` tiles.
    names: one per tile, drawn on a bottom-left label in `label`'s style; tiles in `muted` get a red
    mute icon before the name.
    """
    count = len(faces) + len(camera_off)
    if not (cols >= 1 and (rows - 1) * cols < count <= rows * cols):
        raise ValueError(f"{count} tiles do not fill exactly {rows} rows of {cols}")
    if any(not 0 <= i < count for i in camera_off):
        raise ValueError(f"camera_off indices must be in [0, {count})")
    if names is not None and len(names) != count:
        raise ValueError(f"{len(names)} names for {count} tiles")
    rng = np.random.default_rng(seed)
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND_BGR
    tiles = _tile_boxes(count, cols, rows, width, height, gap)
    face_images = iter(faces)
    pasted: list[Box | None] = []
    for index, tile in enumerate(tiles):
        view = image[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w]
        if index in camera_off:
            _draw_camera_off(view, f"Student {index + 1}" if names is None else names[index])
            pasted.append(None)
        else:
            _draw_room(view, rng)
            face = _paste_face(view, next(face_images), rng)
            pasted.append(Box(tile.x + face.x, tile.y + face.y, face.w, face.h))
        if names is None or label.place == "none":
            continue
        if label.place == "title-bar":
            _draw_title_bar(image, tile, names[index], label)
        elif label.place == "label":
            _draw_name_label(view, names[index], label, index in muted)
        else:
            draw_name_on_video(view, names[index], label, centred=label.place == "bottom-centre")
    return Gallery(image=image, tiles=tiles, faces=pasted)


def faces_found_alone(gallery: Gallery) -> set[int]:
    """The face tiles whose face the real detector finds when that tile's pixels are all it is shown.

    FER2013 holds cartoons, hands over faces and a few non-faces that BlazeFace rightly misses, so which faces
    of a random draw are findable depends on the draw; a gallery test asks that the gallery path (layout,
    tile views, merging) loses none of these, and reports no others.
    """
    from capture.detect import make_detector
    from capture.detect.regions import find_faces

    detector = make_detector("blazeface")
    found = set()
    for index, (tile, face) in enumerate(zip(gallery.tiles, gallery.faces, strict=True)):
        if face is None:
            continue
        alone = np.ascontiguousarray(gallery.image[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w])
        if len(find_faces(detector, alone, [Box(0, 0, tile.w, tile.h)])):
            found.add(index)
    return found


def fer_faces(n: int, seed: int = 0, usage: str = "PublicTest") -> tuple[np.ndarray, np.ndarray]:
    """n FER2013 faces (n, 48, 48) uint8 and their labels (n,), drawn at random from one usage split."""
    data = _fer_split(usage)
    chosen = np.random.default_rng(seed).choice(len(data), size=n, replace=False)
    return data.images[chosen], data.labels[chosen]


def astronaut() -> np.ndarray:
    """skimage's astronaut photo (512x512) as BGR; her face is ASTRONAUT_FACE."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


# Marked by hand on astronaut(): brows to chin, cheek to cheek; her eyes' centres (right, left in the image
# order BlazeFace uses) and half an eye's width.
ASTRONAUT_FACE = Box(180, 85, 92, 92)
ASTRONAUT_EYES = ((203, 104), (246, 104))
ASTRONAUT_HALF_EYE = 10


def eyes_painted_shut(image: np.ndarray) -> np.ndarray:
    """The astronaut with skin over each eye and a dark lash line: eyes that read as closed."""
    shut = image.copy()
    for x, y in ASTRONAUT_EYES:
        skin = image[y + 2 * ASTRONAUT_HALF_EYE, x].tolist()
        axes = (round(ASTRONAUT_HALF_EYE * 1.3), round(ASTRONAUT_HALF_EYE * 0.7))
        cv2.ellipse(shut, (x, y), axes, 0, 0, 360, skin, -1)
        half = ASTRONAUT_HALF_EYE
        cv2.line(shut, (x - half, y), (x + half, y), (40, 40, 60), 2)
    return shut


def grace_hopper() -> np.ndarray | None:
    """matplotlib's grace_hopper.jpg (512 wide, 600 high) as BGR, or None without matplotlib."""
    try:
        from matplotlib import cbook
    except ImportError:
        return None
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        return cv2.imdecode(np.frombuffer(file.read(), np.uint8), cv2.IMREAD_COLOR)


def lfw_faces(n: int, start: int = 0) -> list[np.ndarray]:
    """n of skimage's 25x25 grey LFW face crops (the first 100 of lfw_subset are faces) as uint8."""
    return list(_lfw_faces()[start : start + n])


@functools.cache
def _fer_split(usage: str) -> FerData:
    from model.data import load_fer2013

    return load_fer2013(FER_CSV, usages=(usage,))


@functools.cache
def _lfw_faces() -> np.ndarray:
    from skimage import data

    return (data.lfw_subset()[:100] * 255).astype(np.uint8)


def _tile_boxes(count: int, cols: int, rows: int, width: int, height: int, gap: int) -> list[Box]:
    """Largest 16:9 tiles whose grid fits the frame with `gap` pixels between and around them, centred."""
    tile_w = min((width - (cols + 1) * gap) / cols, (height - (rows + 1) * gap) / rows * TILE_ASPECT)
    tile_w, tile_h = int(tile_w), int(tile_w / TILE_ASPECT)
    top = (height - rows * tile_h - (rows - 1) * gap) // 2
    boxes = []
    for row in range(rows):
        in_row = min(cols, count - row * cols)
        left = (width - in_row * tile_w - (in_row - 1) * gap) // 2
        y = top + row * (tile_h + gap)
        boxes += [Box(left + c * (tile_w + gap), y, tile_w, tile_h) for c in range(in_row)]
    return boxes


def _draw_camera_off(view: np.ndarray, name: str) -> None:
    view[:] = CAMERA_OFF_BGR
    scale = view.shape[0] / 200
    (text_w, text_h), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    origin = ((view.shape[1] - text_w) // 2, (view.shape[0] + text_h) // 2)
    cv2.putText(view, name, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)


def _draw_name_label(view: np.ndarray, name: str, style: LabelStyle, muted: bool) -> None:
    """A dark, slightly see-through label in the bottom-left corner with the name in white."""
    (text_w, text_h), baseline = cv2.getTextSize(name, style.font, style.scale, style.thickness)
    pad = max(3, text_h // 2)
    icon = text_h + pad if muted else 0
    label_h = text_h + baseline + 2 * pad
    label_w = min(view.shape[1] - 4, icon + text_w + 2 * pad)
    top, left = view.shape[0] - 4 - label_h, 4
    region = view[top : top + label_h, left : left + label_w]
    region[:] = (LABEL_OPACITY * np.array(LABEL_BGR) + (1 - LABEL_OPACITY) * region).astype(np.uint8)
    if muted:  # a microphone with a slash through it
        cx, cy, r = left + pad + text_h // 2, top + label_h // 2, max(2, text_h // 2)
        cv2.ellipse(view, (cx, cy), (max(1, r // 2), r), 0, 0, 360, MUTE_BGR, -1, cv2.LINE_AA)
        cv2.line(view, (cx - r, cy + r), (cx + r, cy - r), MUTE_BGR, 1, cv2.LINE_AA)
    origin = (left + pad + icon, top + pad + text_h)
    cv2.putText(view, name, origin, style.font, style.scale, NAME_BGR, style.thickness, cv2.LINE_AA)


def draw_name_on_video(view: np.ndarray, name: str, style: LabelStyle, centred: bool = False) -> None:
    """The name in white straight on the picture near the bottom, with the faint shadow apps give it."""
    (text_w, text_h), baseline = cv2.getTextSize(name, style.font, style.scale, style.thickness)
    x = (view.shape[1] - text_w) // 2 if centred else max(4, text_h // 2)
    y = view.shape[0] - baseline - max(4, text_h // 2)
    cv2.putText(view, name, (x + 1, y + 1), style.font, style.scale, (40, 40, 40), style.thickness, cv2.LINE_AA)
    cv2.putText(view, name, (x, y), style.font, style.scale, NAME_BGR, style.thickness, cv2.LINE_AA)


def draw_label_with_icon(view: np.ndarray, name: str, style: LabelStyle, icon_bgr: tuple[int, int, int]) -> int:
    """A dark label in the bottom-left corner holding a solid person icon half again as tall as the letters
    (BigBlueButton, LiveKit), then the name in white; returns the x right of the icon."""
    (text_w, text_h), _ = cv2.getTextSize(name, style.font, style.scale, style.thickness)
    pad, icon_h, left = text_h // 2, round(text_h * 1.5), 8
    top = view.shape[0] - 8 - icon_h - 2 * pad
    view[top : top + icon_h + 2 * pad, left : left + icon_h + text_w + 4 * pad] = LABEL_BGR
    centre, head = left + pad + icon_h // 2, icon_h // 4
    cv2.circle(view, (centre, top + pad + head), head, icon_bgr, -1, cv2.LINE_AA)
    cv2.ellipse(view, (centre, top + pad + icon_h), (icon_h // 2, icon_h // 2), 0, 180, 360, icon_bgr, -1, cv2.LINE_AA)
    origin = (left + 2 * pad + icon_h, top + pad + icon_h - (icon_h - text_h) // 2)
    cv2.putText(view, name, origin, style.font, style.scale, NAME_BGR, style.thickness, cv2.LINE_AA)
    return left + pad + icon_h


def _draw_title_bar(image: np.ndarray, tile: Box, name: str, style: LabelStyle) -> None:
    """A grey bar as wide as the tile just above it, with the name in white at its left."""
    (_, text_h), baseline = cv2.getTextSize(name, style.font, style.scale, style.thickness)
    bar_h = text_h + baseline + 6
    if bar_h > tile.y:
        raise ValueError("the gallery's gap is too small for a title bar above the tiles")
    image[tile.y - bar_h : tile.y, tile.x : tile.x + tile.w] = TITLE_BAR_BGR
    origin = (tile.x + 6, tile.y - baseline - 3)
    cv2.putText(image, name, origin, style.font, style.scale, NAME_BGR, style.thickness, cv2.LINE_AA)


def _draw_room(view: np.ndarray, rng: np.random.Generator) -> None:
    """A muted wall colour with a vertical light gradient and sensor noise, like a webcam backdrop."""
    h, w = view.shape[:2]
    wall = rng.uniform(70, 190, size=3)
    light = np.linspace(1.15, 0.8, h)[:, None, None]
    noise = rng.normal(0, 4, size=(h, w, 3))
    view[:] = np.clip(wall * light + noise, 0, 255).astype(np.uint8)


def _paste_face(view: np.ndarray, face: np.ndarray, rng: np.random.Generator) -> Box:
    """Blend the face image into the tile near its centre; returns where the face itself went (tile pixels).

    The face is first padded with a blurred copy of its own edge pixels, and only that padding is faded
    into the room, so the whole face stays visible and the detector still sees a head, not a pasted square.
    """
    face_bgr = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 else face
    tile_h, tile_w = view.shape[:2]
    face_h = int(tile_h * rng.uniform(*FACE_HEIGHT_RANGE))
    face_w = min(tile_w - 2, round(face_h * face_bgr.shape[1] / face_bgr.shape[0]))
    resized = cv2.resize(face_bgr, (face_w, face_h), interpolation=cv2.INTER_CUBIC)
    pad = max(1, min(round(face_h * CONTEXT_PAD), (tile_h - face_h) // 2, (tile_w - face_w) // 2))
    padded = cv2.copyMakeBorder(resized, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=max(1.0, pad / 3))
    inside = np.zeros(padded.shape[:2], np.float32)
    inside[pad : pad + face_h, pad : pad + face_w] = 1
    padded = np.where(inside[..., None] > 0, padded, blurred)
    alpha = cv2.GaussianBlur(inside, (0, 0), sigmaX=max(1.0, pad / 2))
    alpha = np.maximum(alpha, inside)[..., None]
    # Webcams frame heads near the middle, rarely exactly there.
    spare_x, spare_y = tile_w - face_w - 2 * pad, tile_h - face_h - 2 * pad
    x = round(spare_x / 2 * (1 + rng.uniform(-FACE_SHIFT, FACE_SHIFT)))
    y = round(spare_y / 2 * (1 + rng.uniform(-FACE_SHIFT, FACE_SHIFT)))
    region = view[y : y + padded.shape[0], x : x + padded.shape[1]]
    region[:] = (alpha * padded + (1 - alpha) * region).astype(np.uint8)
    return Box(x + pad, y + pad, face_w, face_h)


def write_frames(folder: Path, image: np.ndarray, count: int) -> Path:
    """`count` copies of `image` as 000.png, 001.png, ... in a new `folder`: a finite capture source."""
    folder.mkdir()
    for index in range(count):
        cv2.imwrite(str(folder / f"{index:03d}.png"), image)
    return folder


# Zoom's active speaker: a green frame drawn just inside the tile's edge.
SPEAKER_BGR = (80, 200, 40)


def with_rounded_corners(gallery: Gallery, radius: int) -> Gallery:
    """The gallery with every tile's corners rounded off to the background (LiveKit, Teams, Meet)."""
    image = gallery.image.copy()
    corner = np.zeros((radius, radius), np.uint8)
    cv2.circle(corner, (radius - 1, radius - 1), radius - 1, 1, -1, cv2.LINE_AA)
    outside = corner == 0
    for tile in gallery.tiles:
        right, bottom = tile.x + tile.w, tile.y + tile.h
        for flip_x, flip_y, x, y in (
            (False, False, tile.x, tile.y),
            (True, False, right - radius, tile.y),
            (False, True, tile.x, bottom - radius),
            (True, True, right - radius, bottom - radius),
        ):
            mask = outside[::-1] if flip_y else outside
            mask = mask[:, ::-1] if flip_x else mask
            image[y : y + radius, x : x + radius][mask] = BACKGROUND_BGR
    return Gallery(image=image, tiles=gallery.tiles, faces=gallery.faces)


def with_speaker_border(
    gallery: Gallery, index: int, width: int = 3, colour: tuple[int, int, int] = SPEAKER_BGR
) -> Gallery:
    """The gallery with the active speaker's tile framed by a coloured border inside its edge."""
    image = gallery.image.copy()
    tile = gallery.tiles[index]
    # OpenCV centres a thick line on its points: inset by half the width, the border stays inside the tile.
    inset = width // 2
    corners = (tile.x + inset, tile.y + inset), (tile.x + tile.w - 1 - inset, tile.y + tile.h - 1 - inset)
    cv2.rectangle(image, *corners, colour, width)
    return Gallery(image=image, tiles=gallery.tiles, faces=gallery.faces)


def degraded(gallery: Gallery, quality: int | None = None, size: tuple[int, int] | None = None) -> Gallery:
    """The gallery as a recording or a shared screenshot shows it: scaled down to `size` (width, height; tiles
    and faces scaled with it), then through a lossy codec's 8x8 DCT blocks and halved colour resolution at
    `quality` (OpenCV's JPEG encoder, 4:2:0 as H.264 stores colour)."""
    image, tiles, faces = gallery.image, gallery.tiles, gallery.faces
    if size is not None:
        fx, fy = size[0] / image.shape[1], size[1] / image.shape[0]
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        tiles = [_scaled_box(t, fx, fy) for t in tiles]
        faces = [None if f is None else _scaled_box(f, fx, fy) for f in faces]
    if quality is not None:
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
        ]
        ok, encoded = cv2.imencode(".jpg", image, params)
        if not ok:
            raise ValueError(f"OpenCV could not encode a JPEG at quality {quality}")
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return Gallery(image=image, tiles=tiles, faces=faces)


def _scaled_box(box: Box, fx: float, fy: float) -> Box:
    x, y = round(box.x * fx), round(box.y * fy)
    return Box(x, y, round((box.x + box.w) * fx) - x, round((box.y + box.h) * fy) - y)
