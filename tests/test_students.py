"""Student keys: tiles in reading order, centroid tracks without a grid."""

import numpy as np

from capture.students import TRACK_PATIENCE, StudentTracker
from vocabulary.records import Box, FaceDetections


def detections(boxes, tiles=None):
    boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
    tiles = np.full(len(boxes), -1, np.int32) if tiles is None else np.asarray(tiles, np.int32)
    return FaceDetections(boxes, np.ones(len(boxes), np.float32), np.zeros((len(boxes), 6, 2), np.float32), tiles)


def test_gallery_faces_are_keyed_by_tile_order_even_when_the_grid_grows():
    tracker = StudentTracker()
    two_by_two = [Box(0, 0, 100, 60), Box(100, 0, 100, 60), Box(0, 60, 100, 60), Box(100, 60, 100, 60)]
    keys = tracker.assign(two_by_two, detections([[10, 10, 30, 30], [110, 70, 30, 30]], tiles=[0, 3]))
    assert keys == ["tile-1", "tile-4"]
    # A fifth participant joins: the grid becomes 3x2 and every tile moves, reading order stays.
    three_by_two = [Box(c * 66, r * 60, 66, 60) for r in range(2) for c in range(3)]
    keys = tracker.assign(
        three_by_two, detections([[5, 5, 30, 30], [70, 65, 30, 30], [140, 65, 30, 30]], tiles=[0, 3, 4])
    )
    assert keys == ["tile-1", "tile-4", "tile-5"]


def test_tracks_follow_moving_faces_and_open_new_ones_for_newcomers():
    tracker = StudentTracker()
    assert tracker.assign(None, detections([[100, 100, 50, 50], [400, 100, 50, 50]])) == ["track-1", "track-2"]
    # Both move a little and their order in the detector output flips: keys follow the faces.
    assert tracker.assign(None, detections([[420, 110, 50, 50], [110, 95, 50, 50]])) == ["track-2", "track-1"]
    # A face far from both is a newcomer.
    keys = tracker.assign(None, detections([[115, 95, 50, 50], [800, 500, 50, 50]]))
    assert keys == ["track-1", "track-3"]


def test_a_track_unseen_for_too_long_is_not_revived():
    tracker = StudentTracker()
    assert tracker.assign(None, detections([[100, 100, 50, 50]])) == ["track-1"]
    for _ in range(TRACK_PATIENCE + 1):
        tracker.assign(None, detections([]))
    assert tracker.assign(None, detections([[100, 100, 50, 50]])) == ["track-2"]
