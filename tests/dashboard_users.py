"""Test helper: dashboard users (through the real `python -m dashboard users` CLI, or the db API for speed) and
signing in, for the Flask test client and for a browser; the test client's POSTs carry the CSRF token as a
browser's do."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from dash import Dash
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from dashboard.auth import CSRF_COOKIE, CSRF_FIELD
from db.users import Role, add_user, find_user
from tests.cli import REPO

PASSWORD = "correct horse battery"


def add_user_with_cli(url: str, name: str, role: str = "admin", password: str = PASSWORD) -> None:
    """`python -m dashboard users add NAME --role ROLE --password-stdin --db URL`, as an operator would."""
    subprocess.run(
        [sys.executable, "-m", "dashboard", "users", "add", name, "--role", role, "--password-stdin", "--db", url],
        cwd=REPO,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def csrf_token(client: FlaskClient) -> str:
    """The CSRF token the dashboard last handed `client`, from the cookie dash-renderer reads it from."""
    if client.get_cookie(CSRF_COOKIE) is None:
        client.get("/login")
    return client.get_cookie(CSRF_COOKIE).value


def post_form(client: FlaskClient, path: str, data: dict[str, str], **options: Any) -> TestResponse:
    """POST one of dashboard.auth's forms as a browser does: with the CSRF token in its hidden field."""
    return client.post(path, data={**data, CSRF_FIELD: csrf_token(client)}, **options)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> None:
    """Sign in and accept the purpose notice, as a first-time user does; from then on every request of `client`
    carries the session's CSRF token in the X-CSRFToken header, as dash-renderer's requests do."""
    response = post_form(client, "/login", {"name": name, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    post_form(client, "/notice", {"accept": "yes"})
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)


def signed_in_client(app: Dash, engine: Engine, name: str = "admin", role: Role = Role.ADMIN) -> FlaskClient:
    """A test client of `app` signed in as `name` (made with `role` if the database does not have them)."""
    if find_user(engine, name) is None:
        add_user(engine, name, role, PASSWORD)
    client = app.server.test_client()
    sign_in(client, name)
    return client


def sign_in_browser(driver: Any, base_url: str, name: str, password: str = PASSWORD) -> None:
    """Sign a Selenium WebDriver in through the real form, and accept the notice on a first sign-in.

    Uses the element ids of dashboard.auth's pages; 'id' is Selenium's By.ID, so this module needs no Selenium.
    """
    driver.get(f"{base_url}/login")
    driver.find_element("id", "login-name").send_keys(name)
    driver.find_element("id", "login-password").send_keys(password)
    driver.find_element("id", "login-submit").click()
    _wait_to_leave(driver, "/login")
    if urlsplit(driver.current_url).path == "/notice":
        driver.find_element("id", "accept-notice").click()
        _wait_to_leave(driver, "/notice")


def _wait_to_leave(driver: Any, path: str, timeout_s: float = 20) -> None:
    """Until the browser has loaded a page other than `path` (a click does not always wait for the next page)."""
    deadline = time.monotonic() + timeout_s
    while urlsplit(driver.current_url).path == path:
        if driver.find_elements("id", "login-error"):
            raise AssertionError(driver.find_element("id", "login-error").text)
        assert time.monotonic() < deadline, f"still on {path} after {timeout_s} s"
        time.sleep(0.1)
