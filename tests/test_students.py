"""Student keys: tiles in reading order, centroid tracks without a grid; merging students after class and
undoing it."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select

from capture.students import DEFAULT, StudentTracker
from db.migrate import upgrade
from db.queries import find_session
from db.recorder import SessionRecorder
from db.schema import observations, students
from db.students import (
    LiveSessionError,
    UnknownMergeError,
    merge_many,
    merge_students,
    rename_student,
    standing_merges,
    undo_merge,
    undo_merges,
)
from tests.cli import assert_one_clear_line, run_module
from tests.test_timeline import HAPPY, NEUTRAL, PERIOD_1, T0, record
from tests.test_timeline import face as timeline_face
from vocabulary.records import Box, FaceDetections, FrameResult


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
    for _ in range(DEFAULT.track_patience + 1):
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


def test_a_students_name_is_the_reading_most_frames_show_and_changes_only_by_a_clear_margin():
    tracker = StudentTracker()
    switch = DEFAULT.name_switch_frames
    first = named(tracker, ["Calvm Harris", "Ada Lovelace"])
    assert tracker.display_names()[first[0]] == "Calvm Harris"
    # The true name shows from the next frame on, and wins once it has `switch` frames more.
    for frame in range(1, 2 + switch):
        assert named(tracker, ["Calvin Harris", "Ada Lovelace"]) == first
        assert tracker.display_names()[first[0]] == ("Calvin Harris" if frame == 1 + switch else "Calvm Harris")
    # A misreading for fewer frames than that, in the same tile and unlike enough to be another name by
    # spelling alone, is the same student and does not rename her; nor does the label cut short.
    for _ in range(switch):
        assert named(tracker, ["Calvn Harns", "Ada Lovelace"]) == first
    for _ in range(2 * switch):
        assert named(tracker, ["Calvin H…", "Ada Lovelace"]) == first
    assert tracker.display_names() == {first[0]: "Calvin Harris", first[1]: "Ada Lovelace"}
    # A reading known from the tally is hers when it shows again elsewhere, after a reshuffle.
    assert named(tracker, ["Ada Lovelace", "Calvm Harris"]) == first[::-1]
    assert tracker.display_names()[first[0]] == "Calvin Harris"


def test_a_label_cut_short_does_not_match_another_name():
    tracker = StudentTracker()
    first = named(tracker, ["Christina Colby", "Ada Lovelace"])
    second = named(tracker, ["Ada Lovelace", "Christopher Colq…"])
    assert second[0] == first[1]
    assert second[1] not in first


# Merging students after class, and undoing it exactly, on a real SQLite file and a real PostgreSQL database.


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'class.db'}"
    return str(request.getfixturevalue("postgres_url"))


def snapshot(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every student as stored, and which student each observation belongs to."""
    with engine.connect() as connection:
        people = connection.execute(select(students).order_by(students.c.id)).all()
        owners = connection.execute(
            select(observations.c.id, observations.c.student_id).order_by(observations.c.id)
        ).all()
    return [tuple(row) for row in people], [tuple(row) for row in owners]


# tile-0 and tile-2 both in frames 0-3 (one person on two devices), tile-1 throughout; tile-3 from 16 s.
TWO_DEVICES = [(seconds, faces | ({"tile-3": NEUTRAL} if seconds >= 16 else {})) for seconds, faces in PERIOD_1]


def test_a_merge_of_several_students_is_undone_to_exactly_what_was_there(database_url: str) -> None:
    engine = upgrade(database_url)
    try:
        record(engine, "period-1", TWO_DEVICES)
        rename_student(engine, "period-1", "tile-2", "Ada (tablet)")
        before = snapshot(engine)
        session_id = find_session(engine, "period-1").id

        merges = merge_many(engine, "period-1", "tile-0", ["tile-2", "tile-3"], merged_by="ms-garcia")
        assert [(m.kept, m.dropped, m.dropped_name, m.moved) for m in merges] == [
            ("tile-0", "tile-2", "Ada (tablet)", 4),
            ("tile-0", "tile-3", None, 3),
        ]
        people, owners = snapshot(engine)
        assert [row[2] for row in people] == ["tile-0", "tile-1"]
        kept = people[0]
        # The kept student had no name of their own: they take the tablet's; their first seen stays 0 s.
        assert kept[3] == "Ada (tablet)" and kept[8] == T0 and kept[9] == T0 + timedelta(seconds=24)
        assert sum(1 for _, owner in owners if owner == kept[0]) == 7 + 4 + 3
        assert [m.id for m in standing_merges(engine, session_id)] == [merges[1].id, merges[0].id]

        undone = undo_merges(engine, "period-1", [m.id for m in merges])
        assert [m.dropped for m in undone] == ["tile-3", "tile-2"]
        assert snapshot(engine) == before
        assert standing_merges(engine, session_id) == []
    finally:
        engine.dispose()


def test_undo_keeps_a_name_given_after_the_merge_and_refuses_out_of_order(database_url: str) -> None:
    engine = upgrade(database_url)
    try:
        record(engine, "period-1", TWO_DEVICES)
        people_before, owners_before = snapshot(engine)
        first = merge_students(engine, "period-1", "tile-0", "tile-2")
        second = merge_students(engine, "period-1", "tile-1", "tile-0")  # then the kept one merged away too
        with pytest.raises(UnknownMergeError, match="tile-0 was merged into tile-1 after this merge; undo that"):
            undo_merge(engine, "period-1", first.id)
        assert undo_merge(engine, "period-1")[0].id == second.id  # the latest
        rename_student(engine, "period-1", "tile-0", "Ada Lovelace")
        undo_merge(engine, "period-1", first.id)
        people, owners = snapshot(engine)
        assert owners == owners_before
        assert [row[3] for row in people] == ["Ada Lovelace", None, None, None]
        assert [row[:3] + row[4:] for row in people] == [row[:3] + row[4:] for row in people_before]
        with pytest.raises(UnknownMergeError, match="no merge to undo"):
            undo_merge(engine, "period-1")
    finally:
        engine.dispose()


def test_merge_and_undo_are_refused_while_the_session_is_captured(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'class.db'}")
    try:
        record(engine, "period-1", PERIOD_1)
        merge = merge_students(engine, "period-1", "tile-0", "tile-2")
        with SessionRecorder.open(engine, "period-1", "screen:1") as recorder:  # the class goes on
            with pytest.raises(LiveSessionError, match="stop it, then undo a merge"):
                undo_merge(engine, "period-1", merge.id)
            with pytest.raises(LiveSessionError, match="then merge"):
                merge_students(engine, "period-1", "tile-0", "tile-1")
            recorder.record(FrameResult(99, T0 + timedelta(seconds=30), [timeline_face("tile-0", HAPPY)], 5.0))
        # The class went on after the merge: tile-0's last seen is now their own, and stays after the undo.
        undo_merge(engine, "period-1", merge.id)
        people, _ = snapshot(engine)
        assert [row[2] for row in people] == ["tile-0", "tile-1", "tile-2"]
        assert people[0][9] == T0 + timedelta(seconds=30)
    finally:
        engine.dispose()


def test_undo_merge_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    engine = upgrade(url)
    record(engine, "period-1", PERIOD_1)
    before = snapshot(engine)
    engine.dispose()
    merged = run_module("db", "students", "merge", "--db", url, "--session", "period-1", "tile-0", "tile-2")
    assert merged.returncode == 0, merged.stderr
    assert "4 observation(s) moved (merge 1; undo-merge 1 undoes it)" in merged.stdout
    undone = run_module("db", "students", "undo-merge", "--db", url, "--session", "period-1")
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.strip() == "undid merge 1: tile-2 is back with 4 observation(s)"
    engine = upgrade(url)
    assert snapshot(engine) == before
    engine.dispose()
    again = run_module("db", "students", "undo-merge", "--db", url, "--session", "period-1", "1")
    assert_one_clear_line(again, "no merge 1 to undo")
