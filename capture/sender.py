"""`python -m capture --server URL`: frames go to the school's server (dashboard.ingest) with the teacher's capture
token, instead of into a database whose password the teacher's machine would have to hold.

`ServerRecorder` stands where `db.recorder.SessionRecorder` stands in the capture loop (capture.runner). Each
frame is first kept in the local spool (capture.spool), then sent by a thread of its own, oldest first, and
removed once the server has acknowledged it. A server that is down or unreachable only delays that: capture
goes on, and the frames go out in order when it is back. The server stores a frame it already holds only once,
so a frame resent after a lost acknowledgement is not duplicated. Frames still waiting when capture stops are
reported (ServerError, exit code 2) and stay in the spool for the next run to send.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import urllib3

from capture.errors import CaptureError
from capture.spool import DEFAULT_SPOOL, Spool, SpoolError
from config import CaptureConfig
from db.errors import DatabaseError
from db.tokens import hash_token
from vocabulary.records import FrameResult
from vocabulary.wire import INGEST_PATH, MAX_BATCH, frame_to_json

TOKEN_VARIABLE = "CLASSPULSE_TOKEN"
# The configuration's capture.server_timeout_seconds.
REQUEST_TIMEOUT_S = CaptureConfig().server_timeout_seconds
RETRY_EVERY_S = 2.0
# How long a stopping capture keeps trying an unreachable server; its frames stay in the spool either way
# (config: capture.server_drain_seconds).
DRAIN_SECONDS = CaptureConfig().server_drain_seconds


class ServerError(DatabaseError):
    """The server refused the capture (a revoked token, another teacher's session, a frame it does not accept):
    retrying cannot help, so capture stops, and the CLI prints this and exits 2."""


class ServerUnreachable(Exception):
    """No answer, or the server cannot write now (5xx): worth trying again later."""


def read_token(token_file: Path | None) -> str:
    """The capture token, from `token_file` or else the CLASSPULSE_TOKEN variable: never from the command line,
    which every user of the machine can read (ps)."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
            shared = token_file.stat().st_mode & 0o077
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise CaptureError(f"cannot read the token file {token_file}: {reason}") from None
        if shared:
            _warn(f"other users of this machine can read the token file {token_file}: chmod 600 {token_file}")
        where = f"the token file {token_file}"
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        where = TOKEN_VARIABLE
    if not token:
        raise CaptureError(f"no capture token: {where} is empty (`python -m dashboard tokens issue NAME` makes one)")
    if any(char.isspace() or not char.isprintable() for char in token):
        raise CaptureError(f"{where} does not hold one capture token (one line, no spaces)")
    return token


def check_server_url(url: str) -> str:
    """`url` without a trailing slash; CaptureError unless it is an http(s) URL of a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise CaptureError(f"--server {url!r} is not a server URL (expected https://host[:port] or http://host:port)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        _warn(f"{url} is not https: the capture token and the class's numbers cross the network in clear text")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _warn(message: str) -> None:
    print(f"capture: warning: {message}", file=sys.stderr, flush=True)


class IngestClient:
    """The three requests of the ingest API (dashboard.ingest), one HTTP POST each, over one kept-alive
    connection: a capture posts every second for a whole lesson, and a fresh connection would cost each post a
    TCP (and, over https, a TLS) handshake on the school's server."""

    def __init__(self, server_url: str, token: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.server_url = server_url
        self.token = token
        self.timeout_s = timeout_s
        # No retries and no redirects: an unanswered post is spooled and sent again by ServerRecorder, and a
        # redirect would resend the token to wherever it points.
        # Two connections at most: the sending thread's, and a stopping capture's last request while an abandoned
        # send may still hold the first.
        self._pool = urllib3.PoolManager(
            num_pools=1, maxsize=2, retries=False, timeout=urllib3.Timeout(total=timeout_s), block=False
        )

    def open(self, session: str, source: str, class_of: str | None = None) -> int:
        """Start or continue `session` (in the token's teacher's class `class_of`, if given); the frame number the
        server continues it at."""
        body = {"session": session, "source": source} | ({} if class_of is None else {"class": class_of})
        answer = self._post("open", body, f"open session {session!r}")
        next_frame = answer.get("next_frame")
        if not isinstance(next_frame, int):
            raise ServerUnreachable(f"{self.server_url} did not answer as a ClassPulse server")
        return next_frame

    def send(self, session: str, frames: list[dict[str, Any]]) -> None:
        self._post("frames", {"session": session, "frames": frames}, f"take frames of session {session!r}")

    def close(self, session: str) -> None:
        self._post("close", {"session": session}, f"close session {session!r}")

    def _post(self, path: str, body: dict[str, Any], action: str) -> dict[str, Any]:
        try:
            response = self._pool.request(
                "POST",
                f"{self.server_url}{INGEST_PATH}/{path}",
                body=json.dumps(body, allow_nan=False).encode(),
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:  # refused, reset, timed out, a bad certificate
            raise ServerUnreachable(f"{self.server_url} is unreachable ({_reason(error)})") from None
        if response.status >= 300:
            message = _error_message(response)
            if response.status >= 500:
                raise ServerUnreachable(f"{self.server_url} answered {response.status}: {message}")
            raise ServerError(f"the server {self.server_url} refused to {action}: {message}")
        try:
            answer = json.loads(response.data)
        except ValueError:
            raise ServerUnreachable(f"{self.server_url} did not answer as a ClassPulse server") from None
        if not isinstance(answer, dict):
            raise ServerUnreachable(f"{self.server_url} did not answer as a ClassPulse server")
        return answer


def _reason(error: Exception) -> object:
    # urllib3 wraps the socket's error (refused, unknown host) in its own; the socket's says what happened.
    return getattr(error, "reason", None) or error.__context__ or error


def _error_message(response: urllib3.BaseHTTPResponse) -> str:
    if 300 <= response.status < 400:
        return f"it redirects ({response.status}) to {response.headers.get('Location')}; give that URL to --server"
    try:
        message = json.loads(response.data).get("error")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else f"HTTP {response.status} {response.reason}"


class ServerRecorder:
    """Records a session's frames on the school's server, through the spool. Open with `ServerRecorder.open`;
    usable as a context manager, as SessionRecorder is."""

    def __init__(
        self,
        client: IngestClient,
        spool: Spool,
        session_name: str,
        next_frame_index: int,
        drain_s: float,
    ) -> None:
        self.client = client
        self.spool = spool
        self.session_name = session_name
        self.next_frame_index = next_frame_index
        self.drain_s = drain_s
        self.sent_frames = 0
        self._server = client.server_url
        self._token = hash_token(client.token)
        self._refused: ServerError | None = None
        # Sessions of earlier runs the server refused (another teacher's, say): their frames stay for their own run.
        self._skipped: dict[str, str] = {}
        self._down_since: float | None = None
        # Sessions opened on the server since it last answered: a server that restarted must be told again.
        self._opened: set[str] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-sender", daemon=True)

    @classmethod
    def open(
        cls,
        server_url: str,
        token: str,
        session_name: str,
        source: str,
        spool_path: Path = DEFAULT_SPOOL,
        drain_s: float = DRAIN_SECONDS,
        timeout_s: float = REQUEST_TIMEOUT_S,
        class_of: str | None = None,
    ) -> ServerRecorder:
        """Start or continue `session_name` on the server; while the server cannot be reached, in the spool only
        (numbered after its frames there, and renumbered if the server holds more: capture.spool.Spool.confirm).
        ServerError when the server refuses (a revoked token, another teacher's session)."""
        client = IngestClient(check_server_url(server_url), token, timeout_s)
        spool = Spool(spool_path)
        server_next: int | None = None
        down: ServerUnreachable | None = None
        try:
            server_next = client.open(session_name, source, class_of)
        except ServerUnreachable as error:
            down = error
        except ServerError:
            spool.close()
            raise
        try:
            next_frame = spool.start_session(
                client.server_url, hash_token(token), session_name, source, server_next, class_of=class_of
            )
        except SpoolError:
            spool.close()
            raise
        recorder = cls(client, spool, session_name, next_frame, drain_s)
        mine = sum(spool.waiting(client.server_url, recorder._token).values())
        if others := sum(spool.waiting(client.server_url).values()) - mine:
            _warn(f"{others} frame(s) captured with another token wait in {spool.path}; that token's runs send them")
        if down is not None:
            recorder._note_down(down)
        else:
            recorder._opened.add(session_name)
        recorder._thread.start()
        return recorder

    def record(self, result: FrameResult) -> None:
        """Keep the frame in the spool and wake the sender; then ServerError if the server has refused the capture
        (the frame stays in the spool all the same)."""
        payload = json.dumps(frame_to_json(result), allow_nan=False)
        self.spool.add(self._server, self.session_name, result.frame_index, payload)
        self.next_frame_index = result.frame_index + 1
        self._wake.set()
        if self._refused is not None:
            raise self._refused

    def reload(self) -> None:
        """Nothing to read back: a frame counts as recorded once it is in the spool, which is never in doubt."""

    def close(self) -> None:
        """Wait for the waiting frames to be sent (while the server is unreachable, at most `drain_s`), then end
        the session on the server. ServerError naming the frames left in the spool, if any are."""
        self._stopping.set()
        self._wake.set()
        started = time.monotonic()
        while self._thread.is_alive():
            self._thread.join(0.2)
            if self._down_since is not None and time.monotonic() - started > self.drain_s:
                break
        self._abandoned.set()
        self._wake.set()
        # A request in flight may still be acknowledged: its frames then leave the spool before it is counted.
        self._thread.join(self.client.timeout_s + 1)
        try:
            waiting = sum(self.spool.waiting(self._server, self._token).values())
            if self._refused is not None or waiting:
                why = str(self._refused or "; ".join(self._skipped.values()))
                why = why or f"the server {self._server} stayed unreachable"
                raise ServerError(
                    f"{why}; {waiting} frame(s) not sent are kept in {self.spool.path} and sent, in order, by the "
                    f"next `python -m capture --server {self._server}` run"
                )
            try:
                self.client.close(self.session_name)
            except ServerUnreachable as error:
                _warn(f"every frame was sent, but the session could not be ended on the server: {error}")
                return
            self.spool.forget_session(self._server, self.session_name)
        finally:
            if not self._thread.is_alive():
                self.spool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        while not self._abandoned.is_set():
            try:
                done = self._send_waiting()
            except ServerUnreachable as error:
                self._note_down(error)
                done = False
            except ServerError as error:
                self._refused = error
                return
            except SpoolError as error:
                self._refused = ServerError(f"frames can no longer be sent: {error}")
                return
            if done and self._stopping.is_set():
                return
            self._wake.wait(RETRY_EVERY_S if self._down_since is not None else None)
            self._wake.clear()

    def _send_waiting(self) -> bool:
        """Send every waiting frame, oldest first, then end the sessions of earlier runs that are now complete;
        True when nothing waits but what the server refused."""
        while not self._abandoned.is_set():
            oldest = self.spool.oldest(self._server, self._token, MAX_BATCH, frozenset(self._skipped))
            if oldest is None:
                break
            session, frames = oldest
            with self._skipping_if_refused(session.name):
                if session.name not in self._opened:
                    self._open_on_server(session.name, session.source, session.class_of)
                    continue  # its frames may have been renumbered
                self.client.send(session.name, [json.loads(f.payload) | {"frame": f.frame_index} for f in frames])
                self.spool.remove([f.seq for f in frames])
                self.sent_frames += len(frames)
                self._note_up()
        for name in self.spool.finished_sessions(self._server, self._token, self.session_name):
            with self._skipping_if_refused(name):
                self.client.close(name)
                self.spool.forget_session(self._server, name)
        return not set(self.spool.waiting(self._server, self._token)) - set(self._skipped)

    @contextmanager
    def _skipping_if_refused(self, name: str) -> Iterator[None]:
        """A refusal about a session of an earlier run leaves that session's frames in the spool and the others
        going; one about this run's session stops it (ServerError)."""
        try:
            yield
        except ServerError as error:
            if name == self.session_name:
                raise
            self._skipped[name] = str(error)
            _warn(f"{error}; its frames stay in {self.spool.path}")

    def _open_on_server(self, name: str, source: str, class_of: str | None) -> None:
        self.spool.confirm(self._server, name, self.client.open(name, source, class_of))
        self._opened.add(name)
        self._note_up()

    def _note_down(self, error: ServerUnreachable) -> None:
        self._opened.clear()
        if self._down_since is None:
            self._down_since = time.monotonic()
            _warn(f"{error}; frames are kept in {self.spool.path} and sent, in order, when it is back")

    def _note_up(self) -> None:
        if self._down_since is not None:
            waiting = sum(self.spool.waiting(self._server, self._token).values())
            _warn(f"the server is back after {time.monotonic() - self._down_since:.0f} s; sending {waiting} frame(s)")
            self._down_since = None
