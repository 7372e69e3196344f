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


def named(tracker: StudentTracker, names: list[str]) -> list[str]:
    """Keys of a row of camera-off tiles showing these names (no faces: the names alone decide)."""
    tiles = [Box(i * 100, 0, 100, 60) for i in range(len(names))]
    tracker.assign(tiles, detections([]), None, names)
    return [tracker.tile_key(i) for i in range(len(names))]


def test_a_label_cut_short_is_the_student_with_the_full_name():
    tracker = StudentTracker()
    first = named(tracker, ["Christopher Colquhoun", "Ada Lovelace", "Li Wei"])
    # A fourth student joins, the tiles narrow and reshuffle, and the app cuts the long name short.
    second = named(tracker, ["Li Wei", "Christopher Colq…", "Ada Lovelace", "Olga Petrova"])
    assert second[:3] == [first[2], first[0], first[1]]
    assert second[3] not in first
    assert tracker.display_names()[first[0]] == "Christopher Colquhoun"


def test_a_name_first_seen_cut_short_takes_the_full_name_when_it_shows():
    tracker = StudentTracker()
    first = named(tracker, ["Ada Lovelace", "Christopher Colq…", "Li Wei", "Olga Petrova"])
    assert tracker.display_names()[first[1]] == "Christopher Colq…"
    second = named(tracker, ["Christopher Colquhoun", "Li Wei", "Ada Lovelace"])
    assert second == [first[1], first[2], first[0]]
    assert tracker.display_names()[first[1]] == "Christopher Colquhoun"


def test_a_label_cut_short_does_not_match_another_name():
    tracker = StudentTracker()
    first = named(tracker, ["Christina Colby", "Ada Lovelace"])
    second = named(tracker, ["Ada Lovelace", "Christopher Colq…"])
    assert second[0] == first[1]
    assert second[1] not in first
