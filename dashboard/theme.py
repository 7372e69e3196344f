"""The dashboard's colours: one colour per emotion, used by every chart and badge, plus the chart look.

Emotion colours come from the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies); neutral is grey so the feelings stand out against it. Engagement reads on Cividis, a
scale made to be read the same with and without colour-vision deficiencies (dark blue 0 to yellow 1).
"""

from __future__ import annotations

from typing import TypedDict

from plotly.colors import sample_colorscale, sequential

EMOTION_COLORS: dict[str, str] = {
    "angry": "#D55E00",  # vermillion
    "disgust": "#009E73",  # bluish green
    "fear": "#CC79A7",  # reddish purple
    "happy": "#E69F00",  # orange
    "sad": "#0072B2",  # blue
    "surprise": "#56B4E9",  # sky blue
    "neutral": "#999999",  # grey
}
# Text on an emotion-coloured badge: black where the fill is light, white where it is dark.
EMOTION_TEXT_COLORS: dict[str, str] = {
    "angry": "#FFFFFF",
    "disgust": "#FFFFFF",
    "fear": "#000000",
    "happy": "#000000",
    "sad": "#FFFFFF",
    "surprise": "#000000",
    "neutral": "#000000",
}
ENGAGEMENT_SCALE: list[str] = sequential.Cividis
ENGAGEMENT_LINE_COLOR = "#000000"  # drawn over the emotion areas, so none of their colours
ABSENT_COLOR = "#E5E5E5"  # a student not seen lately
UNSURE_COLOR = "#222222"  # the share of faces the model was unsure about: dotted, over the emotion areas
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
GRID_COLOR = "#EBF0F8"


class AxisLook(TypedDict):
    gridcolor: str
    linecolor: str
    zeroline: bool


class ChartLayout(TypedDict):
    """The look every chart starts from; typed per key, so a chart can spread an axis's look into its own."""

    template: str
    paper_bgcolor: str
    plot_bgcolor: str
    font: dict[str, str | int]
    margin: dict[str, int]
    legend: dict[str, str | int | float]
    xaxis: AxisLook
    yaxis: AxisLook


# The "plotly_white" look spelled out: a named template is deep-copied into every figure, which costs
# more than the rest of a live refresh's charts together.
CHART_LAYOUT: ChartLayout = {
    "template": "none",
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "font": {"family": FONT_FAMILY, "size": 13, "color": "#2A3F5F"},
    "margin": {"l": 56, "r": 16, "t": 40, "b": 32},
    "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
    "xaxis": {"gridcolor": GRID_COLOR, "linecolor": GRID_COLOR, "zeroline": False},
    "yaxis": {"gridcolor": GRID_COLOR, "linecolor": GRID_COLOR, "zeroline": False},
}


# The scale sampled once, in steps of 0.01: sampling it per card cost more than the rest of a card.
_ENGAGEMENT_STEPS: list[str] = sample_colorscale(ENGAGEMENT_SCALE, [step / 100 for step in range(101)])


def engagement_color(score: float) -> str:
    """The ENGAGEMENT_SCALE colour of a score in [0, 1], to the nearest 0.01."""
    return _ENGAGEMENT_STEPS[round(min(max(score, 0.0), 1.0) * 100)]


def engagement_text_color(score: float) -> str:
    """Text on an engagement colour: Cividis is dark below the middle, light above it."""
    return "#000000" if score >= 0.5 else "#FFFFFF"
