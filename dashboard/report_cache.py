"""Session reports kept in memory while their session is unchanged.

A report is computed from every row of its session (seconds on a long class), and the report page, its CSV
download and the redraw after a rename each need it. A finished session's tables are kept here and reused
until db.queries.session_version says the session changed (a frame added, a student renamed or merged);
only a few sessions are kept, the least recently used going first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import Engine

from analytics.report import SessionTables, score_session
from analytics.settings import EngagementConfig
from db.queries import SessionInfo, session_version

KEPT_SESSIONS = 8

_lock = threading.Lock()
_kept: OrderedDict[tuple[str, int], tuple[Any, SessionTables]] = OrderedDict()


def report_tables(engine: Engine, session: SessionInfo, config: EngagementConfig) -> SessionTables:
    """analytics.report.score_session, reused while the session and the configuration are unchanged."""
    key = (engine.url.render_as_string(hide_password=False), session.id)
    version = (session_version(engine, session.id), config)
    with _lock:
        kept = _kept.get(key)
        if kept is not None and kept[0] == version:
            _kept.move_to_end(key)
            return kept[1]
    # Computed outside the lock: two pages asking at once each compute, rather than one waiting on the other.
    tables = score_session(engine, session, config)
    with _lock:
        _kept[key] = (version, tables)
        _kept.move_to_end(key)
        while len(_kept) > KEPT_SESSIONS:
            _kept.popitem(last=False)
    return tables


def forget_reports() -> None:
    """Drop every kept report (the benchmark times reports computed afresh)."""
    with _lock:
        _kept.clear()
