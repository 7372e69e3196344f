"""The ingest API: teachers' captures (`python -m capture --server URL`) send their frames here, and this server
writes them through the same recorder a local capture uses (db.recorder.SessionRecorder).

A request is authorised by its capture token alone (`Authorization: Bearer ...`, db.tokens), never by a sign-in
cookie: this is a Flask app of its own, mounted under INGEST_PATH beside the dashboard's (dashboard.app), so
the dashboard's sign-in guard, session cookie and CSRF check never see these requests and these routes never
read a cookie. A browser cannot attach an Authorization header to a cross-site request without CORS, which
this app does not grant, so CSRF has nothing to forge here.

Every request is a JSON object naming the session:
- POST /open   {"session", "source", "class"?}: start the session, or continue it; answers {"next_frame"}. With
  "class", the session joins the token's teacher's class of that name (db.classes), created when new.
- POST /frames {"session", "frames": [...]}: up to MAX_BATCH frames (vocabulary.wire), in increasing order,
  written in one transaction. A frame already stored (same session, frame number and time) is acknowledged
  again and not written twice.
- POST /close  {"session"}: the capture ended.
A token may write only sessions its teacher owns (403); a revoked or unknown token is refused (401); a payload
that is not valid is refused whole with one line saying why (400), and nothing of it is written.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flask import Flask, Response, g, request
from sqlalchemy import Engine, select
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import config
from analytics.live import engagement_config
from dashboard.report_cache import warm_report
from db.engine import connect
from db.errors import DatabaseError, reported_as
from db.lease import LeaseLostError, SessionBusyError
from db.queries import find_session
from db.recorder import SessionRecorder
from db.schema import capture_tokens, frames, sessions, users
from db.stages import Stages
from db.tokens import REVOKED, RevokedTokenError, hash_token, require_live_token
from vocabulary.records import FrameResult
from vocabulary.wire import INGEST_PATH, MAX_BATCH, MAX_NAME_LENGTH, WireError, class_name, frame_from_json

# 50 frames of 49 students are about 1 MB of JSON.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_SOURCE_LENGTH = 500  # sessions.source


class Refusal(Exception):
    """A request answered with `status` and a one-line `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Writing:
    recorder: SessionRecorder
    teacher: str
    last_used: float
    # A database error may have come after a commit this server did not hear of: read the session back first.
    stale: bool = False
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class IngestSessions:
    """The sessions this server is writing for captures, each through its own SessionRecorder (which holds the
    session's lease while it is open here). Raises Refusal, or DatabaseError when the database is unreachable."""

    def __init__(self, engine: Engine, idle_close_s: float) -> None:
        self.engine = engine
        self.idle_close_s = idle_close_s
        self._writing: dict[str, _Writing] = {}
        # Held while a session is looked up, opened or closed: one owner check and one open per session at a time.
        self._lock = threading.Lock()

    def open(self, teacher: str, name: str, source: str, class_of: str | None = None) -> int:
        """Start or continue session `name` for `teacher` (in their class `class_of`, if given); the next frame
        number it expects."""
        self._close_idle()
        with self._held(teacher, name, source, class_of) as writing:
            return writing.recorder.next_frame_index

    def write(
        self, authorised: Authorised, name: str, results: list[FrameResult], stages: Stages
    ) -> tuple[list[int], list[int], int]:
        """Record `results` (in increasing order) in one transaction, with the token checked in it; the frame
        numbers stored, those already stored before, and the next one. Where the time went is added to `stages`.
        RevokedTokenError when the token is no longer live (an unchecked one: TokenCache)."""
        with self._held(authorised.teacher, name, None, stages=stages) as writing:
            recorder = writing.recorder
            try:
                if writing.stale:
                    recorder.reload()
                    writing.stale = False
                # In increasing order, so the resent frames come first: checked before anything is written.
                resent = [result for result in results if result.frame_index < recorder.next_frame_index]
                new = results[len(resent) :]
                with stages.stage("resent"):
                    self._check_resent(recorder, resent)
                    if not new and not authorised.checked:
                        self._check_token(authorised.token_id)
                recorder.record_many(new, stages, authorised.token_id)
            except LeaseLostError as error:
                with suppress(DatabaseError):  # the lease is gone already; this only stops renewing it
                    self._drop(name, writing)
                raise Refusal(409, str(error)) from None
            except DatabaseError:
                writing.stale = True
                raise
            return [r.frame_index for r in new], [r.frame_index for r in resent], recorder.next_frame_index

    def close(self, teacher: str, name: str) -> None:
        """End the session: its end time stamped, its lease released (opened first if this server restarted)."""
        with self._held(teacher, name, None) as writing:
            self._drop(name, writing)
        # The teacher opens the report after the lesson: computed now, off this request, it opens at once.
        warm_report(self.engine, find_session(self.engine, name), engagement_config())

    @contextmanager
    def _held(
        self, teacher: str, name: str, source: str | None, class_of: str | None = None, stages: Stages | None = None
    ) -> Iterator[_Writing]:
        """The session being written, opened first if needed (`source` None: it must exist), its lock held.
        `class_of`: the class a session without one joins (SessionRecorder.open), even when already open here.
        Finding it and waiting for its lock is added to `stages` as "session"."""
        stages = Stages() if stages is None else stages
        while True:
            with stages.stage("session"):
                writing = self._found(teacher, name, source, class_of)
                writing.lock.acquire()
            try:
                # Closed (idle, or its capture ended) between the lookup and the lock: look it up again.
                if writing.closed:
                    continue
                writing.last_used = time.monotonic()
                yield writing
                return
            finally:
                writing.lock.release()

    def _found(self, teacher: str, name: str, source: str | None, class_of: str | None) -> _Writing:
        with self._lock:
            writing = self._writing.get(name)
            if writing is None:
                stored_source = self._check_owner(teacher, name, must_exist=source is None)
                try:
                    recorder = SessionRecorder.open(self.engine, name, source or stored_source or "", teacher, class_of)
                except SessionBusyError as error:
                    raise Refusal(409, str(error)) from None
                writing = self._writing[name] = _Writing(recorder, teacher, time.monotonic())
            elif writing.teacher != teacher:
                raise _not_yours(name)
            elif class_of is not None and writing.recorder.class_id is None:
                writing.recorder.join_class(class_of)
            return writing

    def _close_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [(name, w) for name, w in self._writing.items() if now - w.last_used > self.idle_close_s]
        for name, writing in idle:
            with writing.lock:
                if not writing.closed and now - writing.last_used > self.idle_close_s:
                    with suppress(DatabaseError):  # then the lease ends by itself
                        self._drop(name, writing)

    def _drop(self, name: str, writing: _Writing) -> None:
        """Stop writing the session (its lock held): stamp its end and give up its lease."""
        writing.closed = True
        with self._lock:
            if self._writing.get(name) is writing:
                del self._writing[name]
        writing.recorder.close()

    def _check_owner(self, teacher: str, name: str, must_exist: bool) -> str | None:
        """The stored source of session `name` when it exists (None when it does not); Refusal unless `teacher`
        owns it. A session without an owner is an admin's: no token may write it."""
        statement = select(sessions.c.teacher, sessions.c.source).where(sessions.c.name == name)
        with reported_as("read a session from", self.engine.url), self.engine.connect() as connection:
            row = connection.execute(statement).first()
        if row is None:
            if must_exist:
                raise Refusal(404, f"no session named {name!r} on this server: open it first")
            return None
        if row.teacher != teacher:
            raise _not_yours(name)
        source: str = row.source
        return source

    def _check_token(self, token_id: int) -> None:
        """RevokedTokenError unless token `token_id` is live."""
        with reported_as("check a capture token in", self.engine.url), self.engine.connect() as connection:
            require_live_token(connection, token_id)

    def _check_resent(self, recorder: SessionRecorder, resent: list[FrameResult]) -> None:
        """Frames below the next number must be the ones stored under their numbers (a resend), nothing else."""
        if not resent:
            return
        statement = select(frames.c.frame_index, frames.c.ts).where(
            frames.c.session_id == recorder.session_id,
            frames.c.frame_index.in_([result.frame_index for result in resent]),
        )
        with reported_as("read a frame from", self.engine.url), self.engine.connect() as connection:
            stored = {row.frame_index: row.ts for row in connection.execute(statement)}
        for result in resent:
            stored_ts = stored.get(result.frame_index)
            if stored_ts != result.timestamp:
                held = "another frame" if stored_ts is not None else "no frame, and later ones"
                raise Refusal(
                    409,
                    f"frame {result.frame_index} of session {recorder.session_name!r}: the server holds {held} "
                    f"there; the session continues at frame {recorder.next_frame_index}",
                )


def _not_yours(name: str) -> Refusal:
    return Refusal(403, f"session {name!r} belongs to another teacher: this token cannot write it")


def mount_ingest(server: Flask, engine: Engine) -> None:
    """Serve the ingest API at INGEST_PATH beside `server`'s own routes: requests there never reach `server`, so
    its sign-in guard, session cookie and CSRF check neither apply nor can authorise them."""
    # Flask's documented way to put middleware in front of an app is to replace this method with it.
    server.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        server.wsgi_app, {INGEST_PATH: create_ingest_app(engine)}
    )


def create_ingest_app(engine: Engine) -> Flask:
    """The ingest API as a Flask app of its own. On a database server, on an engine of its own for `engine`'s
    database: two connections kept for each of the server's threads ([server] threads), one for its requests and
    one for the sessions' lease heartbeats (db.lease) beside them, so that no request waits for a connection or
    for a new one to be opened (a pool of one per thread: 19–87 ms of a request's time at 100 classrooms, under
    1 ms with two; bench.school); used without a ping first (db.engine.connect's ping=False), a round trip less
    a request: a request that fails on a connection the database dropped answers 503, and the capture sends
    again. (SQLite, one teacher's machine, is neither pinged nor pooled that way.)"""
    if engine.dialect.name != "sqlite":
        url = engine.url.render_as_string(hide_password=False)
        engine = connect(url, ping=False, pool_size=2 * config.chosen().server.threads)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # A session no request has written for this long is closed; a capture that comes back later continues it.
    writing = IngestSessions(engine, config.chosen().dashboard.ingest_idle_close_minutes * 60)
    tokens = TokenCache()

    def route(path: str) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], None]:
        def register(handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
            def answer() -> Response:
                stages = g.stages = Stages()
                with stages.stage("server"):
                    response = respond()
                # Where a request's time went (db.stages), for bench.school and an admin's browser tools.
                response.headers["Server-Timing"] = stages.header()
                return response

            def respond() -> Response:
                try:
                    with g.stages.stage("token"):
                        g.authorised = tokens.authorised(engine, may_use_cache=path == "/frames")
                        g.teacher = g.authorised.teacher
                    with g.stages.stage("parse"):
                        body = _body()
                    return _json(200, handle(body))
                except Refusal as refusal:
                    # An admin should see a revoked token still in use, or a capture aimed at another's session.
                    who = g.get("teacher", "no valid token")
                    print(
                        f"dashboard: ingest refused {path} from {request.remote_addr} ({who}): {refusal.status} "
                        f"{refusal.message}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return _json(refusal.status, {"error": refusal.message})
                except DatabaseError as error:
                    return _json(503, {"error": f"the database is unavailable, try again later: {error}"})

            app.add_url_rule(path, path.strip("/"), answer, methods=["POST"])

        return register

    @route("/open")
    def _open(body: dict[str, Any]) -> dict[str, Any]:
        _check_fields(body, {"session", "source"}, optional={"class"})
        class_of = None if body.get("class") is None else _class(body["class"])
        return {"next_frame": writing.open(g.teacher, _name(body["session"]), _source(body["source"]), class_of)}

    @route("/frames")
    def _frames(body: dict[str, Any]) -> dict[str, Any]:
        _check_fields(body, {"session", "frames"})
        with g.stages.stage("validate"):
            name, results = _name(body["session"]), _frames_of(body["frames"])
        try:
            stored, duplicates, next_frame = writing.write(g.authorised, name, results, g.stages)
        except RevokedTokenError:
            tokens.forget(g.authorised.token_id)
            raise Refusal(401, REVOKED) from None
        return {"stored": stored, "duplicates": duplicates, "next_frame": next_frame}

    @route("/close")
    def _close(body: dict[str, Any]) -> dict[str, Any]:
        _check_fields(body, {"session"})
        writing.close(g.teacher, _name(body["session"]))
        return {"closed": body["session"]}

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return _json(error.code or 500, {"error": error.description or error.name})

    return app


@dataclass(frozen=True)
class Authorised:
    teacher: str
    token_id: int
    # False: taken from the TokenCache, not read now; whatever writes with it checks it again (db.recorder).
    checked: bool


class TokenCache:
    """Live capture tokens seen, by their hash: a /frames batch (every second from every classroom) then costs no
    read of its own for its token. Safe after a revoke (by the admin page, the CLI, or another process): a batch
    written with a cached token has the token checked again inside its own write (SessionRecorder.record_many's
    token_id, in the same statement on PostgreSQL), so a revoked token writes nothing however long it stays here,
    and is dropped at its first refusal; every other request (/open, /close, a batch only of frames stored
    already) reads the token afresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, int]] = {}

    def authorised(self, engine: Engine, may_use_cache: bool) -> Authorised:
        """The request's token's teacher; Refusal (401) without a live token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(401, "a capture token is required: Authorization: Bearer TOKEN")
        hashed = hash_token(token.strip())
        with self._lock:
            cached = self._live.get(hashed) if may_use_cache else None
        if cached is not None:
            return Authorised(*cached, checked=False)
        statement = (
            select(users.c.name, capture_tokens.c.id)
            .join(capture_tokens, capture_tokens.c.user_id == users.c.id)
            .where(capture_tokens.c.token_hash == hashed, capture_tokens.c.revoked_at.is_(None))
        )
        with reported_as("check a capture token in", engine.url), engine.connect() as connection:
            row = connection.execute(statement).first()
        with self._lock:
            if row is None:
                self._live.pop(hashed, None)
                raise Refusal(401, REVOKED)
            self._live[hashed] = (row.name, row.id)
        return Authorised(row.name, row.id, checked=True)

    def forget(self, token_id: int) -> None:
        with self._lock:
            self._live = {hashed: live for hashed, live in self._live.items() if live[1] != token_id}


def _body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise Refusal(400, "the body must be JSON (Content-Type: application/json)")
    try:
        body = json.loads(request.get_data(), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise Refusal(400, "the body is not valid JSON (UTF-8, no NaN or Infinity)") from None
    if not isinstance(body, dict):
        raise Refusal(400, "the body must be a JSON object")
    return body


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _check_fields(body: dict[str, Any], expected: set[str], optional: frozenset[str] | set[str] = frozenset()) -> None:
    unknown = sorted(set(body) - expected - optional)
    missing = sorted(expected - set(body))
    if unknown or missing:
        problem = f"unknown field {unknown[0]!r}" if unknown else f"missing field {missing[0]!r}"
        raise Refusal(400, f"{problem} (expected {', '.join(sorted(expected | optional))})")


def _name(value: object) -> str:
    return _short_text(value, "session", MAX_NAME_LENGTH)


def _class(value: object) -> str:
    try:
        return class_name(value)
    except WireError as error:
        raise Refusal(400, str(error)) from None


def _source(value: object) -> str:
    return _short_text(value, "source", MAX_SOURCE_LENGTH)


def _short_text(value: object, what: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise Refusal(400, f"{what} must be a non-blank string of at most {max_length} characters")
    if any(ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise Refusal(400, f"{what} must not hold control characters or unpaired surrogates")
    return value


def _frames_of(raw: object) -> list[FrameResult]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise Refusal(400, f"frames must be a list of 1 to {MAX_BATCH} frames")
    try:
        results = [frame_from_json(frame, f"frames[{i}]") for i, frame in enumerate(raw)]
    except WireError as error:
        raise Refusal(400, str(error)) from None
    numbers = [result.frame_index for result in results]
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:], strict=False)):
        raise Refusal(400, "frames must be in increasing order of their frame numbers")
    return results


def _json(status: int, body: dict[str, Any]) -> Response:
    response = Response(json.dumps(body), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="classpulse-ingest"'
    return response
