"""Every chart of the dashboard, built from analytics tables: Plotly figures, and the cards' emotion strips as
plain HTML. Colours come from theme."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html

from analytics.live import SURE_PROBABILITY, MoodConfidence
from analytics.timeline import BIN_SECONDS, emotion_shares
from dashboard.formatting import to_local
from dashboard.theme import (
    ABSENT_COLOR,
    CHART_LAYOUT,
    EMOTION_COLORS,
    ENGAGEMENT_LINE_COLOR,
    UNSURE_COLOR,
)
from vocabulary.emotions import EMOTIONS

SPARKLINE_HEIGHT_PX = 36
# Strips kept drawn (sparkline): a class's at this bin and the last, for a few classes at once.
STRIPS_KEPT = 1024
# Tick steps for a short session's time axis, in seconds, and at most how many ticks: left to itself, Plotly
# labels a session of a few seconds every few hundredths of a second ("17:34:49.9995"), finer than any bin.
SHORT_TICK_STEPS_S = (1, 2, 5, 10, 15, 30)
MAX_TICKS = 8


def time_ticks(start: datetime, end: datetime) -> dict[str, int]:
    """A date axis's tick step (Plotly's dtick, in milliseconds) for a chart shown from `start` to `end`: whole
    seconds, at most MAX_TICKS of them. Empty when even the longest step would give more: Plotly's own choice
    is then whole seconds or longer already."""
    span_s = (end - start).total_seconds()
    for step in SHORT_TICK_STEPS_S:
        if span_s / step <= MAX_TICKS:
            return {"dtick": step * 1000}
    return {}


def mood_timeline(
    counts: pd.DataFrame,
    shown: tuple[datetime, datetime] | None = None,
    title: str = "",
    engagement: pd.Series | None = None,
    unsure: pd.Series | None = None,
) -> go.Figure:
    """Stacked areas of the class's emotion shares per time bin, with a range slider, and the class
    engagement line on a second axis (0..1) over them.

    `counts`: an analytics.timeline.emotion_counts table indexed by bin. Bins without any face are drawn
    as zero (a visible gap), not bridged. `shown`: the initial x range; None shows every bin.
    `engagement`: the class score per bin (analytics.engagement.class_bins' score indexed by bin).
    `unsure`: per bin, how many of its faces the model was unsure about (analytics.live.LiveState.unsure),
    drawn as their share of the bin's faces: how far to trust the areas under it.
    """
    if counts.empty:
        return message_figure("No faces seen yet in this time range.")
    bins = pd.date_range(counts.index.min(), counts.index.max(), freq=f"{BIN_SECONDS}s")
    shares = emotion_shares(counts).reindex(bins, fill_value=0.0)
    x = _times(shares.index)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": x,
            "y": shares[emotion].tolist(),
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
        "xaxis": {
            **CHART_LAYOUT["xaxis"],
            "rangeslider": {"visible": True, "thickness": 0.08},
            "type": "date",
            **time_ticks(*(shown or (bins[0], bins[-1]))),
        },
        "yaxis": {
            **CHART_LAYOUT["yaxis"],
            "range": [0, 1],
            "tickformat": ".0%",
            "title": {"text": "share of faces"},
            "fixedrange": True,
        },
    }
    if shown is not None:
        layout["xaxis"]["range"] = _times(pd.DatetimeIndex(shown))
    if unsure is not None:
        faces = counts.sum(axis=1).reindex(bins)
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": (unsure.reindex(bins, fill_value=0) / faces.where(faces > 0)).tolist(),
                "name": f"unsure (model below {SURE_PROBABILITY:.0%})",
                "mode": "lines",
                "line": {"width": 1.5, "color": UNSURE_COLOR, "dash": "dot"},
                "hovertemplate": "%{y:.0%} unsure",
            }
        )
    if engagement is not None and len(engagement):
        traces.append(
            {
                "type": "scatter",
                "x": _times(engagement.index),
                "y": engagement.tolist(),
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


def engagement_timeline(engagement: pd.Series, shown: tuple[datetime, datetime] | None = None) -> go.Figure:
    """The class engagement line alone (for a viewer who hides emotions), on mood_timeline's axes."""
    if engagement.empty:
        return message_figure("No engagement scored yet in this time range.")
    line = {
        "type": "scatter",
        "x": _times(engagement.index),
        "y": engagement.tolist(),
        "name": "engagement",
        "mode": "lines",
        "line": {"width": 2.5, "color": ENGAGEMENT_LINE_COLOR},
        "hovertemplate": "%{y:.2f}",
    }
    layout: dict[str, Any] = {
        **CHART_LAYOUT,
        "uirevision": "mood-timeline",
        "xaxis": {
            **CHART_LAYOUT["xaxis"],
            "rangeslider": {"visible": True, "thickness": 0.08},
            "type": "date",
            **time_ticks(*(shown or (engagement.index[0], engagement.index[-1]))),
        },
        "yaxis": {**CHART_LAYOUT["yaxis"], "range": [0, 1], "title": {"text": "class engagement"}, "fixedrange": True},
    }
    if shown is not None:
        layout["xaxis"]["range"] = _times(pd.DatetimeIndex(shown))
    return _figure([line], layout)


def mood_now_chart(mood: MoodConfidence) -> go.Figure:
    """One horizontal bar per emotion: the share of the faces of the last seconds expected to show it (from
    the model's calibrated probabilities), with its 95 % band, and above them how many faces that is and
    how many of them the model was unsure about."""
    bars = {
        "type": "bar",
        "x": mood.expected.tolist(),  # seven numbers: plain lists read as they are in the browser
        "y": list(EMOTIONS),
        "orientation": "h",
        "marker": {"color": [EMOTION_COLORS[emotion] for emotion in EMOTIONS]},
        "error_x": {"type": "data", "array": mood.margin.tolist(), "color": "#444", "thickness": 1.2, "width": 3},
        "hovertemplate": "%{y}: %{x:.0%} ± %{error_x.array:.0%} (95 %)<extra></extra>",
    }
    # The numbers beside each emotion's name: over the bars, they collided with the bands.
    labels = [
        f"{emotion} {share:.0%} ±{margin:.0%}"
        for emotion, share, margin in zip(EMOTIONS, mood.expected, mood.margin, strict=True)
    ]
    sure = (
        f"{mood.faces} face(s) · model unsure about {mood.unsure:.0%} (below {SURE_PROBABILITY:.0%}) · "
        "bars: expected share, 95 % band"
    )
    layout = {
        **CHART_LAYOUT,
        "title": {"text": sure, "font": {"size": 12}, "x": 0, "xanchor": "left", "y": 0.98},
        "margin": {"l": 128, "r": 16, "t": 28, "b": 24},
        "showlegend": False,
        "xaxis": {**CHART_LAYOUT["xaxis"], "range": [0, 1], "tickformat": ".0%", "fixedrange": True},
        "yaxis": {
            **CHART_LAYOUT["yaxis"],
            "autorange": "reversed",
            "fixedrange": True,
            "tickvals": list(EMOTIONS),
            "ticktext": labels,
        },
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
    # Whole seconds since the epoch (UTC), as numbers to place the bars by.
    seconds = pd.DatetimeIndex(dominant.index).to_numpy(dtype="datetime64[s]").astype(np.int64)
    return _strip(tuple(seconds.tolist()), tuple(dominant.tolist()), start.timestamp(), end.timestamp())


@lru_cache(maxsize=STRIPS_KEPT)
def _strip(seconds: tuple[int, ...], emotions: tuple[str, ...], start: float, end: float) -> html.Div:
    """sparkline's strip, drawn once for the same bins and span: the live page draws a class's strips at every
    refresh, and between two bins a student's strip does not change."""
    span = max(end - start, 1.0)
    left = (np.array(seconds, dtype=np.int64) - start) / span * 100
    bars = [
        f"transparent {a:.2f}%, {EMOTION_COLORS[emotion]} {a:.2f}% {b:.2f}%, transparent {b:.2f}%"
        for a, b, emotion in _runs(left.tolist(), list(seconds), list(emotions), span)
    ]
    counts = Counter(emotions)
    style = {
        "height": f"{SPARKLINE_HEIGHT_PX}px",
        "backgroundColor": ABSENT_COLOR,
        "backgroundImage": f"linear-gradient(to right, {', '.join(bars)})" if bars else "none",
    }
    shown = " · ".join(f"{emotion} {count}" for emotion, count in counts.most_common())
    title = f"bins of {BIN_SECONDS} s by emotion: {shown}" if shown else "not seen"
    return html.Div(className="sparkline", title=title, style=style)


def _runs(
    left: list[float], seconds: list[int], emotions: list[str], span: float
) -> Iterator[tuple[float, float, str]]:
    """(left %, right %, emotion) of each run of consecutive bins with the same emotion, one bar per run: a
    class's strips were most of a refresh's answer when every bin was a bar of its own, and a student's
    emotion mostly stays for minutes. A bar ends a tenth of a bin short, so runs stay visibly apart."""
    width = BIN_SECONDS * 0.9 / span * 100
    run: tuple[float, float, int, str] | None = None  # (first bin's left %, last bin's left %, its second, emotion)
    for a, second, emotion in zip(left, seconds, emotions, strict=True):
        if run is not None and emotion == run[3] and second - run[2] == BIN_SECONDS:
            run = (run[0], a, second, emotion)
            continue
        if run is not None:
            yield run[0], run[1] + width, run[3]
        run = (a, a, second, emotion)
    if run is not None:
        yield run[0], run[1] + width, run[3]


def _times(times: pd.Index) -> list[str]:
    """UTC times as the viewer's wall-clock times (dashboard.formatting.to_local), to the second, as plain
    strings: the live page sends its chart's changes as a dash.Patch of single values, which Plotly's packed
    arrays (what it makes of numpy ones) cannot take, and a string is also shorter than a time to the ns."""
    written: list[str] = np.datetime_as_string(to_local(times).to_numpy(), unit="s").tolist()
    return written


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
