"""Each lesson's per-student report numbers (analytics.term.lesson_students) kept in memory while the lesson is
unchanged, for the class pages.

A class page shows every lesson of a term, and a report is computed from every row of its session: through
dashboard.report_cache alone (a few full reports kept) a term would be recomputed at every view. What a class
page needs of a lesson is one small row per student, so many lessons' are kept here, each reused until
db.queries.session_version says the lesson changed (a frame, a rename, a merge); a lesson is computed through
report_cache, so a report page open on it at the same time shares the computation.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from analytics.settings import EngagementConfig
from analytics.term import lesson_students
from dashboard.kept import KeptByVersion
from dashboard.report_cache import report_tables
from db.queries import SessionInfo, session_version

# Lessons kept: a school's classes over a term or two (a few dozen rows each, a few kilobytes).
KEPT_LESSONS = 4096

_kept: KeptByVersion[pd.DataFrame] = KeptByVersion(KEPT_LESSONS)


def lesson_table(engine: Engine, lesson: SessionInfo, config: EngagementConfig) -> pd.DataFrame:
    """analytics.term.lesson_students of the lesson's report, reused while the lesson and configuration are
    unchanged (raises db.errors.DatabaseError)."""
    key = (engine.url.render_as_string(hide_password=False), lesson.id)
    version = (session_version(engine, lesson.id), config)
    kept = _kept.get(key, version)
    if kept is not None:
        return kept
    # Read after `version`: a lesson changed meanwhile is kept under its older version, and computed again.
    table = lesson_students(report_tables(engine, lesson, config))
    _kept.put(key, version, table)
    return table


def forget_lessons() -> None:
    """Drop every kept lesson (a benchmark times class pages computed afresh)."""
    _kept.clear()
