"""Every chart of the dashboard, as Plotly figures built from analytics tables. Colours come from theme."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from analytics.timeline import BIN_SECONDS, MoodNow, emotion_shares
from dashboard.formatting import to_local
from dashboard.theme import ABSENT_COLOR, CHART_LAYOUT, EMOTION_COLORS, ENGAGEMENT_LINE_COLOR, ENGAGEMENT_SCALE
from vocabulary.emotions import EMOTIONS

SPARKLINE_HEIGHT_PX = 36
ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"


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
    traces = [
        go.Scatter(
            x=x,
            y=shares[emotion],
            name=emotion,
            mode="lines",
            stackgroup="mood",
            line={"width": 0.5, "color": EMOTION_COLORS[emotion]},
            fillcolor=EMOTION_COLORS[emotion],
            hovertemplate="%{y:.0%}",
        )
        for emotion in EMOTIONS
    ]
    axes: dict[str, Any] = {
        "yaxis": {"range": [0, 1], "tickformat": ".0%", "title": "share of faces", "fixedrange": True}
    }
    if engagement is not None and len(engagement):
        traces.append(
            go.Scatter(
                x=to_local(engagement.index),
                y=engagement.to_numpy(),
                name="engagement",
                mode="lines",
                yaxis="y2",
                line={"width": 2.5, "color": ENGAGEMENT_LINE_COLOR},
                hovertemplate="%{y:.2f}",
            )
        )
        axes["yaxis2"] = {
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "title": {"text": "class engagement", "standoff": 10},
            "automargin": True,  # room for its ticks and title: a fixed margin clipped them
            "fixedrange": True,
        }
    figure = go.Figure(traces)
    figure.update_layout(CHART_LAYOUT, title=title, hovermode="x unified", uirevision="mood-timeline", **axes)
    figure.update_xaxes(rangeslider={"visible": True, "thickness": 0.08}, type="date")
    if shown is not None:
        figure.update_xaxes(range=list(to_local(pd.DatetimeIndex(shown))))
    return figure


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
    names = [html.escape(f"{name} ({key})" if name in shared else name) for key, name in zip(keys, shown, strict=True)]
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
    figure = go.Figure(
        go.Bar(
            x=mood.shares.to_numpy(),
            y=list(EMOTIONS),
            orientation="h",
            marker_color=[EMOTION_COLORS[emotion] for emotion in EMOTIONS],
            text=[f"{share:.0%}" for share in mood.shares],
            textposition="auto",
            hovertemplate="%{y}: %{x:.0%}<extra></extra>",
        )
    )
    figure.update_layout(CHART_LAYOUT, height=260, margin={"l": 72, "r": 8, "t": 8, "b": 24}, showlegend=False)
    figure.update_xaxes(range=[0, 1], tickformat=".0%", fixedrange=True)
    figure.update_yaxes(autorange="reversed", fixedrange=True)
    return figure


def sparkline(dominant: pd.Series, start: datetime, end: datetime) -> dict[str, Any]:
    """A strip of one bar per time bin, coloured by the student's most frequent emotion in that bin.

    `dominant`: emotion names indexed by bin (analytics.timeline.dominant_emotions of one student's counts).
    Bins where the student was not seen stay empty; the x range is fixed to [start, end] so every card's
    strip lines up. A plain figure dict: a class has dozens of cards per refresh, and building validated
    Figure objects costs tens of milliseconds each.
    """
    hidden_axis = {"visible": False, "fixedrange": True}
    return {
        "data": [
            {
                "type": "bar",
                "x": list(to_local(dominant.index).strftime(ISO_SECONDS)),
                "y": [1] * len(dominant),
                "width": BIN_SECONDS * 1000 * 0.9,
                "customdata": list(dominant),
                "marker": {"color": [EMOTION_COLORS[emotion] for emotion in dominant]},
                "hovertemplate": "%{x|%H:%M:%S} %{customdata}<extra></extra>",
            }
        ],
        "layout": {
            "height": SPARKLINE_HEIGHT_PX,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "showlegend": False,
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": ABSENT_COLOR,
            "xaxis": {
                **hidden_axis,
                "type": "date",
                "range": list(to_local(pd.DatetimeIndex([start, end])).strftime(ISO_SECONDS)),
            },
            "yaxis": {**hidden_axis, "range": [0, 1]},
        },
    }


def message_figure(text: str) -> go.Figure:
    """An empty chart that says why it is empty."""
    figure = go.Figure()
    figure.update_layout(CHART_LAYOUT, xaxis={"visible": False}, yaxis={"visible": False})
    figure.add_annotation(text=text, showarrow=False, font={"size": 15}, xref="paper", yref="paper", x=0.5, y=0.5)
    return figure
