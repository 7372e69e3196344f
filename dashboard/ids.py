"""Every component id the callbacks (and browser tests) address, in one place so they stay stable."""

from __future__ import annotations

import re

URL = "url"
PAGE = "page-content"
SIGN_OUT = "sign-out"  # the top bar's sign-out button (a plain form post to /logout)

LIVE_SESSION = "live-session"  # Store: {"id": ..., "name": ...} of the session on screen
LIVE_STATE = "live-state"  # Store: analytics.live.LiveState as JSON
LIVE_INTERVAL = "live-interval"
LIVE_WINDOW = "live-window"  # RadioItems: seconds of history shown, or "all"
LIVE_BANNER = "live-banner"
LIVE_TIMELINE = "live-timeline"
LIVE_NOW = "live-now"  # the card of the class now: engagement, its trend, who is there
LIVE_NOW_CHART = "live-now-chart"
LIVE_STUDENT_COUNT = "live-student-count"
LIVE_ENGAGEMENT_NOW = "live-engagement-now"  # the class engagement score and its trend
LIVE_PRESENCE = "live-presence"  # how many are in the call, attentive, with cameras off, away
NEEDS_ATTENTION = "needs-attention"  # the flags needing attention, one line per kind
FLAGS_CARD = "flags-card"
FLAG_LIST = "flag-list"
FLAG_ACK = "flag-ack"  # the type of each flag's Acknowledge button: {"type": FLAG_ACK, "index": pages.live.flag_id}
FLAG_SNOOZE = "flag-snooze"  # each flag's "Snooze 10 min" button (its student): {"type": FLAG_SNOOZE, "index": flag_id}
FLAG_MUTE = "flag-mute"  # each flag's "Mute" button (its rule, for the class): {"type": FLAG_MUTE, "index": flag_id}
SILENCED = "silenced"  # the line of snoozes and mutes in force, each with its undo button
LIFT_SILENCE = "lift-silence"  # each undo button there: {"type": LIFT_SILENCE, "index": str(db.queries.FlagSilence.id)}
STUDENT_GRID = "student-grid"
LIVE_PAGE = "live-page"  # the live page's frame: its class says whether emotions are shown
LIVE_PREFERENCES = "live-preferences"  # Store in the browser's local storage: {user name: {"show_emotions": bool}}
SHOW_EMOTIONS = "show-emotions"  # Checklist: the user's "Show emotions" setting
LIVE_MOOD_CARD = "live-mood-card"  # the card of the emotions of the last seconds (hidden with emotions)

SESSIONS_TABLE = "sessions-table"
SESSIONS_FILTER = "sessions-filter"
SESSIONS_ROWS = "sessions-rows"

REPORT_SESSION = "report-session"  # Store: the session name
REPORT_TIMELINE = "report-timeline"
REPORT_STUDENTS = "report-students"
REPORT_HEATMAP = "report-heatmap"
REPORT_DROPS = "report-drops"
DOWNLOAD_STUDENTS_BUTTON = "download-students-button"
DOWNLOAD_STUDENTS = "download-students"
DOWNLOAD_ROWS_BUTTON = "download-rows-button"
DOWNLOAD_ROWS = "download-rows"
REPORT_PRINT = "report-print"  # the "Print / Save as PDF" button (a clientside callback calls window.print())
RENAME_NAME = "rename-name"  # Input: a student's new display name (the row's Rename… panel)
RENAME_BUTTON = "rename-button"
FIX_MESSAGE = "fix-message"  # why the last rename was refused

MESSAGE = "page-message"  # the text of a "nothing to show here" page
TIME_ZONE = "time-zone"  # the label naming the time zone the page's times are in


def student_card(student_key: str) -> str:
    """The card of one student; keys may hold characters an element id should not ('.' splits Dash ids)."""
    return "student-card-" + re.sub(r"[^A-Za-z0-9_-]", "_", student_key)
