"""Page pieces more than one page uses: the pages' paths, a "nothing to show" message page, a session's
heading, an emotion badge and the charts' settings."""

from __future__ import annotations

import math
from urllib.parse import quote

from dash import dcc, html

from analytics.live import SURE_PROBABILITY
from dashboard import ids
from dashboard.formatting import local_time, zone_label
from dashboard.theme import EMOTION_COLORS, EMOTION_TEXT_COLORS
from db.queries import SessionInfo

STATIC_GRAPH: dcc.Graph.Config = {"displayModeBar": False, "staticPlot": True}
TIMELINE_GRAPH: dcc.Graph.Config = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
ELSEWHERE = {"All sessions": "/sessions", "Newest session": "/"}


def live_path(session_name: str) -> str:
    return f"/live/{quote(session_name, safe='')}"


def report_path(session_name: str) -> str:
    return f"/report/{quote(session_name, safe='')}"


def message_page(title: str, text: str, links: dict[str, str] | None = None) -> html.Div:
    """A page that explains why there is nothing to show and where to go instead."""
    shown_links = [dcc.Link(label, href=href) for label, href in (links or {}).items()]
    return html.Div(
        [html.H1(title), html.P(text, id=ids.MESSAGE), html.P(shown_links, className="links")], className="message"
    )


def no_sessions_page() -> html.Div:
    return message_page(
        "No sessions yet",
        "No class has been recorded in this database yet — start one from “Start class” on the teacher's own computer, "
        "or with `python -m capture`, and this page will show it.",
    )


def session_heading(session: SessionInfo, links: dict[str, str]) -> html.Div:
    return html.Div(
        [
            html.H1(session.name),
            html.P(
                [
                    f"{session.source} · started {local_time(session.started_at, with_date=True)} · ",
                    html.Span(f"times in {zone_label()}", id=ids.TIME_ZONE, title="your browser's time zone"),
                ],
                className="subtitle",
            ),
            html.P([dcc.Link(label, href=href) for label, href in links.items()], className="links"),
        ],
        className="session-heading",
    )


def emotion_badge(emotion: str, sure: float | None = None) -> html.Span:
    """An emotion in its colour. `sure`: the model's calibrated probability for it (NaN or None: not given),
    said in the tooltip, and marked "?" when the model was unsure (below analytics.live.SURE_PROBABILITY)."""
    known = None if sure is None or math.isnan(sure) else sure
    unsure = known is not None and known < SURE_PROBABILITY
    text = emotion + ("?" if unsure else "")
    look = "badge" + (" unsure" if unsure else "")
    style = {"backgroundColor": EMOTION_COLORS[emotion], "color": EMOTION_TEXT_COLORS[emotion]}
    if known is None:
        # No title prop at all (Dash sends one given as None as null): a live refresh sends dozens of badges.
        return html.Span(text, className=look, style=style)
    said = f"{emotion}: model {'unsure' if unsure else 'sure'}, {known:.0%} likely (calibrated probability)"
    return html.Span(text, className=look, style=style, title=said)
