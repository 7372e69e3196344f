"""Re-identification by appearance: today's 16x16 grey patches against dlib's face-embedding ResNet.

`python -m bench.reid [--repeats R]`. The task is the one `capture/students.py` meets without names: a
class is seen in one layout, the layout changes (another window size, another grid, every tile moved, the
face framed anew in its tile, the picture compressed), and every face must be found again among the
class, while another person must not look like anyone. Real faces the packages ship are composed into
galleries by tests/galleries.py and found by the real detector (BlazeFace, per tile):

- before: 49 students in a 7x7 1080p gallery (lossless);
- after, "720p window": the same 49, shuffled, in a 7x7 gallery of a 1280x720 window (faces about 2/3 the
  size), JPEG quality 50, as a video codec leaves them;
- after, "4x4 pages": the same 49, shuffled, 16 to a 4x4 1080p gallery (faces about 1.7 times the size),
  JPEG quality 50;
- after, "tilt, 1/3 res": as "4x4 pages", every head tilted 8-12 degrees one way or the other and the
  picture sent at a third of its size (as a call does on a weak connection): faces about 0.6 times the
  size they had before, blurred by the upscaling.

Faces: skimage's LFW subset (25x25 grey crops, 98 people), with the astronaut and Grace Hopper (colour
photos) among them, and FER2013 PublicTest faces (48x48 grey, 196 faces; different photos, so different
people as far as anyone can tell). What no shipped data set gives is the same person photographed twice
(another expression, another day): that case is not measured here.

Printed per set and change, for both methods: rank-1 (the after face's most alike before face is the same
person), verification ROC-AUC and TAR at FAR 1 % (same person against every other pair of the class), and
ms per face, on a quiet machine and with one core kept busy by another process (as in bench.pipeline).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.pipeline import busy_core, load_average
from capture.detect import make_detector
from capture.detect.regions import find_faces
from capture.students import face_appearance
from tests.galleries import ASTRONAUT_FACE, FER_CSV, astronaut, compose_gallery, fer_faces, grace_hopper, lfw_faces

CLASS = 49
JPEG_QUALITY = 50
FAR = 0.01
MODEL_PACKAGE = "face_recognition_models"
SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class DlibEmbedder:
    """dlib's face-recognition ResNet (128-d, CC0) on dlib's 5-point alignment, from the
    face_recognition_models package's files (found without importing it: it needs pkg_resources)."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise FileNotFoundError(f"dlib is not installed: pip install dlib-bin {MODEL_PACKAGE}") from None
        spec = importlib.util.find_spec(MODEL_PACKAGE)
        folders = [Path(f) / "models" for f in (spec.submodule_search_locations or [])] if spec else []
        folder = next((f for f in folders if (f / RESNET_FILE).is_file()), None)
        if folder is None:
            raise FileNotFoundError(f"{RESNET_FILE} not found: pip install dlib-bin {MODEL_PACKAGE}")
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(folder / SHAPE_FILE))
        self._net = dlib.face_recognition_model_v1(str(folder / RESNET_FILE))

    def embed(self, image: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
        """(N, 128) descriptors of the faces in `boxes` (x, y, w, h) of a BGR image, in one network call."""
        rgb = np.ascontiguousarray(image[..., ::-1])
        rectangles = [self._dlib.rectangle(*(int(v) for v in (x, y, x + w, y + h))) for x, y, w, h in boxes]
        shapes = self._dlib.full_object_detections()
        for rectangle in rectangles:
            shapes.append(self._shape(rgb, rectangle))
        return np.array(self._net.compute_face_descriptor(rgb, shapes), np.float32).reshape(len(boxes), 128)


@dataclass(frozen=True)
class Seen:
    """One gallery's faces, by person: each method's description of them and its ms per face."""

    people: list[int]
    patches: np.ndarray
    embeddings: np.ndarray
    patch_ms: float
    embed_ms: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reid", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="quiet + loaded timing pairs (default 2)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not FER_CSV.exists():
        print(f"error: this benchmark uses FER2013 faces and needs {FER_CSV}", file=sys.stderr)
        return 2
    try:
        embedder = DlibEmbedder()
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    detector = make_detector("blazeface")
    sets = {"LFW 25 px + 2 photos": real_photos(detector) + lfw_faces(CLASS * 2 - 2)}
    sets["FER2013 48 px"] = list(fer_faces(CLASS * 4, seed=11)[0])
    print(f"{os.cpu_count()} CPUs, load average {load_average()}")
    print(f"{'faces':<22}{'after':<14}{'method':<9}{'found':>7}{'rank-1':>8}{'AUC':>8}{'TAR@1%':>8}")
    for name, faces in sets.items():
        for change, after in CHANGES.items():
            scores: dict[str, tuple[list[float], list[float], list[bool]]] = {m: ([], [], []) for m in METHODS}
            found = total = 0
            for start in range(0, len(faces) - CLASS + 1, CLASS):
                group = faces[start : start + CLASS]
                rng = np.random.default_rng(start)
                before = seen_in(detector, embedder, [Layout(group, list(range(CLASS)), 7, 7, quality=None)])
                shuffled = [int(i) for i in rng.permutation(CLASS)]
                later = seen_in(detector, embedder, after(group, shuffled))
                found, total = found + len(before.people) + len(later.people), total + 2 * CLASS
                for method, (genuine, impostor, first) in scores.items():
                    g, i, r = compare(before, later, method)
                    genuine += g
                    impostor += i
                    first += r
            for method, (genuine, impostor, first) in scores.items():
                auc, tar = verification(np.array(genuine), np.array(impostor))
                row = f"{found / total:>7.0%}{np.mean(first):>8.1%}{auc:>8.3f}{tar:>8.1%}"
                print(f"{name:<22}{change:<14}{method:<9}{row}")
    time_methods(detector, embedder, sets["FER2013 48 px"][:CLASS], args.repeats)
    return 0


def real_photos(detector) -> list[np.ndarray]:
    """The astronaut's and Grace Hopper's faces, with a face's height of context around them, in colour."""
    x, y, w, h = ASTRONAUT_FACE.x, ASTRONAUT_FACE.y, ASTRONAUT_FACE.w, ASTRONAUT_FACE.h
    photos = [astronaut()[max(y - h // 2, 0) : y + h + h // 2, max(x - w // 2, 0) : x + w + w // 2]]
    hopper = grace_hopper()
    if hopper is not None:
        found = find_faces(detector, hopper, None)
        x, y, w, h = (int(v) for v in found.boxes[int(np.argmax(found.boxes[:, 2]))])
        photos.append(hopper[max(y - h // 2, 0) : y + h + h // 2, max(x - w // 2, 0) : x + w + w // 2])
    return photos


@dataclass(frozen=True)
class Layout:
    """One gallery: the group's faces in `order`, cols x rows at `size`, JPEG `quality` (None: lossless),
    the picture sent at 1/`shrink` of its size."""

    group: list[np.ndarray]
    order: list[int]
    cols: int
    rows: int
    size: tuple[int, int] = (1920, 1080)
    quality: int | None = JPEG_QUALITY
    shrink: int = 1


def in_720p_window(group: list[np.ndarray], order: list[int]) -> list[Layout]:
    return [Layout(group, order, 7, 7, (1280, 720))]


def in_4x4_pages(group: list[np.ndarray], order: list[int], shrink: int = 1) -> list[Layout]:
    pages = [order[start : start + 16] for start in range(0, len(order), 16)]
    return [Layout(group, page, 4, -(-len(page) // 4), shrink=shrink) for page in pages]


def tilted_at_low_resolution(group: list[np.ndarray], order: list[int]) -> list[Layout]:
    rng = np.random.default_rng(len(group))
    return in_4x4_pages([_tilted(face, float(rng.choice([-1, 1]) * rng.uniform(8, 12))) for face in group], order, 3)


def _tilted(face: np.ndarray, degrees: float) -> np.ndarray:
    """The face rolled by `degrees` about its centre, its edge pixels carried into the corners."""
    h, w = face.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(face, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


CHANGES: dict[str, Callable[[list[np.ndarray], list[int]], list[Layout]]] = {
    "720p window": in_720p_window,
    "4x4 pages": in_4x4_pages,
    "tilt, 1/3 res": tilted_at_low_resolution,
}
METHODS = ("patch", "dlib")


def seen_in(detector, embedder: DlibEmbedder, layouts: list[Layout]) -> Seen:
    """The faces the detector finds in each gallery, one per tile (its best), described by both methods."""
    people: list[int] = []
    patches, embeddings = [], []
    patch_s = embed_s = 0.0
    for layout in layouts:
        order, (width, height) = layout.order, layout.size
        seed = len(order) + layout.cols + width
        gallery = compose_gallery([layout.group[p] for p in order], layout.cols, layout.rows, layout.size, seed=seed)
        image = gallery.image
        if layout.shrink > 1:
            small = cv2.resize(image, (width // layout.shrink, height // layout.shrink), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        if layout.quality is not None:
            quality = [cv2.IMWRITE_JPEG_QUALITY, layout.quality]
            image = cv2.imdecode(cv2.imencode(".jpg", image, quality)[1], cv2.IMREAD_COLOR)
        detections = find_faces(detector, image, gallery.tiles)
        best: dict[int, int] = {}
        for face, tile in enumerate(detections.tiles.tolist()):
            if tile not in best or detections.scores[face] > detections.scores[best[tile]]:
                best[tile] = face
        boxes = [detections.boxes[best[tile]] for tile in sorted(best)]
        started = time.perf_counter()
        looks = [face_appearance(image, box) for box in boxes]
        patch_s += time.perf_counter() - started
        started = time.perf_counter()
        described = embedder.embed(image, boxes)
        embed_s += time.perf_counter() - started
        for tile, look, embedding in zip(sorted(best), looks, described, strict=True):
            if look is not None:
                people.append(order[tile])
                patches.append(look)
                embeddings.append(embedding)
    count = max(len(people), 1)
    return Seen(people, np.array(patches), np.array(embeddings), patch_s * 1000 / count, embed_s * 1000 / count)


def similarity(before: Seen, after: Seen, method: str) -> np.ndarray:
    """(after faces, before faces): higher is more alike; the patches' correlation, the embeddings'
    negative distance (dlib's own measure, 0.6 apart being its threshold for one person)."""
    if method == "patch":
        return np.asarray(after.patches @ before.patches.T)
    gaps = after.embeddings[:, None, :] - before.embeddings[None, :, :]
    return np.asarray(-np.linalg.norm(gaps, axis=2))


def compare(before: Seen, after: Seen, method: str) -> tuple[list[float], list[float], list[bool]]:
    """Genuine scores, impostor scores, and whether each after face's best match is its own person."""
    scores = similarity(before, after, method)
    same = np.array(after.people)[:, None] == np.array(before.people)[None, :]
    in_before = same.any(axis=1)
    first = [bool(same[i, int(np.argmax(scores[i]))]) for i in np.flatnonzero(in_before)]
    return scores[same].tolist(), scores[~same].tolist(), first


def verification(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """ROC-AUC (the chance a genuine pair scores above an impostor pair) and TAR at FAR."""
    ranks = np.argsort(np.argsort(np.concatenate([genuine, impostor]))) + 1
    auc = (ranks[: len(genuine)].sum() - len(genuine) * (len(genuine) + 1) / 2) / (len(genuine) * len(impostor))
    threshold = np.quantile(impostor, 1 - FAR)
    return float(auc), float(np.mean(genuine > threshold))


def time_methods(detector, embedder: DlibEmbedder, faces: list[np.ndarray], repeats: int) -> None:
    """ms per face for each method on one 49-face gallery, quiet and with one core kept busy."""
    layout = Layout(faces, list(range(CLASS)), 7, 7, quality=None)
    print(f"ms per face (median of {repeats} galleries of {CLASS} faces each way; quiet, then loaded)")
    for mode in ("quiet", "loaded"):
        runs = []
        for _ in range(repeats):
            with busy_core(False) if mode == "loaded" else nullcontext():
                runs.append(seen_in(detector, embedder, [layout]))
                average = load_average()
        patch = statistics.median(run.patch_ms for run in runs)
        embed = statistics.median(run.embed_ms for run in runs)
        print(
            f"  {mode:<7} patch {patch:6.2f}   dlib {embed:6.1f} (49 faces: {embed * CLASS / 1000:.1f} s)   "
            f"load average {average}"
        )


if __name__ == "__main__":
    sys.exit(main())
