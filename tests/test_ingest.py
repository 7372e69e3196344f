"""Capture sends to the school's server: a real `python -m dashboard` on a real PostgreSQL, reached over real HTTP
by the capture's sender (capture.sender) and its spool. Tokens are checked, a token never writes another
teacher's session, bad payloads write nothing, and an outage loses and duplicates no frame."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import Engine, func, select

import config
from analytics.live import engagement_config
from capture.sender import IngestClient, ServerError, ServerRecorder
from capture.spool import Spool, SpoolError
from dashboard.app import create_app
from dashboard.report_cache import warm_report
from db.errors import DatabaseError
from db.migrate import upgrade
from db.queries import find_session
from db.recorder import SessionRecorder
from db.schema import frames, observations, session_rollups, sessions, students
from db.tokens import issue_token, revoke_token
from db.users import Role, add_user
from tests.cli import REPO, assert_one_clear_line, run_module
from tests.dashboard_server import _wait_until_serving, free_port
from tests.dashboard_users import PASSWORD, signed_in_client
from tests.galleries import compose_gallery, lfw_faces
from tests.test_rollups import assert_rollups_agree
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence
from vocabulary.wire import INGEST_PATH, MAX_BATCH, frame_to_json

STUDENTS = 5
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def synthetic_frame(index: int, students: int = STUDENTS) -> FrameResult:
    """A frame as the pipeline would give it: one observation per student, the last one's camera off."""
    rng = np.random.default_rng(index)
    found = []
    for student in range(students):
        tile = Box(student * 200, 0, 190, 110)
        if student == students - 1:
            found.append(Observation(f"tile-{student + 1}", tile, tile, None, None, FaceSignals(Presence.CAMERA_OFF)))
            continue
        probabilities = rng.dirichlet(np.ones(7))
        signals = FaceSignals(Presence.FACE, float(rng.normal(0, 10)), float(rng.normal(0, 5)), 0.3, False, index % 9)
        face = Box(tile.x + 60, 20, 60, 60)
        emotion = int(probabilities.argmax())
        found.append(Observation(f"tile-{student + 1}", tile, face, probabilities, emotion, signals))
    names = {f"tile-{student + 1}": f"Student {student + 1}" for student in range(students)}
    return FrameResult(index, START + timedelta(seconds=index), found, 140.0, student_names=names)


@contextmanager
def dashboard_server(url: str, data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m dashboard` on `port` (so a restarted server is where the capture left it), stopped afterwards."""
    log = data_dir / f"dashboard-{port}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "dashboard", "--db", url, "--port", str(port), "--data-dir", str(data_dir)]
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}", server, log)
        yield server
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=30)


@contextmanager
def serving(engine: Engine, data_dir: Path) -> Iterator[str]:
    """`python -m dashboard` serving `engine`'s database on a free port; yields its base URL."""
    port = free_port()
    with dashboard_server(engine.url.render_as_string(hide_password=False), data_dir, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def school(postgres_url: str) -> tuple[Engine, dict[str, str]]:
    """A migrated PostgreSQL database with teachers alice and bob, and a capture token for each."""
    engine = upgrade(postgres_url)
    tokens = {}
    for teacher in ("alice", "bob"):
        add_user(engine, teacher, Role.TEACHER, PASSWORD)
        tokens[teacher] = issue_token(engine, teacher)[1]
    return engine, tokens


def stored_frames(engine: Engine, session: str) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(frames.c.frame_index)
                .join(sessions, sessions.c.id == frames.c.session_id)
                .where(sessions.c.name == session)
                .order_by(frames.c.frame_index)
            )
        )


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def post(base_url: str, path: str, body: object, token: str | None, raw: bytes | None = None) -> tuple[int, dict]:
    """One request to the ingest API; its status and JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url}{INGEST_PATH}/{path}", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tokens_issued_and_revoked_with_the_cli_are_honoured_by_the_server(postgres_url: str, tmp_path: Path) -> None:
    engine = upgrade(postgres_url)
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    issued = run_module("dashboard", "tokens", "issue", "alice", "--db", postgres_url)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with dashboard_server(postgres_url, tmp_path, port):
        assert post(base_url, "open", {"session": "maths", "source": "screen"}, None)[0] == 401
        assert post(base_url, "open", {"session": "maths", "source": "screen"}, "cpt_not-a-token")[0] == 401
        assert post(base_url, "open", {"session": "maths", "source": "screen"}, token) == (200, {"next_frame": 0})
        batch = [frame_to_json(synthetic_frame(i)) for i in range(3)]
        assert post(base_url, "frames", {"session": "maths", "frames": batch}, token) == (
            200,
            {"stored": [0, 1, 2], "duplicates": [], "next_frame": 3},
        )
        # Sent twice (its acknowledgement lost): acknowledged again, stored once.
        assert post(base_url, "frames", {"session": "maths", "frames": batch[1:]}, token) == (
            200,
            {"stored": [], "duplicates": [1, 2], "next_frame": 3},
        )
        revoked = run_module("dashboard", "tokens", "revoke", "1", "--db", postgres_url)
        assert revoked.returncode == 0, revoked.stderr
        # Revoked by another process while the server holds the token as live (dashboard.ingest.TokenCache): a
        # resend is no longer acknowledged, and a new frame is refused by its own write.
        status, answer = post(base_url, "frames", {"session": "maths", "frames": batch[1:]}, token)
        assert status == 401 and "revoked" in answer["error"]
        next_batch = {"session": "maths", "frames": [frame_to_json(synthetic_frame(3))]}
        status, answer = post(base_url, "frames", next_batch, token)
        assert status == 401 and "revoked" in answer["error"]
    assert stored_frames(engine, "maths") == [0, 1, 2]
    assert count(engine, observations) == 3 * STUDENTS
    with engine.connect() as connection:
        assert connection.scalar(select(sessions.c.teacher).where(sessions.c.name == "maths")) == "alice"


def test_a_token_never_writes_another_teachers_session(school: tuple[Engine, dict[str, str]], tmp_path: Path) -> None:
    engine, tokens = school
    # An admin's session, written by a local capture: it has no owner, so no token may write it either.
    with SessionRecorder.open(engine, "admins-own", "screen") as recorder:
        recorder.record(synthetic_frame(0))
    with serving(engine, tmp_path) as base_url:
        assert post(base_url, "open", {"session": "alices-class", "source": "screen"}, tokens["alice"])[0] == 200
        first = {"session": "alices-class", "frames": [frame_to_json(synthetic_frame(0))]}
        assert post(base_url, "frames", first, tokens["alice"])[0] == 200
        later = {"session": "alices-class", "frames": [frame_to_json(synthetic_frame(1))]}
        for path, body in [("open", {"session": "alices-class", "source": "screen"}), ("frames", later)]:
            status, answer = post(base_url, path, body, tokens["bob"])
            assert status == 403 and "another teacher" in answer["error"], answer
        status, _ = post(base_url, "close", {"session": "alices-class"}, tokens["bob"])
        assert status == 403
        for path, body in [
            ("open", {"session": "admins-own", "source": "screen"}),
            ("frames", {"session": "admins-own", "frames": [frame_to_json(synthetic_frame(1))]}),
        ]:
            assert post(base_url, path, body, tokens["alice"])[0] == 403
        # Bob's capture of that name is refused before anything is analysed or spooled.
        with pytest.raises(ServerError, match="another teacher"):
            ServerRecorder.open(base_url, tokens["bob"], "alices-class", "screen", tmp_path / "spool.db")
    assert stored_frames(engine, "alices-class") == [0]
    assert stored_frames(engine, "admins-own") == [0]
    # The server names each refusal, and whose token it was, on one line of its log for the admin.
    (log,) = tmp_path.glob("dashboard-*.log")
    assert "ingest refused /frames from 127.0.0.1 (bob): 403 session 'alices-class'" in log.read_text()
    with engine.connect() as connection:
        owners = dict(connection.execute(select(sessions.c.name, sessions.c.teacher)).all())
    assert owners == {"alices-class": "alice", "admins-own": None}


def test_the_sign_in_cookie_never_authorises_the_ingest_api(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'school.db'}")
    app = create_app(engine)
    client = signed_in_client(app, engine, "admin", Role.ADMIN)  # cookie and X-CSRFToken, as a browser's calls
    response = client.post(f"{INGEST_PATH}/open", json={"session": "forged", "source": "screen"})
    assert response.status_code == 401 and "token" in response.get_json()["error"]
    assert count(engine, sessions) == 0
    # And with a token, no CSRF token is asked for: the API is not the dashboard's forms.
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    token = issue_token(engine, "alice")[1]
    plain = app.server.test_client()
    response = plain.post(
        f"{INGEST_PATH}/open",
        json={"session": "maths", "source": "screen"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def bad_payloads() -> list[tuple[str, object, str]]:
    """(what, body, a word the error must name): each refused with 400 and nothing written."""
    good = frame_to_json(synthetic_frame(0))

    def changed(path: list[Any], value: object) -> dict:
        frame = json.loads(json.dumps(good))
        target = frame
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return {"session": "maths", "frames": [frame]}

    return [
        ("frame number as text", changed(["frame"], "7"), "frame"),
        ("negative frame number", changed(["frame"], -1), "frame"),
        ("frame number a boolean", changed(["frame"], True), "frame"),
        ("time without zone", changed(["ts"], "2026-12-03T09:00:00"), "ts"),
        ("time not a time", changed(["ts"], "yesterday"), "ts"),
        ("yaw out of range", changed(["observations", 0, "yaw"], 720.0), "yaw"),
        ("box of three", changed(["observations", 0, "box"], [1, 2, 3]), "box"),
        ("box with floats", changed(["observations", 0, "box"], [1.5, 2, 3, 4]), "box"),
        ("probabilities not summing to 1", changed(["observations", 0, "probabilities"], [0.5] * 7), "sum"),
        ("emotion out of range", changed(["observations", 0, "emotion"], 7), "emotion"),
        ("emotion without probabilities", changed(["observations", 0, "probabilities"], None), "together"),
        ("unknown presence", changed(["observations", 0, "presence"], "asleep"), "presence"),
        ("an image smuggled in", changed(["observations", 0, "face_pixels"], [0] * 100), "face_pixels"),
        ("student key too long", changed(["observations", 0, "student"], "k" * 65), "student"),
        ("a name with a control character", changed(["names", "tile-1"], "Ann\x1b[2J"), "name"),
        ("a student twice", changed(["observations", 1, "student"], "tile-1"), "twice"),
        ("too many observations", changed(["observations"], good["observations"] * 101), "observations"),
        ("frames out of order", {"session": "maths", "frames": [frame_to_json(synthetic_frame(1)), good]}, "order"),
        ("too many frames", {"session": "maths", "frames": [good] * (MAX_BATCH + 1)}, "frames"),
        ("no frames", {"session": "maths", "frames": []}, "frames"),
        ("unknown field", {"session": "maths", "frames": [good], "teacher": "bob"}, "teacher"),
        ("session blank", {"session": " ", "frames": [good]}, "session"),
        ("body a list", [good], "object"),
        # The good frame first: a batch is refused whole, so it is not written either.
        ("last frame bad", {"session": "maths", "frames": [good, changed(["frame"], "x")["frames"][0]]}, "frame"),
    ]


def test_bad_payloads_are_refused_with_one_clear_line_and_nothing_written(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    with serving(engine, tmp_path) as base_url:
        assert post(base_url, "open", {"session": "maths", "source": "screen"}, tokens["alice"])[0] == 200
        for what, body, word in bad_payloads():
            status, answer = post(base_url, "frames", body, tokens["alice"])
            assert status == 400, (what, answer)
            assert word in answer["error"] and "\n" not in answer["error"], (what, answer)
        for what, raw in [("NaN", b'{"session": "maths", "frames": [NaN]}'), ("not JSON", b"{session")]:
            status, answer = post(base_url, "frames", None, tokens["alice"], raw=raw)
            assert status == 400 and "JSON" in answer["error"], (what, answer)
        status, answer = post(base_url, "frames", None, tokens["alice"], raw=b" " * (5 * 1024 * 1024))
        assert status == 413, answer
        # The good frame is still taken afterwards.
        good = {"session": "maths", "frames": [frame_to_json(synthetic_frame(0))]}
        assert post(base_url, "frames", good, tokens["alice"])[0] == 200
    assert stored_frames(engine, "maths") == [0]
    assert count(engine, observations) == STUDENTS


def test_frames_spool_through_a_server_outage_and_arrive_once_in_order(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    url = engine.url.render_as_string(hide_password=False)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    spool_path = tmp_path / "spool.db"
    with dashboard_server(url, tmp_path, port):
        recorder = ServerRecorder.open(base_url, tokens["alice"], "maths", "screen", spool_path, drain_s=60)
        assert recorder.next_frame_index == 0
        for index in range(5):
            recorder.record(synthetic_frame(index))
        wait_until_sent(recorder)
    # The server is down: frames wait in the spool, and capture goes on.
    for index in range(5, 12):
        recorder.record(synthetic_frame(index))
    assert recorder.spool.waiting(base_url) == {"maths": 7}
    with dashboard_server(url, tmp_path, port):
        for index in range(12, 15):
            recorder.record(synthetic_frame(index))
        recorder.close()
        assert recorder.sent_frames == 15
    assert stored_frames(engine, "maths") == list(range(15))
    assert count(engine, observations) == 15 * STUDENTS
    with engine.connect() as connection:
        ended = connection.scalar(select(sessions.c.ended_at).where(sessions.c.name == "maths"))
    assert ended is not None
    assert Spool(spool_path).waiting(base_url) == {}


def test_a_lesson_is_sent_over_one_kept_alive_connection(school: tuple[Engine, dict[str, str]], tmp_path: Path) -> None:
    engine, tokens = school
    with serving(engine, tmp_path) as base_url:
        client = IngestClient(base_url, tokens["alice"])
        assert client.open("maths", "screen") == 0
        for index in range(5):
            client.send("maths", [frame_to_json(synthetic_frame(index))])
        client.close("maths")
        pool = client._pool.connection_from_url(base_url)
        # Seven posts, one handshake: a school's server is not asked for a new connection every second.
        assert (pool.num_requests, pool.num_connections) == (7, 1)
    assert stored_frames(engine, "maths") == list(range(5))


def test_a_resent_batch_is_acknowledged_and_counted_once_in_the_rollups(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    with serving(engine, tmp_path) as base_url:
        assert post(base_url, "open", {"session": "maths", "source": "screen"}, tokens["alice"])[0] == 200
        for batch in (range(0, 6), range(3, 9), range(0, 9)):  # the last two: answers lost, sent again
            body = {"session": "maths", "frames": [frame_to_json(synthetic_frame(index)) for index in batch]}
            status, answer = post(base_url, "frames", body, tokens["alice"])
            assert status == 200, answer
    assert stored_frames(engine, "maths") == list(range(9))
    with engine.connect() as connection:
        counted = connection.scalar(select(func.sum(session_rollups.c.observations)))
        session_id = connection.scalar(select(sessions.c.id).where(sessions.c.name == "maths"))
    assert counted == count(engine, observations) == 9 * STUDENTS
    assert_rollups_agree(engine, session_id)


def test_frames_left_at_exit_are_reported_kept_and_sent_by_the_next_run(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    url = engine.url.render_as_string(hide_password=False)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    spool_path = tmp_path / "spool.db"
    # The server already holds frames 0-3 of the session when the next capture of it starts, with the server down.
    with dashboard_server(url, tmp_path, port):
        first = ServerRecorder.open(base_url, tokens["alice"], "maths", "screen", spool_path)
        for index in range(4):
            first.record(synthetic_frame(index))
        first.close()
    blind = ServerRecorder.open(base_url, tokens["alice"], "maths", "screen", spool_path, drain_s=0.5)
    assert blind.next_frame_index == 0  # nobody to ask: numbered from the spool, renumbered once the server answers
    for index in range(3):
        blind.record(frame_at(index, START + timedelta(minutes=5, seconds=index)))
    with pytest.raises(ServerError, match=r"3 frame\(s\) not sent are kept in"):
        blind.close()
    assert Spool(spool_path).waiting(base_url) == {"maths": 3}

    with dashboard_server(url, tmp_path, port):
        later = ServerRecorder.open(base_url, tokens["alice"], "maths", "screen", spool_path)
        assert later.next_frame_index == 7  # after the 4 stored and the 3 spooled ones
        later.record(frame_at(7, START + timedelta(minutes=6)))
        later.close()
    assert stored_frames(engine, "maths") == list(range(8))
    with engine.connect() as connection:
        times = connection.scalars(select(frames.c.ts).order_by(frames.c.frame_index)).all()
    assert times[4:7] == [START + timedelta(minutes=5, seconds=i) for i in range(3)]
    assert Spool(spool_path).waiting(base_url) == {}


def frame_at(index: int, ts: datetime) -> FrameResult:
    return dataclasses.replace(synthetic_frame(index), timestamp=ts)


def wait_until_sent(recorder: ServerRecorder, limit_s: float = 60) -> None:
    """Until the sender has emptied the spool (not a timing check: the limit only ends a hung test)."""
    deadline = time.monotonic() + limit_s
    while recorder.spool.waiting(recorder.client.server_url):
        assert time.monotonic() < deadline, "the sender did not empty the spool"
        time.sleep(0.1)


def test_capture_cli_sends_a_gallery_to_the_server_with_a_token_file(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    token_file = tmp_path / "token"
    token_file.write_text(tokens["alice"] + "\n")
    token_file.chmod(0o644)  # readable by every user of the machine: capture says so
    gallery = compose_gallery(lfw_faces(4), 2, 2)
    image = tmp_path / "gallery.png"
    cv2.imwrite(str(image), gallery.image)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    spool = ["--spool", str(tmp_path / "spool.db")]
    with dashboard_server(engine.url.render_as_string(hide_password=False), tmp_path, port):
        result = run_module(
            "capture", "--source", str(image), "--session", "cli", "--server", base_url,
            "--token-file", str(token_file), *spool, "--attention-only",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "session=cli frames=1 faces=4" in result.stdout
        assert f"chmod 600 {token_file}" in result.stderr
        missing = run_module(
            "capture", "--source", str(image), "--server", base_url, "--token-file", str(tmp_path / "nope"), *spool
        )
        assert_one_clear_line(missing, "token file")
    assert stored_frames(engine, "cli") == [0]
    with engine.connect() as connection:
        assert connection.scalar(select(sessions.c.teacher).where(sessions.c.name == "cli")) == "alice"
        assert connection.scalar(select(func.count()).select_from(observations)) == 4


def test_capture_cli_with_the_server_down_keeps_the_frames_and_says_so(tmp_path: Path, monkeypatch: Any) -> None:
    image = tmp_path / "gallery.png"
    cv2.imwrite(str(image), compose_gallery(lfw_faces(4), 2, 2).image)
    nobody = f"http://127.0.0.1:{free_port()}"
    spool = tmp_path / "spool.db"
    # From the environment this time: a token never goes on the command line.
    monkeypatch.setenv("CLASSPULSE_TOKEN", "cpt_for-a-server-that-is-down")
    result = run_module(
        "capture", "--source", str(image), "--session", "away", "--server", nobody, "--spool", str(spool),
        "--attention-only",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "session=away frames=1 faces=4" in result.stdout
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "1 frame(s) not sent are kept in" in last and str(spool) in last
    assert Spool(spool).waiting(nobody) == {"away": 1}

    both = run_module("capture", "--source", str(image), "--server", nobody, "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert both.returncode == 2 and "--server" in both.stderr and not (tmp_path / "x.db").exists()


def test_two_captures_never_share_a_spool(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    first = ServerRecorder.open(nobody, "cpt_x", "one", "screen", tmp_path / "spool.db", drain_s=0)
    with pytest.raises(SpoolError, match="another capture is using the spool"):
        ServerRecorder.open(nobody, "cpt_x", "two", "screen", tmp_path / "spool.db")
    first.record(synthetic_frame(0))
    with pytest.raises(ServerError, match=r"1 frame\(s\) not sent"):
        first.close()
    # Released once the first capture ended: the next run takes the spool, and its frame, over.
    assert Spool(tmp_path / "spool.db").waiting(nobody) == {"one": 1}


def test_a_token_revoked_mid_class_stops_the_sending_and_keeps_the_frames(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    with serving(engine, tmp_path) as base_url:
        recorder = ServerRecorder.open(base_url, tokens["alice"], "maths", "screen", tmp_path / "spool.db")
        recorder.record(synthetic_frame(0))
        wait_until_sent(recorder)
        revoke_token(engine, 1)
        recorder.record(synthetic_frame(1))
        with pytest.raises(ServerError, match=r"unknown or revoked.*1 frame\(s\) not sent are kept in"):
            recorder.close()
    assert stored_frames(engine, "maths") == [0]
    assert Spool(tmp_path / "spool.db").waiting(base_url) == {"maths": 1}


def test_frames_of_another_teachers_run_in_a_shared_spool_wait_for_that_teachers_token(
    school: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, tokens = school
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    spool_path = tmp_path / "spool.db"
    # Alice's class while the server is down: her frame stays in the machine's spool.
    alices = ServerRecorder.open(base_url, tokens["alice"], "alices", "screen", spool_path, drain_s=0)
    alices.record(synthetic_frame(0))
    with pytest.raises(ServerError, match=r"1 frame\(s\) not sent"):
        alices.close()
    with dashboard_server(engine.url.render_as_string(hide_password=False), tmp_path, port):
        # Bob's capture on the same machine sends his own frames only, never Alice's under his name.
        bobs = ServerRecorder.open(base_url, tokens["bob"], "bobs", "screen", spool_path)
        bobs.record(synthetic_frame(0))
        bobs.close()
        assert stored_frames(engine, "alices") == []
        ServerRecorder.open(base_url, tokens["alice"], "alices", "screen", spool_path).close()
    assert stored_frames(engine, "alices") == [0] and stored_frames(engine, "bobs") == [0]
    with engine.connect() as connection:
        owners = dict(connection.execute(select(sessions.c.name, sessions.c.teacher)).all())
    assert owners == {"alices": "alice", "bobs": "bob"}


def test_a_frame_sent_to_the_server_is_stored_exactly_as_a_local_capture_stores_it(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'school.db'}")
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    token = issue_token(engine, "alice")[1]
    results = [synthetic_frame(i, students=7) for i in range(3)]
    with SessionRecorder.open(engine, "local", "screen", "alice") as recorder:
        for result in results:
            recorder.record(result)
    client = create_app(engine).server.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(f"{INGEST_PATH}/open", json={"session": "sent", "source": "screen"}, headers=headers).json
    body = {"session": "sent", "frames": [frame_to_json(result) for result in results]}
    assert client.post(f"{INGEST_PATH}/frames", json=body, headers=headers).status_code == 200
    client.post(f"{INGEST_PATH}/close", json={"session": "sent"}, headers=headers)

    def rows(table: Any, session: str) -> list[tuple]:
        """Every column but the row ids, which differ between the two sessions."""
        kept = [c for c in table.c if c.name not in ("id", "session_id", "student_id")]
        with engine.connect() as connection:
            return connection.execute(
                select(*kept)
                .join(sessions, sessions.c.id == table.c.session_id)
                .where(sessions.c.name == session)
                .order_by(*kept)
            ).all()

    for table, count in [(observations, 3 * 7), (frames, 3), (students, 7)]:
        assert rows(table, "sent") == rows(table, "local") and len(rows(table, "local")) == count


def test_closing_a_session_warms_its_report_for_the_teacher(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'school.db'}")
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    headers = {"Authorization": f"Bearer {issue_token(engine, 'alice')[1]}"}
    client = create_app(engine).server.test_client()
    client.post(f"{INGEST_PATH}/open", json={"session": "sent", "source": "screen"}, headers=headers)
    body = {"session": "sent", "frames": [frame_to_json(synthetic_frame(i, students=4)) for i in range(3)]}
    assert client.post(f"{INGEST_PATH}/frames", json=body, headers=headers).status_code == 200
    assert client.post(f"{INGEST_PATH}/close", json={"session": "sent"}, headers=headers).status_code == 200

    ended = find_session(engine, "sent")
    assert ended.ended_at is not None
    # None: this end of the session was warmed already, by the close.
    assert warm_report(engine, ended, engagement_config()) is None


def test_a_session_no_capture_writes_is_closed_after_the_configured_idle_time(tmp_path: Path) -> None:
    engine = upgrade(f"sqlite:///{tmp_path / 'school.db'}")
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    headers = {"Authorization": f"Bearer {issue_token(engine, 'alice')[1]}"}
    school_file = tmp_path / "school.toml"
    school_file.write_text("[dashboard]\ningest_idle_close_minutes = 0.002\n")  # 0.12 s
    try:
        config.choose(school_file)
        client = create_app(engine).server.test_client()
    finally:
        config.choose(None)
    client.post(f"{INGEST_PATH}/open", json={"session": "quiet", "source": "screen"}, headers=headers)
    assert find_session(engine, "quiet").ended_at is None
    time.sleep(0.5)
    # Idle sessions are closed when the server next opens one.
    client.post(f"{INGEST_PATH}/open", json={"session": "next", "source": "screen"}, headers=headers)
    assert find_session(engine, "quiet").ended_at is not None
    assert find_session(engine, "next").ended_at is None


def varied_frames() -> list[FrameResult]:
    """Frames in which students come, leave, come back, move tile, lose their tile and are named late: what a
    batch must write as frame-by-frame recording does."""
    tile_a, tile_b, tile_c, moved = (
        Box(0, 0, 190, 110),
        Box(200, 0, 190, 110),
        Box(400, 0, 190, 110),
        Box(0, 120, 190, 110),
    )
    happy = np.array([0.0, 0.0, 0.0, 0.9, 0.0, 0.1, 0.0])

    def seen(key: str, tile: Box | None, presence: Presence = Presence.FACE) -> Observation:
        box = tile or Box(1, 2, 3, 4)
        if presence is not Presence.FACE:
            return Observation(key, tile, box, None, None, FaceSignals(presence))
        return Observation(key, tile, box, happy, 3, FaceSignals(Presence.FACE, 5.0, -3.0, 0.3, False, 0))

    students_in = [
        ([seen("a", tile_a), seen("b", tile_b)], {"a": "Ann"}),
        ([seen("a", moved), seen("b", tile_b), seen("c", tile_c, Presence.CAMERA_OFF)], {"b": "Ben"}),
        ([seen("a", moved), seen("c", None)], {"c": "Cy"}),
        ([seen("a", tile_a), seen("b", tile_b, Presence.EMPTY), seen("c", tile_c)], {"a": "Annie"}),
        ([], {}),
        ([seen("b", None)], {}),
    ]
    # 6 s apart: two roll-up bins of two frames each, an empty frame, and a bin of one.
    return [
        FrameResult(i, START + timedelta(seconds=6 * i), found, 100.0, student_names=names)
        for i, (found, names) in enumerate(students_in)
    ]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_batch_writes_what_frame_by_frame_recording_writes(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("postgres_url") if kind == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
    engine = upgrade(url)
    results = varied_frames()
    with SessionRecorder.open(engine, "one-by-one", "screen") as recorder:
        for result in results:
            recorder.record(result)
    with SessionRecorder.open(engine, "batched", "screen") as recorder:
        recorder.record_many(results[:2])
        recorder.record_many(results[2:])
        assert recorder.next_frame_index == len(results)

    def rows(table: Any, session: str, *keys: Any) -> list[tuple]:
        """Every column but the row ids, with the student's key for its id."""
        kept = [c for c in table.c if c.name not in ("id", "session_id", "student_id")]
        joined = table.join(sessions, sessions.c.id == table.c.session_id)
        if "student_id" in table.c:
            joined = joined.join(students, students.c.id == table.c.student_id)
            kept.append(students.c.key)
        with engine.connect() as connection:
            return connection.execute(
                select(*kept).select_from(joined).where(sessions.c.name == session).order_by(*kept)
            ).all()

    for table in (frames, students, observations, session_rollups):
        assert rows(table, "batched") == rows(table, "one-by-one"), table.name
    assert len(rows(session_rollups, "batched")) == 7  # a, b, c in 9:00:00 and in 9:00:10; b in 9:00:30
    with engine.connect() as connection:
        batched = connection.scalar(select(sessions.c.id).where(sessions.c.name == "batched"))
    assert_rollups_agree(engine, batched)


def test_a_batch_that_fails_in_the_database_writes_none_of_its_frames(postgres_url: str) -> None:
    engine = upgrade(postgres_url)
    results = varied_frames()
    # A student key longer than students.key holds: PostgreSQL refuses it at the third frame's insert, after the
    # first two frames' rows and their new students went into the transaction.
    too_long = dataclasses.replace(results[2], observations=[*results[2].observations, results[2].observations[0]])
    too_long.observations[-1] = dataclasses.replace(too_long.observations[-1], student_key="x" * 65)
    with SessionRecorder.open(engine, "maths", "screen") as recorder:
        with pytest.raises(DatabaseError):
            recorder.record_many([results[0], results[1], too_long])
        assert recorder.next_frame_index == 0
        assert (count(engine, frames), count(engine, students), count(engine, observations)) == (0, 0, 0)
        # The students it would have added are not taken as stored: the same frames, resent, write them.
        recorder.record_many(results[:3])
    assert stored_frames(engine, "maths") == [0, 1, 2]
    assert count(engine, students) == 3 and count(engine, session_rollups) > 0
