"""Box arithmetic shared by the detectors: IoU, weighted non-maximum suppression, FaceDetections assembly.

Weighted NMS (MediaPipe's blending variant) averages each cluster of overlapping boxes by score instead of
keeping only the best one, which steadies BlazeFace boxes from frame to frame.
"""

from __future__ import annotations

import numpy as np

from vocabulary.records import FaceDetections


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) x1,y1,x2,y2 box with each of (N, 4) boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - intersection
    overlaps: np.ndarray = np.divide(intersection, union, out=np.zeros_like(union, dtype=np.float64), where=union > 0)
    return overlaps


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge overlapping detections; returns (boxes (K,4) x1y1x2y2, keypoints (K,P,2), scores (K,)), best first.

    Each kept detection is the score-weighted mean of every box overlapping the best remaining one by more
    than iou_threshold, and keeps that best box's score.
    """
    remaining = np.argsort(-scores, kind="stable")
    kept_boxes, kept_points, kept_scores = [], [], []
    while remaining.size:
        best = remaining[0]
        in_cluster = iou(boxes[best], boxes[remaining]) > iou_threshold
        in_cluster[0] = True  # a degenerate (zero-area) best box still leaves the queue
        cluster = remaining[in_cluster]
        weights = scores[cluster] / scores[cluster].sum()
        kept_boxes.append(np.tensordot(weights, boxes[cluster], axes=1))
        kept_points.append(np.tensordot(weights, keypoints[cluster], axes=1))
        kept_scores.append(scores[best])
        remaining = remaining[~in_cluster]
    if not kept_scores:
        return np.zeros((0, 4), np.float32), np.zeros((0, *keypoints.shape[1:]), np.float32), np.zeros(0, np.float32)
    return (
        np.asarray(kept_boxes, np.float32),
        np.asarray(kept_points, np.float32),
        np.asarray(kept_scores, np.float32),
    )


def to_detections(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, tiles: np.ndarray, width: int, height: int
) -> FaceDetections:
    """Float x1,y1,x2,y2 boxes -> FaceDetections with integer x, y, w, h boxes clipped to the frame."""
    if len(scores) == 0:
        return FaceDetections.empty()
    x1 = np.clip(np.round(boxes[:, 0]), 0, width)
    y1 = np.clip(np.round(boxes[:, 1]), 0, height)
    x2 = np.clip(np.round(boxes[:, 2]), 0, width)
    y2 = np.clip(np.round(boxes[:, 3]), 0, height)
    return FaceDetections(
        boxes=np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(np.int32),
        scores=scores.astype(np.float32),
        keypoints=keypoints.astype(np.float32),
        tiles=tiles.astype(np.int32),
    )
