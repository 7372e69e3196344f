"""Dashboard access: sign-in on every route, teachers see only their own sessions, throttling, sign-out, the
purpose notice, CSRF tokens on every state-changing request, the cookie key, the users CLI, and the server
(waitress) stopping cleanly."""

from __future__ import annotations

import http.cookiejar
import json
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert, select, update

from config.schema import DashboardConfig
from dashboard import ids
from dashboard.__main__ import is_loopback
from dashboard.app import create_app
from dashboard.auth import CSRF_COOKIE, CSRF_FIELD, SECRET_KEY_FILE, LoginThrottle, SignIns, load_secret_key
from dashboard.pages import report
from dashboard.pages.live import flag_id
from db.engine import connect
from db.migrate import ALEMBIC_INI, upgrade
from db.queries import acknowledged_flags, find_session, flag_silences_of
from db.schema import sessions, students, users
from db.users import Role, UserError, accept_notice, add_user, check_login, find_user, set_password
from tests.cli import REPO, assert_one_clear_line, connected_copy, copy_sqlite
from tests.dashboard_server import free_port, running_dashboard
from tests.dashboard_users import PASSWORD, add_user_with_cli, csrf_token, post_form, sign_in, signed_in_client
from tests.test_dashboard import ABSENCE, ABSENCE_START, dash_call, page, text
from tests.test_timeline import PERIOD_1, T0, record


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'classpulse.db'}"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'alice-maths' owned by teacher alice, 'bob-history' by teacher bob, 'unowned' by nobody, and the teachers'
    accounts: built once, as each Argon2 hash costs a noticeable part of a second on two cores."""
    path = tmp_path_factory.mktemp("recorded") / "classpulse.db"
    migrated = upgrade(f"sqlite:///{path}")
    for name, teacher in (("alice-maths", "alice"), ("bob-history", "bob"), ("unowned", None)):
        record(migrated, name, PERIOD_1)
        with migrated.begin() as connection:
            connection.execute(update(sessions).where(sessions.c.name == name).values(teacher=teacher))
    for name in ("alice", "bob"):
        add_user(migrated, name, Role.TEACHER, PASSWORD)
    migrated.dispose()
    return path


@pytest.fixture
def engine(recorded: Path, tmp_path: Path) -> Iterator[Engine]:
    """This test's own copy of `recorded`, at `url`."""
    with connected_copy(recorded, tmp_path / "classpulse.db") as copied:
        yield copied


@pytest.fixture
def app(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Dash:
    # The callback sweep presses "Start class" too: on a developer's desktop it must not capture their screen.
    monkeypatch.delenv("DISPLAY", raising=False)
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
    # A browser drops tabs and line breaks from a Location and reads a backslash as a slash: each of these
    # would take the user to evil.example.
    targets = (
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example/pwned.html",
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        "\t//evil.example/",
        " //evil.example/",
        "javascript:alert(1)",
        "/%09/evil.example/",  # given to the form already decoded once: the tab above; here a harmless path
    )
    for target in targets:
        response = post_form(client, "/login", {"name": "alice", "password": PASSWORD, "next": target})
        expected = "/notice?next=/%2509/evil.example/" if target.startswith("/%09") else "/notice?next=/"
        assert response.headers["Location"] == expected, target
        client.post("/logout", data={CSRF_FIELD: csrf_token(client)})
    # As the link does it: the %09 in the query string is the tab, and the form carries "/" on.
    form = client.get("/login?next=/%09/evil.example/pwned.html").get_data(as_text=True)
    assert 'name="next" value="/"' in form


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
    throttle = LoginThrottle(max_failures=5, max_address_failures=20, window_s=300, max_checks=2)

    def fail(now: float) -> None:
        assert throttle.begin("alice", "127.0.0.1", now) == 0.0
        throttle.end("alice", "127.0.0.1", now, succeeded=False)

    for second in range(5):
        fail(1000.0 + second)
    assert throttle.begin("alice", "127.0.0.1", now=1010.0) == pytest.approx(290.0)
    assert throttle.begin("alice", "127.0.0.1", now=1299.5) == pytest.approx(0.5)
    assert throttle.begin("alice", "127.0.0.1", now=1300.0) == 0.0  # the first failure is 300 s old: four are left
    throttle.end("alice", "127.0.0.1", 1300.0, succeeded=True)
    assert throttle.begin("alice", "127.0.0.1", now=1302.0) == 0.0


def test_a_check_in_flight_counts_against_the_limits_so_parallel_attempts_cannot_slip_under_them() -> None:
    throttle = LoginThrottle(max_failures=5, max_address_failures=7, window_s=300, max_checks=100)
    # Five checks of one name begun and not yet finished fill that name's limit from that address.
    assert [throttle.begin("alice", "10.0.0.1", 0.0) for _ in range(6)] == [0.0] * 5 + [pytest.approx(5.0)]
    # Two more names fill the address's limit over every name, known or not.
    assert [throttle.begin(f"nobody-{n}", "10.0.0.1", 0.0) for n in range(3)] == [0.0, 0.0, pytest.approx(5.0)]
    assert throttle.begin("alice", "10.0.0.2", 0.0) == 0.0  # another address is not held back
    for _ in range(5):
        throttle.end("alice", "10.0.0.1", 1.0, succeeded=False)
    assert throttle.begin("alice", "10.0.0.1", 2.0) == pytest.approx(299.0)


def test_at_most_max_checks_run_at_once_over_every_address() -> None:
    throttle = LoginThrottle(max_failures=5, max_address_failures=20, window_s=300, max_checks=2)
    assert [throttle.begin(f"user-{n}", f"10.0.0.{n}", 0.0) for n in range(3)] == [0.0, 0.0, pytest.approx(5.0)]
    throttle.end("user-0", "10.0.0.0", 0.0, succeeded=True)
    assert throttle.begin("user-3", "10.0.0.3", 0.0) == 0.0


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
        # The live page's refresh as the page declares it (its inputs and states), with the forged store.
        values = {(ids.LIVE_SESSION, "data"): forged, (ids.LIVE_STATE, "data"): None, (ids.LIVE_WINDOW, "value"): "all"}
        (request,) = [
            request for output, request in callback_requests(alice, values) if f"{ids.LIVE_STATE}.data" in output
        ]
        response = alice.post("/_dash-update-component", json=request)
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
    assert_one_clear_line(users_cli(url, "passwd", "head", "--password-stdin", password="short\n"), "10 to 256")
    too_weak = users_cli(url, "add", "carol", "--role", "teacher", "--password-stdin", password="carolcarol1\n")
    assert_one_clear_line(too_weak, "too weak")
    assert users_cli(url, "passwd", "head", "--password-stdin", password="another long one\n").returncode == 0
    engine = upgrade(url)
    assert check_login(engine, "head", "another long one") is not None
    no_terminal = users_cli(url, "passwd", "head", password="")
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    removed = users_cli(url, "remove", "head")
    assert (
        removed.returncode == 0 and removed.stdout == "removed head; their 0 session(s) are now seen by admins only\n"
    )
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


# Sign-out, lifetimes and cookies (issue 12, item 4), cross-port forgeries (item 7), over real HTTP.


class Browser:
    """A browser's cookie jar and requests against a running dashboard, enough to sign in and post forms."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def cookie(self, name: str) -> str:
        return next(cookie.value for cookie in self.jar if cookie.name == name)

    def request(self, path: str, form: dict[str, str] | None = None, **headers: str) -> tuple[int, str]:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def post(self, path: str, form: dict[str, str], **headers: str) -> int:
        """POST a form with this browser's CSRF token, as the pages' forms do."""
        return self.request(path, {**form, CSRF_FIELD: self.cookie(CSRF_COOKIE)}, **headers)[0]

    def sign_in(self, name: str, password: str = PASSWORD) -> int:
        self.request("/login")
        status = self.post("/login", {"name": name, "password": password})
        if status == 302:
            self.post("/notice", {"accept": "yes"})
        return status

    def signed_in(self) -> bool:
        return self.request("/_dash-layout")[0] == 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def dashboard(recorded: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the tests over real HTTP, on a copy of `recorded` of its own: alice's sign-ins, and bob's
    failures, which lock only his name."""
    folder = tmp_path_factory.mktemp("served")
    copy_sqlite(recorded, folder / "classpulse.db")
    with running_dashboard(f"sqlite:///{folder / 'classpulse.db'}", folder) as (base_url, _):
        yield base_url


def test_sign_out_ends_the_session_on_the_server_so_a_copied_cookie_no_longer_works(dashboard: str) -> None:
    alice = Browser(dashboard)
    assert alice.sign_in("alice") == 302 and alice.signed_in()
    thief = Browser(dashboard)
    for cookie in alice.jar:
        thief.jar.set_cookie(cookie)
    assert thief.signed_in()
    assert alice.post("/logout", {}) == 302
    assert not alice.signed_in()
    assert not thief.signed_in()  # the copy made before the sign-out
    status, _ = thief.request("/_dash-update-component", {}, **{"X-CSRFToken": thief.cookie(CSRF_COOKIE)})
    assert status == 401


def test_a_page_on_another_port_cannot_sign_a_user_out_even_with_the_csrf_cookie(dashboard: str) -> None:
    alice = Browser(dashboard)
    alice.sign_in("alice")
    elsewhere = f"http://127.0.0.1:{free_port()}"
    # Cookies do not keep ports apart: that page reads the token and posts it, with alice's cookies attached.
    assert alice.post("/logout", {}, Origin=elsewhere) == 403
    assert alice.post("/logout", {}, Referer=f"{elsewhere}/attack.html") == 403
    assert alice.signed_in()
    assert alice.post("/logout", {}, Origin=dashboard) == 302
    assert not alice.signed_in()


def test_a_sign_in_ends_after_its_idle_time_and_after_its_absolute_lifetime_however_busy() -> None:
    sign_ins = SignIns(idle_s=60, absolute_s=600)
    busy = sign_ins.start("alice", "token", now=0.0)
    for now in range(30, 600, 30):  # a request every 30 s: never idle
        assert sign_ins.user(busy, "token", float(now)) == "alice"
    assert sign_ins.user(busy, "token", 600.0) is None
    idle = sign_ins.start("alice", "token", now=0.0)
    assert sign_ins.user(idle, "token", 59.0) == "alice"
    assert sign_ins.user(idle, "token", 119.5) is None
    other = sign_ins.start("bob", "token", now=0.0)
    assert sign_ins.user(other, "another sign-in's token", 1.0) is None  # a token is good for its sign-in only
    sign_ins.end(other)
    assert sign_ins.user(other, "token", 2.0) is None


def test_cookies_are_secure_over_tls_and_when_told_of_a_tls_proxy(engine: Engine) -> None:
    def cookie_flags(app: Dash, base_url: str) -> dict[str, bool]:
        client = app.server.test_client()
        client.get("/login", base_url=base_url)
        post_form(client, "/login", {"name": "alice", "password": PASSWORD}, base_url=base_url)
        response = client.get("/login", base_url=base_url)
        cookies = response.headers.getlist("Set-Cookie")
        return {cookie.split("=", 1)[0]: "; Secure" in cookie for cookie in cookies}

    # A request after the sign-in gets no new session cookie: its expiry, 12 h after the sign-in, never slides.
    assert cookie_flags(create_app(engine), "http://localhost") == {CSRF_COOKIE: False}
    assert cookie_flags(create_app(engine), "https://localhost") == {CSRF_COOKIE: True}
    proxied = DashboardConfig(behind_tls_proxy=True)
    assert cookie_flags(create_app(engine, settings=proxied), "http://localhost") == {CSRF_COOKIE: True}
    client = create_app(engine, settings=proxied).server.test_client()
    response = post_form(client, "/login", {"name": "alice", "password": PASSWORD})
    (session_cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("classpulse_session=")]
    assert "; Secure" in session_cookie


def test_a_schools_file_sets_the_sign_in_lifetimes_and_limits_and_print_config_shows_them(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    school = tmp_path / "school.toml"
    # 0.001 min: a sign-in idle for 60 ms ends. One failure holds a name back.
    school.write_text("[dashboard]\nsign_in_hours = 2\nidle_minutes = 0.001\nlogin_failures_per_name = 1\n")
    shown = subprocess.run(
        [sys.executable, "-m", "dashboard", "--config", str(school), "--print-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    in_force = tomllib.loads(shown.stdout)["dashboard"]
    assert (in_force["sign_in_hours"], in_force["idle_minutes"], in_force["login_failures_per_name"]) == (2, 0.001, 1)
    assert (in_force["login_failures_per_address"], in_force["login_checks_at_once"]) == (20, 2)  # the defaults
    accept_notice(engine, "alice")  # so her sign-in is the one request, with no notice to accept after it
    with running_dashboard(url, tmp_path, "--config", str(school)) as (base_url, _):
        alice = Browser(base_url)
        alice.request("/login")
        signed_at = time.time()
        assert alice.post("/login", {"name": "alice", "password": PASSWORD}) == 302
        (expires,) = [cookie.expires for cookie in alice.jar if cookie.name == "classpulse_session"]
        assert expires is not None and abs(expires - (signed_at + 2 * 3600)) < 60  # 2 h, not the default 12 h
        time.sleep(0.5)  # idle for longer than the file's 60 ms (by default, for far less than its hour)
        assert not alice.signed_in()
        bob = Browser(base_url)
        assert bob.sign_in("bob", "a wrong guess") == 401
        assert bob.sign_in("bob") == 429  # held back after the file's one failure (by default, after five)


# Sign-in load (item 10).


def test_thirty_parallel_attempts_check_at_most_five_passwords(dashboard: str) -> None:
    browsers = [Browser(dashboard) for _ in range(30)]
    for browser in browsers:
        browser.request("/login")
    start = threading.Barrier(len(browsers))
    answers: list[int] = []

    def attempt(browser: Browser) -> None:
        start.wait()
        answers.append(browser.post("/login", {"name": "bob", "password": "a wrong guess"}))

    threads = [threading.Thread(target=attempt, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 401: the password was checked (and was wrong); 429: turned away unchecked.
    checked = answers.count(401)
    assert set(answers) <= {401, 429} and checked <= 5
    # Five wrong passwords lock the right one out too; fewer (most turned away as too many at once) do not.
    assert Browser(dashboard).sign_in("bob") == (429 if checked == 5 else 302)


def test_unknown_names_are_throttled_per_address_too(app: Dash) -> None:
    client = app.server.test_client()
    answers = [post_form(client, "/login", {"name": f"nobody-{n}", "password": "guess"}).status_code for n in range(25)]
    assert answers == [401] * 20 + [429] * 5
    # The address is held back for every name, and another address is not.
    assert post_form(client, "/login", {"name": "alice", "password": PASSWORD}).status_code == 429
    elsewhere = post_form(
        client, "/login", {"name": "alice", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.9"}
    )
    assert elsewhere.status_code == 302


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        (" " * 10, "all blanks"),
        ("aaaaaaaaaa", "too weak"),
        ("password12", "too weak"),
        ("qwertyuiop", "too weak"),
        ("carolcarol1", "too weak"),
        ("short", "10 to 256 characters"),
        ("x" * 257, "10 to 256 characters"),
    ],
    ids=["blanks", "repeat", "common", "keyboard-row", "the-name", "short", "long"],
)
def test_a_weak_password_is_refused_with_the_reason(engine: Engine, password: str, reason: str) -> None:
    # What `users add` and `users passwd` call; that the CLI says it in one line is test_users_cli_...'s.
    with pytest.raises(UserError, match=reason):
        add_user(engine, "carol", Role.TEACHER, password)
    assert find_user(engine, "carol") is None


# Ownership follows the account (item 8).


def test_a_new_account_with_a_removed_users_name_does_not_inherit_their_sessions(
    app: Dash, engine: Engine, url: str
) -> None:
    assert "alice-maths" in text(page(signed_in_client(app, engine, "alice"), "/sessions"))
    removed = users_cli(url, "remove", "alice")
    assert removed.returncode == 0 and "1 session(s) are now seen by admins only" in removed.stdout
    add_user(engine, "alice", Role.TEACHER, PASSWORD)
    listed = text(page(signed_in_client(app, engine, "alice"), "/sessions"))
    assert "alice-maths" not in listed
    assert "you have no session named" in text(page(signed_in_client(app, engine, "alice"), "/report/alice-maths"))
    assert "alice-maths" in text(page(signed_in_client(app, engine, "head", Role.ADMIN), "/sessions"))


def test_the_migration_hands_sessions_of_already_removed_users_to_the_admins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config(str(ALEMBIC_INI))
    engine = connect(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
    with engine.begin() as connection:
        # carol was removed before 0007: her name stayed on her session. bob still has his account.
        connection.execute(insert(users).values(name="bob", role="teacher", password_hash="-", created_at=T0))
        for name, teacher in (("carols-class", "carol"), ("bobs-class", "bob")):
            connection.execute(insert(sessions).values(name=name, source="screen", started_at=T0, teacher=teacher))
    upgrade(engine)
    assert [find_session(engine, name).teacher for name in ("carols-class", "bobs-class")] == [None, "bob"]


# The catalogue: every Dash callback, signed out, as another teacher, and with crafted values (item 11).

# Another teacher's session wherever a callback names one; clicks and plain values elsewhere.
FORGED_VALUES: dict[tuple[str, str], Any] = {
    (ids.URL, "pathname"): "/report/bob-history",
    (ids.LIVE_WINDOW, "value"): "all",
    (ids.SESSIONS_FILTER, "value"): "bob",
    (ids.REPORT_SESSION, "data"): "bob-history",
    (report.RENAME_KEPT, "data"): "tile-0",
    (ids.RENAME_NAME, "value"): "renamed by alice",
    (report.MERGE_KEPT, "data"): "tile-0",
    (report.MERGE_WITH, "value"): ["tile-1"],
}
# The pattern-matching components: a flag's buttons (Acknowledge, Snooze, Mute), a silence's undo; each
# request gets its callback's own type.
FLAG_BUTTON = {"index": "tile-1|absent|x"}
# Values no page ever sends, for every input and state in turn.
CRAFTED_VALUES = [[1, 2], {"id": "x"}, "' OR 1=1 --", 10**30, -1, True, {"id": [], "name": {}}]


def callback_requests(client: FlaskClient, values: dict[tuple[str, str], Any]) -> Iterator[tuple[str, dict]]:
    """A request for every server-side callback the page declares (/_dash-dependencies, as the browser reads
    it), each input and state given its value in `values` (default: one click)."""
    for callback in client.get("/_dash-dependencies").get_json():
        if callback.get("clientside_function"):
            continue
        outputs = [name.split(".", 1) for name in callback["output"].strip(".").split("...")]

        def concrete(component: str) -> Any:
            return FLAG_BUTTON | {"type": json.loads(component)["type"]} if component.startswith("{") else component

        def given(spec: dict[str, str]) -> dict[str, Any]:
            value = values.get((spec["id"], spec["property"]), 1)
            return {"id": concrete(spec["id"]), "property": spec["property"], "value": value}

        first = callback["inputs"][0]
        targets = [{"id": concrete(i), "property": p} for i, p in outputs]
        yield (
            callback["output"],
            {
                "output": callback["output"],
                # Dash's wire format: one output as an object, several as a list.
                "outputs": targets[0] if len(targets) == 1 else targets,
                "inputs": [given(spec) for spec in callback["inputs"]],
                "state": [given(spec) for spec in callback["state"]],
                "changedPropIds": [f"{_prop_id(concrete(first['id']))}.{first['property']}"],
            },
        )


def _prop_id(component: Any) -> str:
    return json.dumps(component, separators=(",", ":")) if isinstance(component, dict) else component


def test_every_callback_refuses_a_visitor_who_has_not_signed_in(app: Dash, engine: Engine) -> None:
    requests = list(callback_requests(signed_in_client(app, engine, "alice"), FORGED_VALUES))
    assert len(requests) >= 6
    visitor = app.server.test_client()
    for output, request in requests:
        response = visitor.post("/_dash-update-component", json=request)
        assert response.status_code == 401 and "bob-history" not in response.get_data(as_text=True), output


def test_no_callback_shows_or_changes_another_teachers_session(app: Dash, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(update(sessions).where(sessions.c.name == "bob-history").values(ended_at=T0))
    bob_id = session_id(engine, "bob-history")
    alice = signed_in_client(app, engine, "alice")
    values = FORGED_VALUES | {(ids.LIVE_SESSION, "data"): {"id": bob_id, "name": "bob-history"}}
    before = report_tables_of(engine, "bob-history")
    for output, request in callback_requests(alice, values):
        response = alice.post("/_dash-update-component", json=request)
        body = response.get_data(as_text=True)
        # 204: Dash's "no update"; 200 with a refusal that names no student of bob's.
        assert response.status_code in (200, 204), (output, response.status_code, body)
        assert "tile-0" not in body and "renamed by alice" not in body, output
    assert report_tables_of(engine, "bob-history") == before
    assert acknowledged_flags(engine, bob_id) == set() and flag_silences_of(engine, bob_id) == []


def report_tables_of(engine: Engine, name: str) -> list[tuple]:
    """The session's student rows: names and merges show there."""
    owned = students.c.session_id == session_id(engine, name)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(students).where(owned))]


@pytest.mark.parametrize("crafted", CRAFTED_VALUES, ids=repr)
def test_crafted_callback_values_are_a_clear_400_never_a_500(app: Dash, engine: Engine, crafted: Any) -> None:
    admin = signed_in_client(app, engine, "head", Role.ADMIN)
    answers: set[int] = set()
    for output, request in callback_requests(admin, FORGED_VALUES | {(ids.REPORT_SESSION, "data"): "alice-maths"}):
        for field in ("inputs", "state"):
            for index in range(len(request[field])):
                forged = json.loads(json.dumps(request))
                forged[field][index]["value"] = crafted
                response = admin.post("/_dash-update-component", json=forged)
                assert response.status_code in (200, 204, 400), (output, field, index, response.status_code)
                answers.add(response.status_code)
                if response.status_code == 400:
                    assert "bad callback request" in response.get_data(as_text=True)
    assert 400 in answers  # some values do break a callback: those are the ones that were a 500


@pytest.mark.parametrize(
    "envelope",
    [{}, {"output": "no-such.children"}, {"output": f"{ids.PAGE}.children", "outputs": 7}, [1, 2], "text"],
    ids=["empty", "unknown-output", "bad-outputs", "a-list", "a-string"],
)
def test_a_garbled_callback_request_is_a_clear_400(app: Dash, engine: Engine, envelope: Any) -> None:
    response = signed_in_client(app, engine, "alice").post("/_dash-update-component", json=envelope)
    assert response.status_code == 400 and "bad callback request" in response.get_data(as_text=True)


def test_a_visitors_other_requests_keep_the_sign_in_forms_token(app: Dash) -> None:
    # A browser fetches /favicon.ico (refused: not signed in) between showing the form and posting it.
    client = app.server.test_client()
    token = csrf_token(client)
    assert client.get("/favicon.ico").status_code == 401
    response = client.post("/login", data={"name": "alice", "password": PASSWORD, CSRF_FIELD: token})
    assert response.status_code == 302
