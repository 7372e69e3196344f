"""Every chart of the dashboard, built from analytics tables: Plotly figures, and the cards' emotion strips as
plain HTML. Colours come from theme."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from html import escape
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import html

from analytics.timeline import BIN_SECONDS, MoodNow, emotion_shares
from dashboard.formatting import to_local
from dashboard.theme import ABSENT_COLOR, CHART_LAYOUT, EMOTION_COLORS, ENGAGEMENT_LINE_COLOR, ENGAGEMENT_SCALE
from vocabulary.emotions import EMOTIONS

SPARKLINE_HEIGHT_PX = 36


def mood_timeline(
    counts: pd.DataFrame,
    shown: tuple[datetime, datetime] | None = None,
    title: str = "",
    engagement: pd.Series | None = None,
) -> go.Figure:
    """Stacked areas of the class's emotion shares per time bin, with a range slider, and the class
    engagement line on a second axis (0..1) over them.

    `counts`: an analytics.timeline.emotion_counts table indexed by bin. Bins without any face are drawn
    as zero (a visible gap), not bridged. `shown`: the initial x range; None shows every bin.
    `engagement`: the class score per bin (analytics.engagement.class_bins' score indexed by bin).
    """
    if counts.empty:
        return message_figure("No faces seen yet in this time range.")
    bins = pd.date_range(counts.index.min(), counts.index.max(), freq=f"{BIN_SECONDS}s")
    shares = emotion_shares(counts).reindex(bins, fill_value=0.0)
    x = to_local(shares.index)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": x,
            "y": shares[emotion].to_numpy(),
            "name": emotion,
            "mode": "lines",
            "stackgroup": "mood",
            "line": {"width": 0.5, "color": EMOTION_COLORS[emotion]},
            "fillcolor": EMOTION_COLORS[emotion],
            "hovertemplate": "%{y:.0%}",
        }
        for emotion in EMOTIONS
    ]
    layout: dict[str, Any] = {
        **CHART_LAYOUT,
        "title": {"text": title},
        "hovermode": "x unified",
        "uirevision": "mood-timeline",
        "xaxis": {**CHART_LAYOUT["xaxis"], "rangeslider": {"visible": True, "thickness": 0.08}, "type": "date"},
        "yaxis": {
            **CHART_LAYOUT["yaxis"],
            "range": [0, 1],
            "tickformat": ".0%",
            "title": {"text": "share of faces"},
            "fixedrange": True,
        },
    }
    if shown is not None:
        layout["xaxis"]["range"] = list(to_local(pd.DatetimeIndex(shown)))
    if engagement is not None and len(engagement):
        traces.append(
            {
                "type": "scatter",
                "x": to_local(engagement.index),
                "y": engagement.to_numpy(),
                "name": "engagement",
                "mode": "lines",
                "yaxis": "y2",
                "line": {"width": 2.5, "color": ENGAGEMENT_LINE_COLOR},
                "hovertemplate": "%{y:.2f}",
            }
        )
        layout["yaxis2"] = {
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "title": {"text": "class engagement", "standoff": 10},
            "automargin": True,  # room for its ticks and title: a fixed margin clipped them
            "fixedrange": True,
        }
    return _figure(traces, layout)


def engagement_heatmap(per_student: pd.DataFrame) -> go.Figure:
    """Students (rows, in order of first appearance) by time bin, coloured by engagement on the Cividis scale.

    `per_student`: analytics.engagement.student_bins. A bin before a student's first appearance stays blank.
    """
    if per_student.empty:
        return message_figure("No engagement to show.")
    labels = per_student.groupby("student_id", sort=True).agg(student=("student", "first"), name=("name", "first"))
    grid = per_student.pivot(index="student_id", columns="bin", values="score").reindex(labels.index)
    keys = labels["student"]
    shown = [name if isinstance(name, str) else key for key, name in zip(keys, labels["name"], strict=True)]
    # Rows are categories: two students of one name (a rename, two tiles reading alike) would share one row.
    shared = {name for name, count in Counter(shown).items() if count > 1}
    # Plotly reads a few HTML tags in axis labels (<b>, <a href>): a name is shown as typed, never as markup.
    names = [escape(f"{name} ({key})" if name in shared else name) for key, name in zip(keys, shown, strict=True)]
    figure = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=to_local(grid.columns),
            y=names,
            zmin=0,
            zmax=1,
            colorscale=ENGAGEMENT_SCALE,
            colorbar={"title": "engagement", "thickness": 12},
            hovertemplate="%{y} %{x|%H:%M:%S}: %{z:.2f}<extra></extra>",
        )
    )
    figure.update_layout(CHART_LAYOUT, height=max(240, 22 * len(names) + 80))
    figure.update_xaxes(automargin=True)  # the date under the first time label
    # Room for the longest name: a teacher may type a long one.
    figure.update_yaxes(autorange="reversed", type="category", automargin=True)
    figure.update_xaxes(type="date")
    return figure


def mood_now_chart(mood: MoodNow) -> go.Figure:
    """One horizontal bar per emotion: its share of the faces seen in the last seconds."""
    bars = {
        "type": "bar",
        "x": mood.shares.to_numpy(),
        "y": list(EMOTIONS),
        "orientation": "h",
        "marker": {"color": [EMOTION_COLORS[emotion] for emotion in EMOTIONS]},
        "text": [f"{share:.0%}" for share in mood.shares],
        "textposition": "auto",
        "hovertemplate": "%{y}: %{x:.0%}<extra></extra>",
    }
    layout = {
        **CHART_LAYOUT,
        "margin": {"l": 72, "r": 8, "t": 8, "b": 24},
        "showlegend": False,
        "xaxis": {**CHART_LAYOUT["xaxis"], "range": [0, 1], "tickformat": ".0%", "fixedrange": True},
        "yaxis": {**CHART_LAYOUT["yaxis"], "autorange": "reversed", "fixedrange": True},
    }
    return _figure([bars], layout)


def sparkline(dominant: pd.Series, start: datetime, end: datetime) -> html.Div:
    """A strip of one bar per time bin, coloured by the student's most frequent emotion in that bin.

    `dominant`: emotion names indexed by bin (analytics.timeline.dominant_emotions of one student's counts).
    Bins where the student was not seen stay empty; the strip spans [start, end] so every card's strip lines
    up. One element whose background draws the bars: a class has dozens of cards, and the browser took
    seconds to draw that many Plotly charts (again at every refresh), and an element per bar cost the server
    more than the rest of the cards.
    """
    span = max((end - start).total_seconds(), 1.0)
    seconds = pd.DatetimeIndex(dominant.index).as_unit("s").asi8
    left = (seconds - start.timestamp()) / span * 100
    right = left + BIN_SECONDS * 0.9 / span * 100
    bars = [
        f"transparent {a:.2f}%, {EMOTION_COLORS[emotion]} {a:.2f}% {b:.2f}%, transparent {b:.2f}%"
        for a, b, emotion in zip(left.tolist(), right.tolist(), dominant, strict=True)
    ]
    counts = Counter(dominant.tolist())
    style = {
        "height": f"{SPARKLINE_HEIGHT_PX}px",
        "backgroundColor": ABSENT_COLOR,
        "backgroundImage": f"linear-gradient(to right, {', '.join(bars)})" if bars else "none",
    }
    shown = " · ".join(f"{emotion} {count}" for emotion, count in counts.most_common())
    title = f"bins of {BIN_SECONDS} s by emotion: {shown}" if shown else "not seen"
    return html.Div(className="sparkline", title=title, style=style)


def message_figure(text: str) -> go.Figure:
    """An empty chart that says why it is empty."""
    note = {
        "text": text,
        "showarrow": False,
        "font": {"size": 15},
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
    }
    return _figure(
        [], {**CHART_LAYOUT, "xaxis": {"visible": False}, "yaxis": {"visible": False}, "annotations": [note]}
    )


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A Figure of traces and layout written out in full, not checked property by property: the live page
    draws three every refresh, and Plotly's checks cost more than the rest of the refresh together. What
    they would catch, a misspelt property, the tests' figures show."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)
