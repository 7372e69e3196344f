"""Session reports kept in memory while their session is unchanged.

A report is computed from every row of its session (seconds on a long class), and the report page, its CSV
download and the redraw after a rename each need it. A finished session's tables are kept here and reused
until db.queries.session_version says the session changed (a frame added, a student renamed or merged);
only a few sessions are kept, the least recently used going first.

A session's report is computed once at a time: a page asking while it is being computed (two tabs, or the
warming below) waits for that computation and shares it. `warm_report` computes an ended session's report on
a thread of its own as soon as the dashboard learns of the end (the live page's refresh, the school server's
end of a capture), so the teacher who opens the report after the lesson finds it ready instead of waiting
for every row of the session to be read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import suppress
from typing import Any

from sqlalchemy import Engine

from analytics.report import SessionTables, score_session
from analytics.settings import EngagementConfig
from dashboard.kept import KeptByVersion
from db.errors import DatabaseError
from db.queries import SessionInfo, session_version

KEPT_SESSIONS = 8
# Session ends warm_report remembers having warmed: far more than a server sees ended in the time a report is
# kept, so none is warmed twice while kept; a forgotten one only costs a session_version read when seen again.
WARMED_REMEMBERED = 1024

_lock = threading.Lock()
_kept: KeptByVersion[SessionTables] = KeptByVersion(KEPT_SESSIONS)
# Reports being computed, by _kept's key: set when the computation ends, whether or not it succeeded.
_computing: dict[tuple[str, int], threading.Event] = {}
# Ended sessions whose report warm_report has started (by _kept's key and the session's end): each end once.
_warmed: OrderedDict[tuple[str, int, Any], None] = OrderedDict()
# Held by the warming computing now (see _warm).
_warming = threading.Lock()


def report_tables(engine: Engine, session: SessionInfo, config: EngagementConfig) -> SessionTables:
    """analytics.report.score_session, reused while the session and the configuration are unchanged."""
    key = (engine.url.render_as_string(hide_password=False), session.id)
    while True:
        version = (session_version(engine, session.id), config)
        with _lock:
            kept = _kept.get(key, version)
            if kept is not None:
                return kept
            running = _computing.get(key)
            if running is None:
                done = _computing[key] = threading.Event()
                break
        running.wait()  # then the report it computed, if the session is still as it was
    try:
        tables = score_session(engine, session, config)
        _kept.put(key, version, tables)
        return tables
    finally:
        with _lock:
            del _computing[key]
        done.set()


def warm_report(engine: Engine, session: SessionInfo, config: EngagementConfig) -> threading.Thread | None:
    """Compute the report of `session`, which has ended, on a thread of its own and keep it; the thread, or
    None when this end of the session was warmed before (cheap to call at every refresh)."""
    key = (engine.url.render_as_string(hide_password=False), session.id, session.ended_at)
    with _lock:
        if session.ended_at is None or key in _warmed:
            return None
        _warmed[key] = None
        while len(_warmed) > WARMED_REMEMBERED:
            _warmed.popitem(last=False)
    thread = threading.Thread(target=_warm, args=(engine, session, config), daemon=True)
    thread.start()
    return thread


def _warm(engine: Engine, session: SessionInfo, config: EngagementConfig) -> None:
    # One at a time: at a change of periods a school server sees dozens of sessions end together, and their
    # reports computed at once would take both cores from the captures sending the next lesson's frames.
    # On failure the report page computes it when opened, and says what failed then.
    with _warming, suppress(DatabaseError):
        report_tables(engine, session, config)


def forget_reports() -> None:
    """Drop every kept report (the benchmark times reports computed afresh)."""
    with _lock:
        _kept.clear()
        _warmed.clear()
