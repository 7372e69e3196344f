"""A class roster that lasts (issue 15): sessions of one class share its students, a teacher's rename and merge
carry over to the next lesson, a label cut short finds its full name; `--class` on the local and the server
path; `python -m db classes`; the migration on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, insert, select

from capture.sender import ServerRecorder
from dashboard.app import create_app
from db.classes import list_classes, show_class
from db.engine import connect
from db.migrate import ALEMBIC_INI, upgrade
from db.purge import purge_session
from db.recorder import SessionRecorder
from db.schema import class_student_aliases, class_students, classes, sessions, students
from db.students import merge_students, rename_student, undo_merge
from db.users import Role, add_user
from tests.cli import run_module
from tests.dashboard_users import PASSWORD, signed_in_client
from tests.galleries import compose_gallery, lfw_faces
from tests.test_bad_input import assert_argument_refused
from tests.test_dashboard import page, text
from tests.test_ingest import post, school, serving, synthetic_frame  # noqa: F401
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

T0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
    migrated = upgrade(url)
    yield migrated
    migrated.dispose()


def lesson(engine: Engine, session: str, names: dict[str, str], start: datetime, class_name: str = "7B") -> None:
    """A recorded lesson of the class: two frames, every student in both, named as OCR read them from frame 1
    on (a name read after the student was first seen, as in a real gallery)."""
    with SessionRecorder.open(engine, session, "screen", "alice", class_name) as recorder:
        for index in range(2):
            found = [
                Observation(
                    key, Box(i * 100, 0, 90, 90), Box(i * 100, 0, 90, 90), None, None, FaceSignals(Presence.FACE)
                )
                for i, key in enumerate(names)
            ]
            read = names if index == 1 else {}
            recorder.record(FrameResult(index, start + timedelta(seconds=index), found, 10.0, student_names=read))


def shown(engine: Engine, session: str) -> dict[str, tuple[str | None, int | None]]:
    """The session's students: key -> (display name, roster student id)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(students.c.key, students.c.display_name, students.c.class_student_id)
            .join(sessions, sessions.c.id == students.c.session_id)
            .where(sessions.c.name == session)
        )
        return {row.key: (row.display_name, row.class_student_id) for row in rows}


def roster(engine: Engine) -> dict[str, set[str]]:
    """Every roster student's name -> their aliases."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(class_students.c.display_name, class_student_aliases.c.alias).join(
                class_student_aliases, class_student_aliases.c.class_student_id == class_students.c.id
            )
        )
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row.display_name, set()).add(row.alias)
        return found


def test_names_a_rename_and_a_merge_carry_over_to_the_next_lesson(engine: Engine) -> None:
    lesson(
        engine,
        "monday",
        {"tile-1": "A1exandr Petrov", "tile-2": "Bea Lund", "tile-3": "Kris Smith", "tile-4": "Chris Smith"},
        T0,
    )
    monday = shown(engine, "monday")
    assert all(roster_id is not None for _, roster_id in monday.values())
    # The teacher corrects OCR's reading, and makes the misread Chris one student with the right one.
    rename_student(engine, "monday", "tile-1", "Alexandr Petrov")
    merge_students(engine, "monday", "tile-4", "tile-3")
    assert roster(engine)["Alexandr Petrov"] == {"alexandr petrov", "a1exandr petrov"}
    assert "kris smith" in roster(engine)["Chris Smith"]

    lesson(
        engine,
        "tuesday",
        {"tile-9": "A1exandr Petrov", "tile-8": "bea  LUND", "tile-7": "Kris Smith", "tile-6": "Dan Oyelaran"},
        T0 + WEEK,
    )
    tuesday = shown(engine, "tuesday")
    monday = shown(engine, "monday")
    assert tuesday["tile-9"] == ("Alexandr Petrov", monday["tile-1"][1])
    assert tuesday["tile-8"] == ("Bea Lund", monday["tile-2"][1])
    assert tuesday["tile-7"] == ("Chris Smith", monday["tile-4"][1])
    assert tuesday["tile-6"][0] == "Dan Oyelaran"
    assert tuesday["tile-6"][1] not in {roster_id for _, roster_id in monday.values()}
    detail = show_class(engine, "7B")
    assert [s.name for s in detail.sessions] == ["monday", "tuesday"]
    assert {s.name: s.sessions for s in detail.roster}["Alexandr Petrov"] == 2


def test_undoing_a_merge_takes_back_what_it_added_to_the_roster(engine: Engine) -> None:
    lesson(engine, "monday", {"tile-1": "Kris Smith", "tile-2": "Chris Smith", "tile-3": "Ann"}, T0)
    before = roster(engine)
    merge = merge_students(engine, "monday", "Chris Smith", "Kris Smith")
    assert roster(engine)["Chris Smith"] == {"chris smith", "kris smith"}
    undo_merge(engine, "monday", merge.id)
    assert roster(engine) == before
    assert shown(engine, "monday")["tile-1"][1] is not None
    lesson(engine, "tuesday", {"tile-5": "Kris Smith"}, T0 + WEEK)
    assert shown(engine, "tuesday")["tile-5"] == shown(engine, "monday")["tile-1"]


def test_a_label_cut_short_maps_to_the_one_full_name_it_begins(engine: Engine) -> None:
    lesson(engine, "monday", {"tile-1": "Alexandr Petrov", "tile-2": "Alice Wong", "tile-3": "Bea Lund"}, T0)
    lesson(engine, "tuesday", {"tile-1": "Alexandr…", "tile-2": "Al…", "tile-3": "Bea Lu..."}, T0 + WEEK)
    monday, tuesday = shown(engine, "monday"), shown(engine, "tuesday")
    assert tuesday["tile-1"] == monday["tile-1"]
    assert tuesday["tile-3"] == monday["tile-3"]
    # Two roster names begin "Al": no guess, and no roster student named "Al…".
    assert tuesday["tile-2"] == ("Al…", None)
    assert set(roster(engine)) == {"Alexandr Petrov", "Alice Wong", "Bea Lund"}


def test_the_name_the_vote_settles_on_is_stored_once_and_never_over_a_teachers_rename(engine: Engine) -> None:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _k, statement, *_: statements.append(statement))

    def named(statement: str) -> bool:
        """The recorder's compare-and-set of a name (a teacher's rename sets it unconditionally)."""
        return statement.startswith("UPDATE students SET display_name") and "students.display_name IS" in statement

    # The capture's winning name per frame: tile-1's first misreading gives way to the true name; tile-2 is
    # renamed by the teacher after frame 1, then the vote changes its mind.
    votes = [
        {"tile-1": "Zoe Clien", "tile-2": "Ben Ito"},
        {"tile-1": "Zoe Clien", "tile-2": "Ben Ito"},
        {"tile-1": "Zoe Chen", "tile-2": "Ben Itoh"},
        {"tile-1": "Zoe Chen", "tile-2": "Ben Iton"},
    ]
    with SessionRecorder.open(engine, "monday", "screen", "alice", "7B") as recorder:
        for index, read in enumerate(votes):
            if index == 2:
                rename_student(engine, "monday", "tile-2", "Benjamin Ito")
            found = [
                Observation(
                    key, Box(i * 100, 0, 90, 90), Box(i * 100, 0, 90, 90), None, None, FaceSignals(Presence.FACE)
                )
                for i, key in enumerate(read)
            ]
            recorder.record(FrameResult(index, T0 + timedelta(seconds=index), found, 10.0, student_names=read))
    monday = shown(engine, "monday")
    by_name = roster_ids(engine)
    assert monday == {"tile-1": ("Zoe Chen", by_name["Zoe Chen"]), "tile-2": ("Benjamin Ito", by_name["Benjamin Ito"])}
    # The misreading is no roster student of its own but a reading of the true name; the rename's reading that
    # came too late ("Ben Itoh") leaves nobody behind either.
    assert roster(engine) == {"Zoe Chen": {"zoe chen", "zoe clien"}, "Benjamin Ito": {"benjamin ito", "ben ito"}}
    # Frame 2 only: tile-1's change written, and tile-2's refused by the rename; nothing after it.
    assert sum(map(named, statements)) == 2
    # A continued session leaves the names it finds (a teacher's or not) as they are.
    with SessionRecorder.open(engine, "monday", "screen", "alice", "7B") as recorder:
        found = [Observation("tile-1", Box(0, 0, 90, 90), Box(0, 0, 90, 90), None, None, FaceSignals(Presence.FACE))]
        recorder.record(FrameResult(4, T0 + timedelta(seconds=4), found, 10.0, student_names={"tile-1": "Zoe Chan"}))
    assert shown(engine, "monday") == monday
    assert sum(map(named, statements)) == 2


def roster_ids(engine: Engine) -> dict[str, int]:
    """Every roster student's name -> their id."""
    with engine.connect() as connection:
        return {row.display_name: row.id for row in connection.execute(select(class_students))}


def test_classes_are_per_teacher_and_a_session_without_one_has_no_roster(engine: Engine) -> None:
    lesson(engine, "alices", {"tile-1": "Ann"}, T0)
    with SessionRecorder.open(engine, "bobs", "screen", "bob", "7B") as recorder:
        recorder.record(FrameResult(0, T0, [], 1.0, student_names={}))
    with SessionRecorder.open(engine, "classless", "screen", "alice") as recorder:
        tile = Box(0, 0, 90, 90)
        found = [Observation("tile-1", tile, tile, None, None, FaceSignals(Presence.FACE))]
        recorder.record(FrameResult(0, T0, found, 1.0, student_names={"tile-1": "Ann"}))
    assert [(c.teacher, c.name, c.sessions) for c in list_classes(engine)] == [("alice", "7B", 1), ("bob", "7B", 1)]
    assert shown(engine, "classless") == {"tile-1": ("Ann", None)}
    # A continued session keeps its class; one without gets it.
    with SessionRecorder.open(engine, "classless", "screen", "alice", "8C") as recorder:
        assert recorder.class_id is not None
    with SessionRecorder.open(engine, "classless", "screen", "alice", "9D") as recorder:
        pass
    assert [c.name for c in list_classes(engine, "alice")] == ["7B", "8C"]


def test_purging_the_last_session_keeps_the_roster_until_the_class_is_forgotten(engine: Engine) -> None:
    lesson(engine, "monday", {"tile-1": "Ann Lee", "tile-2": "Bo Li"}, T0)
    purge_session(engine, "monday")
    url = engine.url.render_as_string(hide_password=False)
    shown_class = run_module("db", "classes", "show", "7B", "--db", url)
    assert shown_class.returncode == 0, shown_class.stderr
    assert "Ann Lee" in shown_class.stdout and "0 session(s)" in shown_class.stdout
    forgot = run_module("db", "classes", "forget", "7B", "--db", url)
    assert forgot.returncode == 0, forgot.stderr
    assert "2 student(s)" in forgot.stdout
    assert roster(engine) == {}
    unknown = run_module("db", "classes", "forget", "8C", "--db", url)
    assert unknown.returncode == 2 and "no class named '8C'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_capture_with_class_on_the_local_path(tmp_path: Path) -> None:
    gallery = compose_gallery(lfw_faces(4), 2, 2, names=["Ann Lee", "Bo Li", "Cy Ng", "Di Ho"])
    image = tmp_path / "gallery.png"
    cv2.imwrite(str(image), gallery.image)
    db = tmp_path / "class.db"
    for session in ("monday", "tuesday"):
        result = run_module(
            "capture", "--source", str(image), "--db", f"sqlite:///{db}", "--session", session,
            "--class", " 7B ", "--attention-only",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    engine = connect(f"sqlite:///{db}")
    assert [(c.name, c.sessions) for c in list_classes(engine)] == [("7B", 2)]
    monday, tuesday = shown(engine, "monday"), shown(engine, "tuesday")
    named = {name: roster_id for name, roster_id in monday.values() if name is not None}
    assert named and all(roster_id is not None for roster_id in named.values())
    # The same gallery the next lesson: each name read is the same roster student.
    assert {name: roster_id for name, roster_id in tuesday.values() if name in named} == named
    listed = run_module("db", "classes", "list", "--db", f"sqlite:///{db}")
    assert "7B  teacher=(admins)  sessions=2" in listed.stdout, listed.stderr
    engine.dispose()


@pytest.mark.parametrize("bad", ["   ", "x" * 201, "7B\x07"])
def test_a_bad_class_is_one_clear_line_and_exit_2(bad: str, tmp_path: Path) -> None:
    result = run_module("capture", "--source", "nowhere.png", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--class", bad)
    assert_argument_refused(result, "--class")
    assert not (tmp_path / "x.db").exists()


def test_capture_with_class_on_the_server_path(school: tuple[Engine, dict[str, str]], tmp_path: Path) -> None:  # noqa: F811
    engine, tokens = school
    with serving(engine, tmp_path) as base_url:
        for session in ("monday", "tuesday"):
            with ServerRecorder.open(
                base_url, tokens["alice"], session, "screen", tmp_path / "spool.db", class_of="7B"
            ) as recorder:
                for index in range(3):
                    result = synthetic_frame(index)
                    if session == "tuesday" and index < 2:
                        # The capture's vote first settles on a misreading, then on the true name in frame 2.
                        result.student_names["tile-1"] = "Studemt 1"
                    recorder.record(result)
        refused = post(base_url, "open", {"session": "x", "source": "screen", "class": " "}, tokens["alice"])
        assert refused[0] == 400 and "class must be a non-blank string" in refused[1]["error"]
        unknown = post(base_url, "open", {"session": "x", "source": "screen", "klass": "7B"}, tokens["alice"])
        assert unknown[0] == 400 and "unknown field 'klass'" in unknown[1]["error"]
    assert [(c.teacher, c.name, c.sessions) for c in list_classes(engine)] == [("alice", "7B", 2)]
    monday, tuesday = shown(engine, "monday"), shown(engine, "tuesday")
    assert monday == tuesday and all(roster_id is not None for _, roster_id in monday.values())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_keeps_rows_and_round_trips(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("postgres_url") if kind == "postgresql" else f"sqlite:///{tmp_path / 'old.db'}"
    engine = connect(url)
    config = Config(str(ALEMBIC_INI))

    def migrate(step: str, revision: str) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, step)(config, revision)

    migrate("upgrade", "0012")
    with engine.begin() as connection:
        session_id = connection.execute(
            insert(sessions).values(name="old", source="screen", started_at=T0, teacher=None).returning(sessions.c.id)
        ).scalar_one()
        connection.execute(
            insert(students).values(
                session_id=session_id, key="tile-1", display_name="Ann", first_seen=T0, last_seen=T0
            )
        )
    upgrade(engine)
    assert shown(engine, "old") == {"tile-1": ("Ann", None)}
    lesson(engine, "new", {"tile-1": "Ann"}, T0 + WEEK)
    migrate("downgrade", "0012")
    with engine.connect() as connection:
        assert connection.scalar(select(students.c.display_name).where(students.c.key == "tile-1").limit(1)) == "Ann"
        assert sorted(connection.scalars(select(sessions.c.name))) == ["new", "old"]
    migrate("upgrade", "head")
    with engine.connect() as connection:
        assert connection.scalars(select(classes.c.id)).all() == []
    assert shown(engine, "old") == {"tile-1": ("Ann", None)}
    engine.dispose()


def test_a_teacher_without_sessions_of_their_own_is_told_so(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'c.db'}")
    lesson(engine, "alices-maths", {"tile-1": "Ann"}, T0)
    app = create_app(engine)
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    bob = signed_in_client(app, engine, "bob", Role.TEACHER)
    for path in ("/sessions", "/"):  # the list, and the live page a teacher lands on
        shown = text(page(bob, path))
        assert "No sessions of yours yet" in shown and "alices-maths" not in shown and "No class has been" not in shown
    assert "alices-maths" in text(page(signed_in_client(app, engine, "alice", Role.TEACHER), "/sessions"))
    engine.dispose()
