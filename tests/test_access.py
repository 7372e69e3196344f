"""Dashboard access: sign-in on every route, teachers see only their own sessions, throttling, sign-out, the
purpose notice, CSRF tokens on every state-changing request, the cookie key, the users CLI, and the server
(waitress) stopping cleanly."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update

from dashboard import ids
from dashboard.__main__ import is_loopback
from dashboard.app import create_app
from dashboard.auth import CSRF_FIELD, SECRET_KEY_FILE, LoginThrottle, load_secret_key
from dashboard.live import flag_id
from db.migrate import upgrade
from db.queries import acknowledged_flags, find_session
from db.schema import sessions
from db.users import Role, add_user, check_login, find_user, set_password
from tests.cli import REPO, assert_one_clear_line
from tests.dashboard_server import free_port, running_dashboard
from tests.dashboard_users import PASSWORD, add_user_with_cli, csrf_token, post_form, sign_in, signed_in_client
from tests.test_dashboard import ABSENCE, ABSENCE_START, LIVE_OUTPUTS, dash_call, page, text
from tests.test_timeline import PERIOD_1, record


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'classpulse.db'}"


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    """'alice-maths' owned by teacher alice, 'bob-history' by teacher bob, 'unowned' by nobody."""
    migrated = upgrade(url)
    for name, teacher in (("alice-maths", "alice"), ("bob-history", "bob"), ("unowned", None)):
        record(migrated, name, PERIOD_1)
        with migrated.begin() as connection:
            connection.execute(update(sessions).where(sessions.c.name == name).values(teacher=teacher))
    for name in ("alice", "bob"):
        add_user(migrated, name, Role.TEACHER, PASSWORD)
    yield migrated
    migrated.dispose()


@pytest.fixture
def app(engine: Engine) -> Dash:
    return create_app(engine)


def session_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(sessions.c.id).where(sessions.c.name == name))


def assert_refused(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, json={} if method == "POST" else None)
    body = response.get_data(as_text=True)
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login?next="), (method, path)
    else:
        assert response.status_code == 401, (method, path, response.status_code)
    assert "alice-maths" not in body and "_dash-config" not in body, (method, path)


def test_every_route_refuses_a_visitor_who_has_not_signed_in(app: Dash) -> None:
    client = app.server.test_client()
    rules = list(app.server.url_map.iter_rules())
    paths = {"/", "/sessions", "/live/alice-maths", "/report/alice-maths", "/assets/style.css", "/_dash-layout"}
    # Every registered route, its variables filled in: Dash's endpoints, the component suites, the catch-all.
    paths |= {rule.rule.replace("<path:", "<").split("<")[0] + "x" if "<" in rule.rule else rule.rule for rule in rules}
    paths -= {"/login"}
    assert {"/_dash-update-component", "/_dash-layout", "/_dash-dependencies"} <= paths
    for path in sorted(paths):
        for method in ("GET", "POST"):
            assert_refused(client, method, path)
    # A Dash callback request as the browser sends it is refused before the callback runs.
    response = client.post(
        "/_dash-update-component",
        json={
            "output": f"{ids.PAGE}.children",
            "outputs": {"id": ids.PAGE, "property": "children"},
            "inputs": [{"id": ids.URL, "property": "pathname", "value": "/sessions"}],
            "changedPropIds": [f"{ids.URL}.pathname"],
        },
    )
    assert response.status_code == 401 and "alice" not in response.get_data(as_text=True)


def test_a_page_request_is_sent_to_the_sign_in_form_and_back_afterwards(app: Dash, engine: Engine) -> None:
    client = app.server.test_client()
    response = client.get("/report/alice-maths", headers={"Accept": "text/html"})
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/report/alice-maths"
    form = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/report/alice-maths"' in form
    # The form's hidden token is the one the cookie carries for Dash's requests.
    assert f'name="{CSRF_FIELD}" value="{csrf_token(client)}"' in form
    response = post_form(client, "/login", {"name": "alice", "password": PASSWORD, "next": "/report/alice-maths"})
    assert response.headers["Location"] == "/notice?next=/report/alice-maths"
    response = post_form(client, "/notice", {"accept": "yes", "next": "/report/alice-maths"})
    assert response.headers["Location"] == "/report/alice-maths"
    assert "<title>ClassPulse</title>" in client.get("/report/alice-maths").get_data(as_text=True)


def test_next_never_leads_off_the_site(app: Dash) -> None:
    client = app.server.test_client()
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = post_form(client, "/login", {"name": "alice", "password": PASSWORD, "next": target})
        assert response.headers["Location"] == "/notice?next=/"


def test_a_wrong_password_or_unknown_name_is_refused_alike(app: Dash) -> None:
    client = app.server.test_client()
    for name, password in (("alice", "not her password"), ("mallory", PASSWORD), ("alice", "")):
        response = post_form(client, "/login", {"name": name, "password": password})
        assert response.status_code == 401
        assert "Wrong user name or password" in response.get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 401


def test_five_failures_lock_that_name_from_that_address_even_for_the_right_password(app: Dash) -> None:
    client = app.server.test_client()
    for _ in range(5):
        assert post_form(client, "/login", {"name": "alice", "password": "guess"}).status_code == 401
    locked = post_form(client, "/login", {"name": "Alice", "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.get_data(as_text=True)
    # Another user from the same address, and the same user from another address, are not locked out.
    assert post_form(client, "/login", {"name": "bob", "password": PASSWORD}).status_code == 302
    elsewhere = app.server.test_client()
    response = post_form(
        elsewhere, "/login", {"name": "alice", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert response.status_code == 302


def test_the_throttle_forgets_failures_older_than_its_window() -> None:
    throttle = LoginThrottle(max_failures=5, window_s=300)
    key = ("alice", "127.0.0.1")
    for second in range(5):
        throttle.failed(key, now=1000.0 + second)
    assert throttle.wait_s(key, now=1010.0) == pytest.approx(290.0)
    assert throttle.wait_s(key, now=1299.5) == pytest.approx(0.5)
    assert throttle.wait_s(key, now=1300.0) == 0.0  # the first failure is 300 s old: four are left
    throttle.failed(key, now=1302.0)
    throttle.succeeded(key)
    assert throttle.wait_s(key, now=1302.0) == 0.0


def test_a_teacher_sees_only_their_own_sessions(app: Dash, engine: Engine) -> None:
    alice = signed_in_client(app, engine, "alice")
    listed = text(page(alice, "/sessions"))
    assert "alice-maths" in listed and "bob-history" not in listed and "unowned" not in listed
    for path in ("/live/bob-history", "/report/bob-history", "/report/unowned", "/live/no-such-session"):
        shown = text(page(alice, path))
        assert "Unknown session" in shown and "you have no session named" in shown
        # The refusal names no other session, and reads the same whether the asked-for one exists or not.
        asked = path.rsplit("/", 1)[1]
        assert [name for name in ("alice-maths", "bob-history", "unowned") if name in shown] in ([], [asked])
    assert "alice-maths" in text(page(alice, "/report/alice-maths"))
    assert "alice-maths" in str(page(alice, "/"))


def test_a_teacher_cannot_read_another_session_by_forging_the_pages_stores(app: Dash, engine: Engine) -> None:
    alice = signed_in_client(app, engine, "alice")
    bob_id = session_id(engine, "bob-history")
    for forged in ({"id": bob_id, "name": "bob-history"}, {"id": bob_id, "name": "alice-maths"}):
        response = alice.post(
            "/_dash-update-component",
            json={
                "output": ".." + "...".join(f"{i}.{p}" for i, p in LIVE_OUTPUTS) + "..",
                "outputs": [{"id": i, "property": p} for i, p in LIVE_OUTPUTS],
                "inputs": [
                    {"id": ids.LIVE_INTERVAL, "property": "n_intervals", "value": 1},
                    {"id": ids.LIVE_WINDOW, "property": "value", "value": "all"},
                ],
                "state": [
                    {"id": ids.LIVE_SESSION, "property": "data", "value": forged},
                    {"id": ids.LIVE_STATE, "property": "data", "value": None},
                ],
                "changedPropIds": [f"{ids.LIVE_INTERVAL}.n_intervals"],
            },
        )
        assert response.status_code == 204, forged  # Dash's "no update": nothing of the session is sent
    for button, download in (
        (ids.DOWNLOAD_ROWS_BUTTON, ids.DOWNLOAD_ROWS),
        (ids.DOWNLOAD_STUDENTS_BUTTON, ids.DOWNLOAD_STUDENTS),
    ):
        response = alice.post(
            "/_dash-update-component",
            json={
                "output": f"{download}.data",
                "outputs": {"id": download, "property": "data"},
                "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
                "state": [{"id": ids.REPORT_SESSION, "property": "data", "value": "bob-history"}],
                "changedPropIds": [f"{button}.n_clicks"],
            },
        )
        assert response.status_code == 204
    own = dash_call(
        alice,
        [(ids.DOWNLOAD_ROWS, "data")],
        [(ids.DOWNLOAD_ROWS_BUTTON, "n_clicks", 1)],
        [(ids.REPORT_SESSION, "data", "alice-maths")],
    )
    assert own[ids.DOWNLOAD_ROWS]["data"]["filename"] == "alice-maths-rows.csv"


def test_an_admin_sees_every_session(app: Dash, engine: Engine) -> None:
    admin = signed_in_client(app, engine, "head", Role.ADMIN)
    listed = text(page(admin, "/sessions"))
    assert all(name in listed for name in ("alice-maths", "bob-history", "unowned"))
    assert "bob-history" in text(page(admin, "/report/bob-history"))


def test_sign_out_and_a_password_change_end_the_session(app: Dash, engine: Engine) -> None:
    client = signed_in_client(app, engine, "alice")
    assert client.get("/_dash-layout").status_code == 200
    token = client.environ_base.pop("HTTP_X_CSRFTOKEN")
    assert client.post("/logout").status_code == 400  # a sign-out forged by another site
    assert client.get("/_dash-layout").status_code == 200
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    assert client.post("/logout").headers["Location"] == "/login"
    assert client.get("/_dash-layout").status_code == 401
    sign_in(client, "alice")
    assert client.get("/_dash-layout").status_code == 200
    set_password(engine, "alice", "a brand new password")
    assert client.get("/_dash-layout").status_code == 401


def test_the_notice_must_be_accepted_once(app: Dash, engine: Engine) -> None:
    client = app.server.test_client()
    assert post_form(client, "/login", {"name": "bob", "password": PASSWORD}).status_code == 302
    assert client.get("/_dash-layout").status_code == 403
    assert client.get("/", headers={"Accept": "text/html"}).headers["Location"].startswith("/notice")
    assert "stores no image" in client.get("/notice").get_data(as_text=True)
    post_form(client, "/notice", {"accept": "yes"})
    assert client.get("/_dash-layout").status_code == 200
    assert find_user(engine, "bob").notice_accepted_at is not None
    again = app.server.test_client()
    assert post_form(again, "/login", {"name": "bob", "password": PASSWORD}).headers["Location"] == "/"


def test_a_sign_in_without_this_visitors_csrf_token_is_refused(app: Dash) -> None:
    client = app.server.test_client()
    client.get("/login")
    for token in ({}, {CSRF_FIELD: csrf_token(app.server.test_client())}):  # none, or another visitor's
        response = client.post("/login", data={"name": "alice", "password": PASSWORD} | token)
        assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
        assert client.get("/_dash-layout").status_code == 401
    assert post_form(client, "/login", {"name": "alice", "password": PASSWORD}).status_code == 302


def test_a_forged_notice_acceptance_is_refused_and_not_stored(app: Dash, engine: Engine) -> None:
    client = app.server.test_client()
    post_form(client, "/login", {"name": "bob", "password": PASSWORD})
    assert client.post("/notice", data={"accept": "yes"}).status_code == 400
    assert find_user(engine, "bob").notice_accepted_at is None
    assert client.get("/_dash-layout").status_code == 403
    post_form(client, "/notice", {"accept": "yes"})
    assert find_user(engine, "bob").notice_accepted_at is not None


def acknowledge_request(session_id: int, name: str, flag: str) -> dict[str, Any]:
    """The Dash request a click on `flag`'s Acknowledge button sends (a pattern-matching callback)."""
    button = {"index": flag, "type": ids.FLAG_ACK}
    pattern = json.dumps({"index": ["MATCH"], "type": ids.FLAG_ACK}, separators=(",", ":"))
    return {
        "output": f"..{pattern}.children...{pattern}.disabled..",
        "outputs": [{"id": button, "property": "children"}, {"id": button, "property": "disabled"}],
        "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
        "state": [{"id": ids.LIVE_SESSION, "property": "data", "value": {"id": session_id, "name": name}}],
        "changedPropIds": [json.dumps(button, separators=(",", ":")) + ".n_clicks"],
    }


def test_a_dash_callback_without_the_sessions_csrf_token_is_refused_and_stores_nothing(
    app: Dash, engine: Engine
) -> None:
    record(engine, "absence", ABSENCE, start=ABSENCE_START)
    session = find_session(engine, "absence")
    request = acknowledge_request(session.id, session.name, flag_id("tile-1", "absent", ABSENCE_START))
    admin = signed_in_client(app, engine, "head", Role.ADMIN)
    own = admin.environ_base.pop("HTTP_X_CSRFTOKEN")
    another_users = csrf_token(signed_in_client(app, engine, "alice"))
    for headers in ({}, {"X-CSRFToken": another_users}, {"X-CSRFToken": "forged"}):
        response = admin.post("/_dash-update-component", json=request, headers=headers)
        assert response.status_code == 400, headers
    assert acknowledged_flags(engine, session.id) == set()
    response = admin.post("/_dash-update-component", json=request, headers={"X-CSRFToken": own})
    assert response.status_code == 200 and len(acknowledged_flags(engine, session.id)) == 1


def test_the_cookie_key_is_made_once_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    key = load_secret_key(tmp_path / "data")
    path = tmp_path / "data" / SECRET_KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert load_secret_key(tmp_path / "data") == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(b"")  # a first start that died before writing the key
    assert len(load_secret_key(tmp_path / "data")) == 32 and len(path.read_bytes()) == 32


def test_a_cookie_signed_with_another_key_is_refused(engine: Engine) -> None:
    client = signed_in_client(create_app(engine, b"k" * 32), engine, "alice")
    cookie = client.get_cookie("classpulse_session")
    other = create_app(engine, b"x" * 32).server.test_client()
    other.set_cookie("classpulse_session", cookie.value)
    assert other.get("/_dash-layout").status_code == 401


def test_passwords_are_stored_as_argon2id_hashes(engine: Engine) -> None:
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM users WHERE name = 'alice'").scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert check_login(engine, "alice", PASSWORD) is not None


def users_cli(url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "users", *args, "--db", url],
        cwd=REPO,
        input=password,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_cli_adds_lists_changes_and_removes(url: str) -> None:
    add_user_with_cli(url, "head", "admin")
    listed = users_cli(url, "list")
    assert listed.returncode == 0 and listed.stdout.startswith("head\tadmin\t")
    duplicate = users_cli(url, "add", "head", "--role", "teacher", "--password-stdin", password=PASSWORD + "\n")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    weak = users_cli(url, "passwd", "head", "--password-stdin", password="short\n")
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    assert users_cli(url, "passwd", "head", "--password-stdin", password="another long one\n").returncode == 0
    engine = upgrade(url)
    assert check_login(engine, "head", "another long one") is not None
    no_terminal = users_cli(url, "passwd", "head", password="")
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    assert users_cli(url, "remove", "head").returncode == 0
    assert find_user(engine, "head") is None
    gone = users_cli(url, "remove", "head")
    assert gone.returncode == 2 and "no user named 'head'" in gone.stderr and "Traceback" not in gone.stderr


def test_a_role_change_signs_the_user_out_everywhere_and_a_demoted_admin_loses_every_session(
    app: Dash, engine: Engine, url: str
) -> None:
    head = signed_in_client(app, engine, "head", Role.ADMIN)
    assert "bob-history" in text(page(head, "/sessions"))
    changed = users_cli(url, "role", "head", "--role", "teacher")
    assert changed.returncode == 0 and changed.stdout == "head is now teacher\n"
    assert head.get("/_dash-layout").status_code == 401
    sign_in(head, "head")
    listed = text(page(head, "/sessions"))
    assert not [name for name in ("alice-maths", "bob-history", "unowned") if name in listed]
    assert users_cli(url, "role", "head", "--role", "admin").returncode == 0
    assert find_user(engine, "head").role is Role.ADMIN
    assert_one_clear_line(users_cli(url, "role", "nobody", "--role", "admin"), "no user named 'nobody'")


def test_only_loopback_addresses_count_as_local() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


def test_serving_on_a_public_address_warns_on_stderr(url: str, engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "--db", url, "--host", "0.0.0.0", "--port", str(port)]
        + ["--data-dir", str(tmp_path / "data")],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = server.stderr.readline()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "warning: listening on 0.0.0.0" in first_line and "TLS" in first_line
    assert stat.S_IMODE((tmp_path / "data" / SECRET_KEY_FILE).stat().st_mode) == 0o600


def test_the_sessions_filter_never_shows_a_teacher_another_teachers_session(app: Dash, engine: Engine) -> None:
    alice = signed_in_client(app, engine, "alice")
    for query in ("bob-history", "history", ""):
        rows = dash_call(alice, [(ids.SESSIONS_ROWS, "children")], [(ids.SESSIONS_FILTER, "value", query)])
        assert "bob-history" not in str(rows), query


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_server_is_waitress_and_stops_cleanly(url: str, engine: Engine, tmp_path: Path, stop: int) -> None:
    with running_dashboard(url, tmp_path) as (base_url, server):
        with urllib.request.urlopen(f"{base_url}/login", timeout=30) as response:
            assert response.headers["Server"] == "waitress"
        server.send_signal(stop)
        returncode = server.wait(timeout=30)
    log = (tmp_path / "dashboard.log").read_text()
    assert returncode == 0, log
    assert "Traceback" not in log
