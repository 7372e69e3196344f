"""The report page's own charts: engagement per student with camera-off and away as states of their own (never
drawn as an engagement of 0), one student's timeline, and the legend that says what their colours mean."""

from __future__ import annotations

from collections import Counter
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html
from plotly.subplots import make_subplots

from analytics.flags import Flag
from analytics.live import engagement_config
from analytics.report import StudentTimeline
from dashboard.figures import message_figure, time_ticks
from dashboard.formatting import local_time, to_local
from dashboard.theme import CHART_LAYOUT, EMOTION_COLORS, ENGAGEMENT_LINE_COLOR, ENGAGEMENT_SCALE
from vocabulary.emotions import EMOTIONS

# The states without a score: light, and apart from Cividis' blues, greys and yellows. Not in the call stays
# blank, like the time before a student joined.
STATE_COLORS = {"camera_off": "#D9C2E0", "empty": "#F4B6A6"}
STATE_LABELS = {"face": "on camera", "camera_off": "camera off", "empty": "seat empty", "absent": "not in the call"}
FLAG_COLOR = "#D55E00"
ON_CAMERA_COLOR = "#4C6A92"  # no emotion's colour: the strip below it is coloured by emotion
HEATMAP_ROW_PX = 22
STUDENT_TIMELINE_HEIGHT_PX = 420


def state_heatmap(states: pd.DataFrame | None, bin_seconds: int | None = None) -> go.Figure:
    """Students (rows, in order of first appearance) by time bin: engagement on the Cividis scale where their
    face showed, the STATE_COLORS where the camera was off or the seat empty, blank where they were not in the
    call. `states`: analytics.timeline.state_bins, in bins of `bin_seconds` (None: the configured bins)."""
    if states is None or states.empty:
        return message_figure("No engagement to show.")
    step = pd.Timedelta(seconds=bin_seconds or engagement_config().score.bin_seconds)
    labels = states.groupby("student_id", sort=True).agg(student=("student", "first"), name=("name", "first"))
    # Every bin from the first to the last, a bin nobody was in left blank: each cell then spans its own bin,
    # from its start to the next's (x gives the cells' edges), however short the session.
    bins = pd.date_range(states["bin"].min(), states["bin"].max(), freq=step)
    score = states.pivot(index="student_id", columns="bin", values="score").reindex(index=labels.index, columns=bins)
    state = states.pivot(index="student_id", columns="bin", values="state").reindex(index=labels.index, columns=bins)
    names = _row_labels(labels["student"], labels["name"])
    x = to_local(bins.append(pd.DatetimeIndex([bins[-1] + step])))
    states_shown = state.to_numpy()
    axes = {"x": x, "y": names}
    traces = [
        {
            "type": "heatmap",
            **axes,
            "z": np.where(states_shown == "face", score.to_numpy(dtype=float), np.nan),
            "zmin": 0,
            "zmax": 1,
            # As (position, colour) pairs: unchecked, Plotly reads a bare list of colours as no scale at all.
            "colorscale": [[step / (len(ENGAGEMENT_SCALE) - 1), color] for step, color in enumerate(ENGAGEMENT_SCALE)],
            "colorbar": {"title": {"text": "engagement"}, "thickness": 12},
            "hovertemplate": "%{y} %{x|%H:%M:%S}: engagement %{z:.2f}<extra></extra>",
            "name": "engagement",
        }
    ]
    for key, color in STATE_COLORS.items():
        traces.append(
            {
                "type": "heatmap",
                **axes,
                "z": np.where(states_shown == key, 1.0, np.nan),
                "colorscale": [[0, color], [1, color]],
                "showscale": False,
                "hovertemplate": f"%{{y}} %{{x|%H:%M:%S}}: {STATE_LABELS[key]}<extra></extra>",
                "name": STATE_LABELS[key],
            }
        )
    layout = {
        **CHART_LAYOUT,
        "height": max(240, HEATMAP_ROW_PX * len(names) + 80),
        # The date under the first time label.
        "xaxis": {**CHART_LAYOUT["xaxis"], "automargin": True, "type": "date", **time_ticks(x[0], x[-1])},
        # Room for the longest name: a teacher may type a long one.
        "yaxis": {**CHART_LAYOUT["yaxis"], "autorange": "reversed", "type": "category", "automargin": True},
    }
    # Written out in full, not checked property by property: Plotly's checks of three student-by-bin grids
    # cost more than building them (dashboard.figures does the same for the live page).
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def state_legend(with_engagement: bool = True) -> html.Div:
    """What the report's colours mean, printed with it (a hover tooltip does not print)."""
    steps = [ENGAGEMENT_SCALE[0], ENGAGEMENT_SCALE[len(ENGAGEMENT_SCALE) // 2], ENGAGEMENT_SCALE[-1]]
    items = (
        [
            html.Span("engagement 0", className="legend-end"),
            html.Span(className="legend-scale", style={"background": f"linear-gradient(to right, {', '.join(steps)})"}),
            html.Span("1 (face showing)", className="legend-end"),
        ]
        if with_engagement
        else []
    )
    for key, color in STATE_COLORS.items():
        items.append(html.Span([html.Span(className="legend-swatch", style={"background": color}), STATE_LABELS[key]]))
    items.append(
        html.Span([html.Span(className="legend-swatch legend-blank"), STATE_LABELS["absent"]], className="legend-end")
    )
    return html.Div(items, className="legend")


def student_timeline_figure(timeline: StudentTimeline) -> go.Figure:
    """Three strips over one time axis: where the student was (the states), how attentive and engaged they
    were while their face showed, and the emotion shown most per bin, its bar as tall as the model was sure of
    it. Their flags are shaded across all three, named at the top."""
    states, emotions = timeline.states, timeline.emotions
    if states.empty:
        return message_figure("This student has no rows.")
    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.16, 0.42, 0.42],
        subplot_titles=("Where", "Attention and engagement (face showing)", "Emotion shown most (bar: how sure)"),
    )
    x = to_local(states["bin"])
    # A bar is drawn centred on its x: centred on the middle of its bin, it covers the bin.
    half = pd.Timedelta(seconds=timeline.bin_seconds / 2)
    width_ms = timeline.bin_seconds * 1000 * 0.95
    for key, label in STATE_LABELS.items():
        if key == "absent":
            continue
        shown = (states["state"] == key).to_numpy()
        if not shown.any():
            continue
        color = ON_CAMERA_COLOR if key == "face" else STATE_COLORS[key]
        figure.add_trace(
            go.Bar(
                x=x[shown] + half,
                y=np.ones(shown.sum()),
                width=width_ms,
                marker={"color": color},
                name=label,
                legendgroup="where",
                hovertemplate=f"%{{x|%H:%M:%S}}: {label}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for column, label, dash in (("attentive", "attentive share", "solid"), ("score", "engagement", "dot")):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=states[column].to_numpy(dtype=float),
                mode="lines",
                connectgaps=False,
                name=label,
                line={"color": ENGAGEMENT_LINE_COLOR, "dash": dash, "width": 2},
                hovertemplate="%{y:.2f}",
            ),
            row=2,
            col=1,
        )
    for emotion in EMOTIONS:
        mine = emotions[emotions["emotion"] == emotion]
        if mine.empty:
            continue
        figure.add_trace(
            go.Bar(
                x=to_local(mine["bin"]) + half,
                y=mine["confidence"].to_numpy(dtype=float),
                width=width_ms,
                marker={"color": EMOTION_COLORS[emotion]},
                name=emotion,
                customdata=mine["share"].to_numpy(dtype=float),
                hovertemplate=f"%{{x|%H:%M:%S}}: {emotion} on %{{customdata:.0%}} of faces, "
                "the model %{y:.0%} sure<extra></extra>",
            ),
            row=3,
            col=1,
        )
    # The time labels are the bottom strip's: it spans the session even without a bar of its own.
    figure.add_trace(
        go.Scatter(x=[x[0], x[-1]], y=[None, None], mode="lines", showlegend=False, hoverinfo="skip"), row=3, col=1
    )
    for row, empty, note in (
        (2, states["score"].isna().all(), "Their face never showed: nothing to score."),
        (3, emotions.empty, "No emotion read (no face, or an attention-only capture)."),
    ):
        if empty:
            # Placed on the page, in the middle of that strip: data coordinates would stretch the time axis to
            # reach them, and the dashboard's Plotly reads no "domain" references.
            low, high = figure.layout[f"yaxis{row}"].domain
            figure.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0.5, y=(low + high) / 2)
    end = states["bin"].max() + pd.Timedelta(seconds=timeline.bin_seconds)
    for flag in timeline.flags:
        figure.add_vrect(
            x0=to_local(pd.DatetimeIndex([flag.start]))[0],
            x1=to_local(pd.DatetimeIndex([flag.end if flag.end is not None else end]))[0],
            # An outline and the lightest fill: a flag spans the states under it, which must stay readable.
            fillcolor=FLAG_COLOR,
            opacity=0.06,
            line={"color": FLAG_COLOR, "width": 1, "dash": "dot"},
            annotation_text=f"⚑ {flag.cause}",
            annotation_position="top left",
            annotation_font_size=11,
        )
    figure.update_layout(
        CHART_LAYOUT,
        height=STUDENT_TIMELINE_HEIGHT_PX,
        barmode="overlay",
        bargap=0,
        legend={"orientation": "h", "y": -0.12, "yanchor": "top", "x": 0},
        margin={"l": 56, "r": 16, "t": 40, "b": 40},
    )
    figure.update_yaxes(visible=False, fixedrange=True, row=1, col=1)
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%", fixedrange=True, row=2, col=1)
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%", fixedrange=True, row=3, col=1)
    until = to_local(pd.DatetimeIndex([end]))[0]
    figure.update_xaxes(type="date", gridcolor="#EBF0F8", range=[x[0], until], **time_ticks(x[0], until))
    return figure


def flag_sentence(flag: Flag) -> str:
    """A flag in words, in the viewer's time zone: 'left the call 09:01:30–09:03:00: absent for more than 60 s'."""
    until = "still on at the end" if flag.end is None else local_time(flag.end)
    return f"{flag.cause} {local_time(flag.start)}–{until}: {flag.reason}"


def _row_labels(keys: pd.Series, names: pd.Series) -> list[str]:
    shown = [name if isinstance(name, str) else key for key, name in zip(keys, names, strict=True)]
    # Rows are categories: two students of one name (a rename, two tiles reading alike) would share one row.
    shared = {name for name, count in Counter(shown).items() if count > 1}
    # Plotly reads a few HTML tags in axis labels (<b>, <a href>): a name is shown as typed, never as markup.
    return [escape(f"{name} ({key})" if name in shared else name) for key, name in zip(keys, shown, strict=True)]
