"""Student identity: through gallery reshuffles, camera-off tiles and name-less sources; names in the
database and the export; the rename/merge fix-up commands."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

import config
from capture.detect import make_detector
from capture.detect.regions import find_faces
from capture.grid import find_tile_grid
from capture.names import NameReader
from capture.pipeline import FramePipeline
from capture.students import StudentTracker
from db.migrate import upgrade
from db.recorder import SessionRecorder
from tests.cli import assert_one_clear_line, run_module
from tests.conftest import require_tool
from tests.galleries import PARTICIPANT_NAMES, Gallery, astronaut, compose_gallery, grace_hopper, lfw_faces
from vocabulary.records import Box, FaceDetections, Frame, FrameResult, Observation

NAMES = [*PARTICIPANT_NAMES, "Olga Petrova", "Ravi Shankar"]
NEWCOMER = 12
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
P_HAPPY = np.array([0, 0, 0, 1, 0, 0, 0], np.float32)


@pytest.fixture(scope="module")
def detector():
    return make_detector("blazeface")


def class_gallery(order: list[int], cols: int, rows: int, seed: int, off: set[int], named: bool = True) -> Gallery:
    """Students `order` (indices into NAMES and into the faces) in that tile order; students in `off` have
    their camera off."""
    faces = lfw_faces(len(NAMES))
    camera_off = {tile for tile, student in enumerate(order) if student in off}
    return compose_gallery(
        [faces[s] for s in order if s not in off],
        cols,
        rows,
        seed=seed,
        camera_off=camera_off,
        names=[NAMES[s] for s in order] if named else None,
    )


def identify(
    tracker: StudentTracker, reader: NameReader | None, drawn: Gallery, detector
) -> tuple[list[str], FaceDetections]:
    """Every tile's student key, and the detections (for checks on the faces)."""
    tiles = find_tile_grid(drawn.image)
    assert tiles == drawn.tiles
    detections = find_faces(detector, drawn.image, tiles)
    names = reader.read(drawn.image, tiles) if reader is not None else None
    tracker.assign(tiles, detections, drawn.image, names)
    return [tracker.tile_key(i) for i in range(len(tiles))], detections


def derangement(n: int, seed: int) -> list[int]:
    """A permutation of range(n) that moves every element."""
    rng = np.random.default_rng(seed)
    while True:
        order = [int(i) for i in rng.permutation(n)]
        if all(i != at for at, i in enumerate(order)):
            return order


def test_a_reshuffle_that_moves_every_tile_keeps_every_identity(detector) -> None:
    require_tool("tesseract")
    tracker, reader = StudentTracker(), NameReader()
    first = list(range(12))
    keys, _ = identify(tracker, reader, class_gallery(first, 4, 3, seed=0, off={3, 8}), detector)
    key_of = dict(zip(first, keys, strict=True))
    assert len(set(keys)) == 12
    # Every tile moves, and two students switch their cameras (3 on, 10 off).
    order = derangement(12, seed=0)
    keys, _ = identify(tracker, reader, class_gallery(order, 4, 3, seed=10, off={8, 10}), detector)
    assert keys == [key_of[s] for s in order]
    # A newcomer joins: 13 tiles, 5 per row, everyone moves again.
    order = [*derangement(12, seed=1), NEWCOMER]
    keys, _ = identify(tracker, reader, class_gallery(order, 5, 3, seed=11, off={8}), detector)
    assert keys[:12] == [key_of[s] for s in order[:12]]
    assert keys[12] not in key_of.values()
    names = tracker.display_names()
    assert names[key_of[2]] == "Anne-Marie Dubois"
    assert names[keys[12]] == "Ravi Shankar"


def test_without_names_faces_keep_their_identity_by_appearance(detector) -> None:
    tracker = StudentTracker()
    first = list(range(9))
    drawn = class_gallery(first, 3, 3, seed=0, off=set(), named=False)
    keys, detections = identify(tracker, None, drawn, detector)
    assert sorted(detections.tiles.tolist()) == list(range(9)), "precondition: every face is found"
    key_of = dict(zip(first, keys, strict=True))
    order = derangement(9, seed=1)
    keys, detections = identify(tracker, None, class_gallery(order, 3, 3, seed=5, off=set(), named=False), detector)
    assert sorted(detections.tiles.tolist()) == list(range(9)), "precondition: every face is found"
    assert keys == [key_of[s] for s in order]


def test_without_names_faces_are_found_again_after_the_window_shrinks_and_the_video_is_compressed(detector) -> None:
    # The change bench.reid measures: another window size (faces 2/3 the size), every tile moved, each face
    # framed anew in its tile, and JPEG at quality 50 as a video codec leaves it.
    tracker = StudentTracker()
    first = list(range(12))
    keys, _ = identify(tracker, None, class_gallery(first, 4, 3, seed=0, off=set(), named=False), detector)
    key_of = dict(zip(first, keys, strict=True))
    order = derangement(12, seed=3)
    faces = lfw_faces(len(NAMES))
    small = compose_gallery([faces[s] for s in order], 4, 3, size=(1280, 720), seed=9)
    _, encoded = cv2.imencode(".jpg", small.image, [cv2.IMWRITE_JPEG_QUALITY, 50])
    image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    # The tiles as drawn: this is about faces, not about finding the tiles.
    detections = find_faces(detector, image, small.tiles)
    tracker.assign(small.tiles, detections, image, None)
    keys = [tracker.tile_key(i) for i in range(12)]
    assert sorted(detections.tiles.tolist()) == list(range(12)), "precondition: every face is found"
    assert keys == [key_of[s] for s in order]


def test_without_names_someone_else_in_a_leavers_tile_is_a_new_student(detector) -> None:
    tracker = StudentTracker()
    first = list(range(9))
    keys, _ = identify(tracker, None, class_gallery(first, 3, 3, seed=0, off=set(), named=False), detector)
    # Student 4 leaves and the newcomer sits down in the same tile; everyone moves a little within their tile.
    order = [*first[:4], NEWCOMER, *first[5:]]
    later, detections = identify(tracker, None, class_gallery(order, 3, 3, seed=1, off=set(), named=False), detector)
    assert sorted(detections.tiles.tolist()) == list(range(9)), "precondition: every face is found"
    assert later[4] not in keys
    assert later[:4] + later[5:] == keys[:4] + keys[5:]


def test_a_schools_identity_settings_reach_the_tracker_through_the_pipeline(detector, tmp_path: Path) -> None:
    # No two faces correlate below -1, so nobody is ever "clearly someone else": the newcomer in the leaver's
    # tile keeps the leaver's key by place (by default a new one, as the test above shows).
    school = tmp_path / "school.toml"
    school.write_text("[capture.identity]\nappearance_different = -1.0\n")
    tracker = FramePipeline(detector, None, settings=config.load(school).capture).students
    first = list(range(9))
    keys, _ = identify(tracker, None, class_gallery(first, 3, 3, seed=0, off=set(), named=False), detector)
    order = [*first[:4], NEWCOMER, *first[5:]]
    later, detections = identify(tracker, None, class_gallery(order, 3, 3, seed=1, off=set(), named=False), detector)
    assert sorted(detections.tiles.tolist()) == list(range(9)), "precondition: every face is found"
    assert later == keys


def largest_face(image: np.ndarray, detector) -> FaceDetections:
    found = find_faces(detector, image, None)
    assert len(found), "precondition: a face is found"
    best = slice(i := int(np.argmax(found.boxes[:, 2])), i + 1)
    return FaceDetections(found.boxes[best], found.scores[best], found.keypoints[best], found.tiles[best])


def largest_face_framed(image: np.ndarray, detector) -> tuple[np.ndarray, FaceDetections]:
    """A 400x400 webcam frame of the photo's largest face, at the same place and size whoever it is."""
    x, y, w, h = largest_face(image, detector).boxes[0]
    scale = 400 / (3 * w)
    warp = np.float32([[scale, 0, 200 - (x + w / 2) * scale], [0, scale, 200 - (y + h / 2) * scale]])
    frame = cv2.warpAffine(image, warp, (400, 400), borderMode=cv2.BORDER_REPLICATE)
    return frame, largest_face(frame, detector)


def test_without_a_grid_someone_else_in_the_same_place_opens_a_new_track(detector) -> None:
    hopper = grace_hopper()
    if hopper is None:
        pytest.skip("matplotlib (grace_hopper.jpg) is not installed")
    seat, later = largest_face_framed(astronaut(), detector), largest_face_framed(hopper, detector)
    step = np.linalg.norm(seat[1].boxes[0, :2] - later[1].boxes[0, :2]) / seat[1].boxes[0, 2]
    assert step < 0.2, "precondition: the two faces sit in the same place"
    noisy = np.clip(seat[0] + np.random.default_rng(0).normal(0, 3, seat[0].shape), 0, 255).astype(np.uint8)
    tracker = StudentTracker()
    assert tracker.assign(None, seat[1], seat[0]) == ["track-1"]
    assert tracker.assign(None, largest_face(noisy, detector), noisy) == ["track-1"]
    assert tracker.assign(None, later[1], later[0]) == ["track-2"]
    assert tracker.display_names() == {"track-2": "student 2"}


def test_a_camera_off_tile_with_a_known_name_is_that_student_present_but_unseen(detector) -> None:
    require_tool("tesseract")
    tracker, reader = StudentTracker(), NameReader()
    keys, _ = identify(tracker, reader, class_gallery(list(range(6)), 3, 2, seed=0, off=set()), detector)
    # Ada (0) turns her camera off and the gallery puts camera-off tiles last.
    order = [1, 2, 3, 4, 5, 0]
    later, detections = identify(tracker, reader, class_gallery(order, 3, 2, seed=1, off={0}), detector)
    assert 5 not in detections.tiles.tolist()  # no face in her tile
    assert later == [keys[s] for s in order]
    assert tracker.display_names()[later[5]] == "Ada Lovelace"


def test_without_a_grid_tracks_are_shown_as_numbered_students() -> None:
    tracker = StudentTracker()
    boxes = np.array([[100, 100, 50, 50], [400, 100, 50, 50]], np.int32)
    faces = FaceDetections(boxes, np.ones(2, np.float32), np.zeros((2, 6, 2), np.float32), np.full(2, -1, np.int32))
    assert tracker.assign(None, faces) == ["track-1", "track-2"]
    assert tracker.display_names() == {"track-1": "student 1", "track-2": "student 2"}


def test_capture_stores_the_names_read_and_the_export_shows_them(tmp_path: Path) -> None:
    """The real capture CLI over two named galleries, reshuffled between them: one student per name."""
    require_tool("tesseract")
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, (order, seed) in enumerate([(list(range(6)), 0), (derangement(6, seed=2), 1)]):
        cv2.imwrite(str(frames / f"{index}.png"), class_gallery(order, 3, 2, seed=seed, off=set()).image)
    db = tmp_path / "class.db"
    result = run_module("capture", "--source", str(frames), "--db", f"sqlite:///{db}", "--session", "named")
    assert result.returncode == 0, result.stderr
    rows = export(db, "named", tmp_path / "out.csv")
    faces = [row for row in rows if row["x"] and row["name"]]
    assert {row["name"] for row in faces} == set(NAMES[:6])
    # One key per name across the reshuffle.
    assert len({(row["student"], row["name"]) for row in faces}) == 6
    assert len({row["student"] for row in faces}) == 6


def test_capture_takes_its_name_settings_from_the_schools_file(tmp_path: Path) -> None:
    """The real capture CLI with --config: a school whose names have at least 30 letters stores no name."""
    require_tool("tesseract")
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), class_gallery(list(range(6)), 3, 2, seed=0, off=set()).image)
    school = tmp_path / "school.toml"
    school.write_text("[capture.names]\nmin_glyphs = 30\n")
    db = tmp_path / "class.db"
    result = run_module(
        "capture", "--source", str(frames), "--db", f"sqlite:///{db}", "--session", "s", "--config", str(school)
    )
    assert result.returncode == 0, result.stderr
    rows = export(db, "s", tmp_path / "out.csv")
    assert len({row["student"] for row in rows}) == 6
    assert {row["name"] for row in rows} == {""}


def export(db: Path, session: str, out: Path) -> list[dict[str, str]]:
    result = run_module("analytics", "export", "--db", f"sqlite:///{db}", "--session", session, "--out", str(out))
    assert result.returncode == 0, result.stderr
    with out.open() as f:
        return list(csv.DictReader(f))


def recorded_session(db: Path, keys_per_frame: list[list[str]], names: dict[str, str], close: bool = True) -> None:
    engine = upgrade(f"sqlite:///{db}")
    recorder = SessionRecorder.open(engine, "maths", "test")
    for index, keys in enumerate(keys_per_frame):
        observations = [Observation(key, None, Box(10 * i, 0, 9, 9), P_HAPPY, 3) for i, key in enumerate(keys)]
        recorder.record(FrameResult(index, T0 + timedelta(seconds=index), observations, 5.0, student_names=names))
    if close:
        recorder.close()
    engine.dispose()


def students_cli(db: Path, *args: str):
    return run_module("db", "students", args[0], "--db", f"sqlite:///{db}", "--session", args[1], *args[2:])


def test_rename_and_merge_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "class.db"
    recorded_session(db, [["tile-1", "tile-2"], ["tile-1", "tile-3"]], {"tile-1": "Ada Lovelace", "tile-3": "Ada L"})
    # Rename by key, then by current name.
    result = students_cli(db, "rename", "maths", "tile-2", "Sean O'Brien")
    assert result.returncode == 0, result.stderr
    result = students_cli(db, "rename", "maths", "Ada L", "Ada (tablet)")
    assert result.returncode == 0, result.stderr
    rows = export(db, "maths", tmp_path / "renamed.csv")
    assert {(row["student"], row["name"]) for row in rows} == {
        ("tile-1", "Ada Lovelace"),
        ("tile-2", "Sean O'Brien"),
        ("tile-3", "Ada (tablet)"),
    }
    # Ada joined twice: merge her tablet into her laptop.
    result = students_cli(db, "merge", "maths", "Ada Lovelace", "tile-3")
    assert result.returncode == 0, result.stderr
    assert "1 observation" in result.stdout
    rows = export(db, "maths", tmp_path / "merged.csv")
    assert [(row["frame"], row["student"], row["name"]) for row in rows] == [
        ("0", "tile-1", "Ada Lovelace"),
        ("0", "tile-2", "Sean O'Brien"),
        ("1", "tile-1", "Ada Lovelace"),
        ("1", "tile-1", "Ada Lovelace"),
    ]


def test_rename_and_merge_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "class.db"
    recorded_session(db, [["tile-1", "tile-2"]], {"tile-1": "Kim", "tile-2": "Kim"})
    assert_one_clear_line(students_cli(db, "rename", "physics", "tile-1", "X"), "physics")
    assert_one_clear_line(students_cli(db, "rename", "maths", "tile-9", "X"), "tile-9", "tile-1")
    assert_one_clear_line(students_cli(db, "rename", "maths", "Kim", "X"), "Kim", "tile-1", "tile-2")
    assert_one_clear_line(students_cli(db, "rename", "maths", "tile-1", "x" * 201), "longer than 200")
    assert_one_clear_line(students_cli(db, "merge", "maths", "tile-1", "nobody"), "nobody")
    assert_one_clear_line(students_cli(db, "merge", "maths", "tile-1", "tile-1"), "same student")
    live = tmp_path / "live.db"
    recorded_session(live, [["tile-1", "tile-2"]], {}, close=False)
    assert_one_clear_line(students_cli(live, "merge", "maths", "tile-1", "tile-2"), "still being captured")


def video_frame(names: list[str], seed: int) -> np.ndarray:
    """A frame of a recorded 3x2 call: the first six students (Li Wei, the last, with her camera off) under
    these labels, fresh sensor noise, then a video codec's JPEG at quality 80."""
    image = compose_gallery(lfw_faces(5), 3, 2, size=(1280, 720), camera_off={5}, names=names).image
    cv2.setRNGSeed(seed)
    noise = cv2.randn(np.empty(image.shape, np.int16), 0, 2)
    noisy = np.clip(image + noise, 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def test_over_a_recording_each_student_is_one_key_named_by_the_reading_most_frames_show(detector) -> None:
    """Real labels read by Tesseract frame after frame, some drawn as a misreading would show them: in the
    first frame only ("Zoe Clien" for Zoe Chen), then for two frames on the camera-off tile ("Lu Wei" for Li
    Wei, too unlike her name to pass for it by spelling alone)."""
    require_tool("tesseract")
    switch = config.IdentitySettings().name_switch_frames
    pipeline = FramePipeline(detector, None)
    true = list(NAMES[:6])
    misread = {0: {4: "Zoe Clien"}, 5: {5: "Lu Wei"}, 6: {5: "Lu Wei"}}
    frames = 2 + switch + 3
    keys_per_frame, shown_per_frame = [], []
    for index in range(frames):
        drawn = [misread.get(index, {}).get(s, name) for s, name in enumerate(true)]
        image = video_frame(drawn, seed=index)
        result = pipeline.analyse(Frame(index, T0 + timedelta(seconds=index), image))
        assert len({o.tile for o in result.observations}) == 6, "precondition: the six tiles are found"
        keys = [pipeline.students.tile_key(i) for i in range(6)]
        keys_per_frame.append(keys)
        shown_per_frame.append([result.student_names.get(key, "") for key in keys])
    # One key per student over the whole recording, the misread frames included.
    assert all(keys == keys_per_frame[0] for keys in keys_per_frame)
    assert len(set(keys_per_frame[0])) == 6
    # The first frame's misreading names Zoe until the true name has `switch` frames more than it.
    assert [shown[4] for shown in shown_per_frame[: 2 + switch]] == ["Zoe Clien"] * (1 + switch) + ["Zoe Chen"]
    # Two misread frames never rename Li Wei; at the end every student is shown by their true name.
    assert [shown[5] for shown in shown_per_frame] == ["Li Wei"] * frames
    assert shown_per_frame[-1] == true
