"""Sign-in for the dashboard: every route needs a signed-in user who has accepted the purpose notice.

Sessions are Flask's signed cookies (the key lives in the data folder, 0600); failed sign-ins are
throttled per user name and client address; /logout ends the session. The pages here are plain HTML
served by Flask, so nothing of the Dash app (not even its scripts) reaches a visitor before sign-in.
Every POST needs Flask-WTF's CSRF token: the forms here carry it in a hidden field (the Dash page's Sign-out
form fills it in from the CSRF_COOKIE cookie as it is sent), Dash's callbacks in the X-CSRFToken header that
dash-renderer copies from the same cookie.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from html import escape
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, g, redirect, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy import Engine

from db.users import User, accept_notice, check_login, find_user

SECRET_KEY_FILE = "dashboard-secret.key"
SECRET_KEY_BYTES = 32
SIGN_IN_HOURS = 12
# Reachable without signing in; everything else, Dash's own endpoints included, is refused.
OPEN_PATHS = frozenset({"/login"})
NOTICE_PATHS = frozenset({"/notice", "/logout"})
# dash-renderer sends this cookie's value as the X-CSRFToken header of every request it makes.
CSRF_COOKIE = "_csrf_token"
CSRF_FIELD = "csrf_token"  # Flask-WTF's default form field
PURPOSE_NOTICE = (
    "ClassPulse estimates the facial expressions of the students in a video call to show the teacher how the "
    "class is doing. It stores no image: only face positions, expression probabilities, timings and names, in "
    "this school's own database, until they are purged (python -m db purge, or capture's --retain-days). "
    "Use it only for the purpose your school has approved, after informing students and parents as your "
    "school's data-protection rules require, and never to grade or discipline a student. Emotion recognition "
    "in education is restricted in some jurisdictions (e.g. the EU AI Act, Art. 5(1)(f)); where it is, "
    "run capture with --attention-only (no emotion inference at all)."
)


def load_secret_key(folder: Path) -> bytes:
    """The key that signs session cookies: made once, then read back; readable by its owner only (0600)."""
    path = folder / SECRET_KEY_FILE
    folder.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o600)  # a copy restored with looser permissions is tightened again
        key = path.read_bytes()
        if len(key) >= SECRET_KEY_BYTES:
            return key
        # Shorter: a start that died while writing it. Nothing was ever signed with it; make a new one.
    key = secrets.token_bytes(SECRET_KEY_BYTES)
    # Created 0600 (never briefly readable by others), then written.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key)
    return key


@dataclass
class LoginThrottle:
    """At most `max_failures` failed sign-ins per (name, address) in any `window_s` seconds."""

    max_failures: int = 5
    window_s: float = 300.0
    _failures: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, key: tuple[str, str], now: float) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            recent = self._recent(key, now)
            if len(recent) < self.max_failures:
                return 0.0
            return recent[0] + self.window_s - now

    def failed(self, key: tuple[str, str], now: float) -> None:
        with self._lock:
            self._failures[key] = self._recent(key, now)
            self._failures[key].append(now)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        """The failures of `key` inside the window; a key with none is forgotten, so the table stays small."""
        recent = self._failures.pop(key, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if recent:
            self._failures[key] = recent
        return recent


def install_sign_in(server: Flask, engine: Engine, secret_key: bytes, throttle: LoginThrottle) -> None:
    """Guard every route of `server` and add /login, /logout and /notice."""
    server.secret_key = secret_key
    server.config.update(
        SESSION_COOKIE_NAME="classpulse_session",
        SESSION_COOKIE_HTTPONLY=True,
        # Cross-site requests carry no cookie: no other site can post callbacks or sign a user out.
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SIGN_IN_HOURS),
        # A token lives as long as the session it belongs to (sign-in and sign-out make a new one): a report
        # page left open for an hour must still be able to run its callbacks.
        WTF_CSRF_TIME_LIMIT=None,
    )

    @server.before_request
    def _guard() -> Response | None:
        if request.path in OPEN_PATHS:
            return None
        user = _signed_in_user(engine)
        if user is None:
            return _refuse(401, "/login")
        g.user = user
        if user.notice_accepted_at is None and request.path not in NOTICE_PATHS:
            return _refuse(403, "/notice")
        return None

    @server.route("/login", methods=["GET", "POST"])
    def _login() -> Response:
        target = _local_path(request.values.get("next", "/"))
        if request.method == "GET":
            return _page("Sign in", _login_form(target, ""))
        name = request.form.get("name", "").strip()
        key = (name.casefold(), request.remote_addr or "")
        now = time.monotonic()
        wait_s = throttle.wait_s(key, now)
        if wait_s > 0:
            minutes = max(1, round(wait_s / 60))
            message = f"Too many failed sign-ins. Try again in about {minutes} minute(s)."
            return _page("Sign in", _login_form(target, message), 429)
        user = check_login(engine, name, request.form.get("password", ""))
        if user is None:
            throttle.failed(key, now)
            return _page("Sign in", _login_form(target, "Wrong user name or password."), 401)
        throttle.succeeded(key)
        session.clear()
        session.permanent = True
        session.update(user=user.name, stamp=user.session_stamp)
        return redirect(target if user.notice_accepted_at else f"/notice?next={quote(target, safe='/')}")

    @server.route("/logout", methods=["POST"])
    def _logout() -> Response:
        session.clear()
        return redirect("/login")

    @server.route("/notice", methods=["GET", "POST"])
    def _notice() -> Response:
        target = _local_path(request.values.get("next", "/"))
        if request.method == "POST" and request.form.get("accept") == "yes":
            accept_notice(engine, g.user.name)
            return redirect(target)
        body = (
            f"<p>{escape(PURPOSE_NOTICE)}</p>"
            f'<form method="post" action="/notice">{_csrf_field()}'
            f'<input type="hidden" name="next" value="{escape(target)}">'
            '<button id="accept-notice" type="submit" name="accept" value="yes">I understand and accept</button></form>'
        )
        return _page("Before you start", body)

    # Registered after the guard, so a signed-out visitor's POST is refused as such (401), not as forged.
    CSRFProtect(server)

    @server.errorhandler(CSRFError)
    def _forged(error: CSRFError) -> Response:
        return _page("Request refused", f"<p>{escape(error.description)} Reload the page and try again.</p>", 400)

    @server.after_request
    def _csrf_cookie(response: Response) -> Response:
        # Readable by scripts (not HttpOnly): dash-renderer reads it. Other sites can neither read it nor make
        # one that matches this session's secret.
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax")
        return response


def _signed_in_user(engine: Engine) -> User | None:
    name = session.get("user")
    if not isinstance(name, str):
        return None
    user = find_user(engine, name)
    # A removed user, or a password or role changed since this cookie was signed, ends the session.
    if user is None or user.session_stamp != session.get("stamp"):
        session.clear()
        return None
    return user


def _refuse(status: int, page: str) -> Response:
    """Browsers asking for a page are sent to `page`; Dash's requests and anything else get the bare status."""
    if request.method == "GET" and not request.path.startswith("/_") and "text/html" in request.accept_mimetypes:
        return redirect(f"{page}?next={quote(request.full_path.rstrip('?'), safe='/')}")
    return Response("sign in first" if status == 401 else "accept the notice first", status, mimetype="text/plain")


def _local_path(target: str) -> str:
    """Only paths on this site: a `next` of //evil.example or https://… would send the user away."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _csrf_field() -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(generate_csrf())}">'


def _login_form(target: str, message: str) -> str:
    shown = f'<p class="error" id="login-error">{escape(message)}</p>' if message else ""
    return (
        f'{shown}<form method="post" action="/login">{_csrf_field()}'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<label>User name <input id="login-name" name="name" autocomplete="username" required autofocus></label>'
        '<label>Password <input id="login-password" name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button id="login-submit" type="submit">Sign in</button></form>'
    )


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>ClassPulse — {escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;background:#f5f6f8;color:#1d1f23;margin:0}"
        "main{max-width:560px;margin:64px auto;background:#fff;border-radius:8px;padding:24px 32px;"
        "box-shadow:0 1px 3px rgba(0,0,0,.08)}label{display:block;margin:12px 0}input{display:block;width:100%;"
        "padding:6px;margin-top:4px;box-sizing:border-box}button{padding:8px 16px}.error{color:#a40000}</style>"
        f"</head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    response = Response(html, status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response
