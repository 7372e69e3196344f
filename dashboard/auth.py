"""Sign-in for the dashboard: every route needs a signed-in user who has accepted the purpose notice.

A sign-in is kept on the server (SignIns), the signed cookie only names it (the key lives in the data folder,
0600): /logout deletes it, and it ends after an idle time and an absolute lifetime. Password checks are bounded
per name, per address and overall (LoginThrottle). The lifetimes and bounds are the configuration's [dashboard]
table (config.schema.DashboardConfig). The pages here are plain HTML served by Flask, so nothing of
the Dash app (not even its scripts) reaches a visitor before sign-in. Every POST needs Flask-WTF's CSRF token
of the current sign-in: the forms here carry it in a hidden field (the Dash page's Sign-out form fills it in
from the CSRF_COOKIE cookie as it is sent), Dash's callbacks in the X-CSRFToken header that dash-renderer
copies from the same cookie; and a POST that names another origin is refused, since pages on other ports of
this host can read that cookie.
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
from urllib.parse import quote, urlsplit

from flask import Flask, Response, g, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy import Engine
from werkzeug.wrappers import Response as WerkzeugResponse  # what redirect() returns; flask.Response is one

from config.schema import DashboardConfig
from db.users import User, accept_notice, check_login, find_user

SECRET_KEY_FILE = "dashboard-secret.key"
SECRET_KEY_BYTES = 32
# Sent to the server in the session cookie: the id of the sign-in in SignIns.
SIGN_IN_KEY = "sign_in"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# When sign-in checks are all busy: how long a visitor is told to wait.
BUSY_RETRY_S = 5.0
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
    """Bounds the argon2 checks that sign-ins cost. A check is reserved before it runs, so parallel attempts
    cannot all slip under a limit: at most `max_failures` failed checks (and ones in flight) per (name, address)
    and `max_address_failures` per address over every name, known or not, in any `window_s` seconds; and at
    most `max_checks` checks at once over all addresses (the rest are turned away at once, not queued, so the
    server's threads stay free for signed-in users)."""

    max_failures: int
    max_address_failures: int
    window_s: float
    max_checks: int
    _failures: dict[tuple[str, ...], deque[float]] = field(default_factory=dict)
    _in_flight: dict[tuple[str, ...], int] = field(default_factory=dict)
    _checking: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, name: str, address: str, now: float) -> float:
        """Reserve one password check: 0 when it may run now (then call `end`), else seconds to wait."""
        with self._lock:
            wait_s = max(self._wait_s(key, limit, now) for key, limit in self._limits(name, address))
            if wait_s > 0:
                return wait_s
            if self._checking >= self.max_checks:
                return BUSY_RETRY_S
            self._checking += 1
            for key, _ in self._limits(name, address):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
            return 0.0

    def end(self, name: str, address: str, now: float, succeeded: bool) -> None:
        """The check reserved by `begin` is done; a success clears that name's failures from that address."""
        with self._lock:
            self._checking -= 1
            for key, _ in self._limits(name, address):
                self._in_flight[key] -= 1
                if not self._in_flight[key]:
                    del self._in_flight[key]
                if not succeeded:
                    self._failures[key] = self._recent(key, now)
                    self._failures[key].append(now)
            if succeeded:
                self._failures.pop(self._limits(name, address)[0][0], None)

    def _limits(self, name: str, address: str) -> list[tuple[tuple[str, ...], int]]:
        return [((name.casefold(), address), self.max_failures), ((address,), self.max_address_failures)]

    def _wait_s(self, key: tuple[str, ...], limit: int, now: float) -> float:
        recent = self._recent(key, now)
        if len(recent) + self._in_flight.get(key, 0) < limit:
            return 0.0
        # Checks in flight fill the limit: their outcome is due in a moment.
        return recent[0] + self.window_s - now if len(recent) >= limit else BUSY_RETRY_S

    def _recent(self, key: tuple[str, ...], now: float) -> deque[float]:
        """The failures of `key` inside the window; a key with none is forgotten, so the table stays small."""
        recent = self._failures.pop(key, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if recent:
            self._failures[key] = recent
        return recent


@dataclass
class _SignIn:
    user: str
    started: float
    last_seen: float
    csrf: str  # Flask-WTF's raw token of this sign-in, kept here too: a cookie carrying another one is refused


@dataclass
class SignIns:
    """The signed-in sessions, kept on the server: the cookie only names one (a random id). Sign-out deletes it,
    so a copied cookie is worthless afterwards; one ends `idle_s` after its last request and `absolute_s` after
    the sign-in whatever happens. Kept in memory: restarting the dashboard signs everyone out."""

    idle_s: float
    absolute_s: float
    _live: dict[str, _SignIn] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, user: str, csrf: str, now: float) -> str:
        sign_in_id = secrets.token_urlsafe(32)
        with self._lock:
            for ended in [key for key, held in self._live.items() if not self._lasts(held, now)]:
                del self._live[ended]
            self._live[sign_in_id] = _SignIn(user, now, now, csrf)
        return sign_in_id

    def user(self, sign_in_id: object, csrf: object, now: float) -> str | None:
        """The user signed in as `sign_in_id`, if that sign-in lasts and `csrf` is its token; it counts as used."""
        if not isinstance(sign_in_id, str):
            return None
        with self._lock:
            held = self._live.get(sign_in_id)
            if held is None or held.csrf != csrf:
                return None
            if not self._lasts(held, now):
                del self._live[sign_in_id]
                return None
            held.last_seen = now
            return held.user

    def end(self, sign_in_id: object) -> None:
        with self._lock:
            if isinstance(sign_in_id, str):
                self._live.pop(sign_in_id, None)

    def _lasts(self, held: _SignIn, now: float) -> bool:
        return now - held.last_seen < self.idle_s and now - held.started < self.absolute_s


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with `Secure` on the cookie when the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def install_sign_in(server: Flask, engine: Engine, secret_key: bytes, settings: DashboardConfig) -> None:
    """Guard every route of `server` and add /login, /logout and /notice. `settings.behind_tls_proxy`: browsers
    reach the dashboard over HTTPS through a proxy, so cookies get `Secure` and requests must come from https://;
    its sign_in_hours, idle_minutes and login_* keys are the sign-ins' lifetimes and the throttle's bounds."""
    behind_tls_proxy = settings.behind_tls_proxy
    sign_ins = SignIns(idle_s=settings.idle_minutes * 60, absolute_s=settings.sign_in_hours * 3600)
    throttle = LoginThrottle(
        max_failures=settings.login_failures_per_name,
        max_address_failures=settings.login_failures_per_address,
        window_s=settings.login_failure_window_seconds,
        max_checks=settings.login_checks_at_once,
    )
    server.secret_key = secret_key
    server.session_interface = _SessionInterface()
    server.config.update(
        SESSION_COOKIE_NAME="classpulse_session",
        SESSION_COOKIE_HTTPONLY=True,
        # Cross-site requests carry no cookie: no other site can post callbacks or sign a user out.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=behind_tls_proxy,
        # The cookie's own expiry is set once, at sign-in; SignIns ends the sign-in on the server.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.sign_in_hours),
        SESSION_REFRESH_EACH_REQUEST=False,
        # A token lives as long as the sign-in it belongs to (sign-in and sign-out make a new one): a report
        # page left open for an hour must still be able to run its callbacks.
        WTF_CSRF_TIME_LIMIT=None,
    )

    @server.before_request
    def _guard() -> WerkzeugResponse | None:
        if request.method not in SAFE_METHODS and not _same_origin(behind_tls_proxy):
            return _page("Request refused", "<p>A request from another site was refused.</p>", 403)
        if request.path in OPEN_PATHS:
            return None
        user = _signed_in_user(engine, sign_ins)
        if user is None:
            return _refuse(401, "/login")
        g.user = user
        if user.notice_accepted_at is None and request.path not in NOTICE_PATHS:
            return _refuse(403, "/notice")
        return None

    @server.route("/login", methods=["GET", "POST"])
    def _login() -> WerkzeugResponse:
        target = local_path(request.values.get("next", "/"))
        if request.method == "GET":
            return _page("Sign in", _login_form(target, ""))
        name = request.form.get("name", "").strip()
        address = request.remote_addr or ""
        now = time.monotonic()
        wait_s = throttle.begin(name, address, now)
        if wait_s > BUSY_RETRY_S:
            minutes = max(1, round(wait_s / 60))
            message = f"Too many failed sign-ins. Try again in about {minutes} minute(s)."
            return _page("Sign in", _login_form(target, message), 429)
        if wait_s > 0:
            message = "Too many sign-ins at this moment. Try again in a few seconds."
            return _page("Sign in", _login_form(target, message), 429)
        user = None
        try:
            user = check_login(engine, name, request.form.get("password", ""))
        finally:
            throttle.end(name, address, now, succeeded=user is not None)
        if user is None:
            return _page("Sign in", _login_form(target, "Wrong user name or password."), 401)
        sign_ins.end(session.get(SIGN_IN_KEY))
        session.clear()
        session.permanent = True
        generate_csrf()  # this sign-in's token (session.clear dropped the visitor's), bound to it in SignIns
        session.update({SIGN_IN_KEY: sign_ins.start(user.name, session[CSRF_FIELD], now), "stamp": user.session_stamp})
        return redirect(target if user.notice_accepted_at else f"/notice?next={quote(target, safe='/')}")

    @server.route("/logout", methods=["POST"])
    def _logout() -> WerkzeugResponse:
        sign_ins.end(session.get(SIGN_IN_KEY))
        session.clear()
        return redirect("/login")

    @server.route("/notice", methods=["GET", "POST"])
    def _notice() -> WerkzeugResponse:
        target = local_path(request.values.get("next", "/"))
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
        # Readable by scripts (not HttpOnly): dash-renderer reads it. Pages on other ports of this host can read
        # it too (cookies do not keep ports apart), which is why every POST must also come from this origin.
        secure = server.session_interface.get_cookie_secure(server)
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax", secure=secure)
        return response


def _signed_in_user(engine: Engine, sign_ins: SignIns) -> User | None:
    if SIGN_IN_KEY not in session:
        # A visitor: their session holds only the sign-in form's CSRF token, which must survive the requests
        # a browser makes besides the form (a favicon).
        return None
    name = sign_ins.user(session[SIGN_IN_KEY], session.get(CSRF_FIELD), time.monotonic())
    if name is None:  # signed out, ended, or from before a restart
        session.clear()
        return None
    user = find_user(engine, name)
    # A removed user, or a password or role changed since this cookie was signed, ends the session.
    if user is None or user.session_stamp != session.get("stamp"):
        session.clear()
        return None
    return user


def _refuse(status: int, page: str) -> WerkzeugResponse:
    """Browsers asking for a page are sent to `page`; Dash's requests and anything else get the bare status."""
    # find, not `in`: the same match (wildcards too), but typed; mypy reads `in` as a look-up among
    # (type, quality) pairs.
    wants_html = request.accept_mimetypes.find("text/html") >= 0
    if request.method == "GET" and not request.path.startswith("/_") and wants_html:
        return redirect(f"{page}?next={quote(request.full_path.rstrip('?'), safe='/')}")
    return Response("sign in first" if status == 401 else "accept the notice first", status, mimetype="text/plain")


def local_path(target: str) -> str:
    """`target` if it is a path on this site, else "/". Checked as a browser reads a Location header: browsers
    drop tabs and line breaks and read a backslash as a slash, so "/\t/evil.example" is "//evil.example", another
    site. Any control character or backslash, a scheme or a host, or a path that does not start with exactly
    one slash is refused."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return target


def _same_origin(behind_tls_proxy: bool) -> bool:
    """Whether a state-changing request comes from this site's own pages. Browsers name the page's origin
    (Origin, else Referer) on every cross-origin POST; a page on another port of this host can read the
    CSRF cookie, but not make its requests look as if they came from here. A request naming neither (not a
    browser's) relies on the CSRF token alone."""
    scheme = "https" if behind_tls_proxy else request.scheme
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if claimed is None:
        return True
    origin = urlsplit(claimed)
    return (origin.scheme, origin.netloc) == (scheme, request.host)


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
