"""What changed between two answers of a callback, as a dash.Patch: the live page sends a browser only the parts
of its page that differ from the page it shows (a card's badge, the chart's newest bin), not the whole page again
at every refresh. Works on what Dash sends: components, Plotly figures, dicts, lists and plain values, compared in
the form the browser holds them (to_plotly_json)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dash import Patch, no_update
from dash.development.base_component import Component
from plotly.basedatatypes import BaseFigure

# A list of plain values (a chart's times or shares) is compared against itself moved left by up to this many
# places: a chart over a sliding window loses its oldest bins as the newest arrive.
MAX_SHIFT = 6

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class _Change:
    kind: str  # "set", "delete" or "extend"
    at: Path
    value: Any = None


def patch_for(old: Any, new: Any) -> Any:
    """`new` as an answer to a browser that shows `old`: no_update when they are alike, else a Patch turning
    `old` into `new`, or `new` itself when all of it changed."""
    changes: list[_Change] = []
    _compare(old, new, (), changes)
    if not changes:
        return no_update
    if any(change.kind == "set" and not change.at for change in changes):
        return new
    patch = Patch()
    for change in changes:
        if not change.at:  # newcomers at the end of the whole list
            patch.extend(change.value)
            continue
        node = patch
        for key in change.at[:-1]:
            node = node[key]
        last = change.at[-1]
        if change.kind == "set":
            node[last] = change.value
        elif change.kind == "delete":
            del node[last]
        else:
            node[last].extend(change.value)
    return patch


def _plain(value: Any) -> Any:
    """`value` as Dash sends it, one level deep: a figure as its dict, arrays as lists."""
    if isinstance(value, BaseFigure):
        # Its traces and layout as given, not to_plotly_json's deep copy (dashboard.figures builds them from
        # plain lists, which that call sends as they are).
        return {"data": value._data, "layout": value._layout}
    if isinstance(value, pd.Index):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return pd.DatetimeIndex(value).tolist() if value.dtype.kind == "M" else value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def _compare(old: Any, new: Any, at: Path, changes: list[_Change]) -> None:
    if old is new:
        return
    if isinstance(old, Component) and isinstance(new, Component):
        if type(old) is not type(new):
            changes.append(_Change("set", at, new))
        else:
            _compare(_props(old), _props(new), (*at, "props"), changes)
        return
    old, new = _plain(old), _plain(new)
    if type(old) is type(new) and isinstance(old, dict | list) and _equal(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("type") != new.get("type") or old.get("namespace") != new.get("namespace"):
            changes.append(_Change("set", at, new))
            return
        changes.extend(_Change("delete", (*at, key)) for key in old.keys() - new.keys())
        for key, value in new.items():
            if key in old:
                _compare(old[key], value, (*at, key), changes)
            else:
                changes.append(_Change("set", (*at, key), value))
    elif isinstance(old, list) and isinstance(new, list):
        _compare_lists(old, new, at, changes)
    elif not _same(old, new):
        changes.append(_Change("set", at, new))


def _props(component: Component) -> dict[str, Any]:
    """The props a component was given, as to_plotly_json sends them: its attributes, less the class's own
    bookkeeping (a to_plotly_json per component of a class's cards cost more than the refresh's reads)."""
    return {name: value for name, value in vars(component).items() if not name.startswith(("_", "available_"))}


def _compare_lists(old: list[Any], new: list[Any], at: Path, changes: list[_Change]) -> None:
    if any(isinstance(item, dict | list | Component) for item in (*old[:1], *new[:1])):
        # Cards, traces: one by one where they line up, the newcomers at the end in one go.
        if len(new) < len(old):
            changes.append(_Change("set", at, new))
            return
        for index, (was, now) in enumerate(zip(old, new, strict=False)):
            _compare(was, now, (*at, index), changes)
        if len(new) > len(old):
            changes.append(_Change("extend", at, new[len(old) :]))
        return
    # Worth a patch only while it is much shorter than the list.
    best: list[_Change] | None = None
    limit = len(new) // 2
    for shift in range(min(MAX_SHIFT, len(old)) + 1):
        kept = len(old) - shift
        if kept > len(new) or (kept and not _same(old[shift], new[0])):
            continue  # a shift that does not line the oldest values up
        moved = [_Change("delete", (*at, 0)) for _ in range(shift)]
        for i in range(kept):
            if not _same(old[shift + i], new[i]):
                moved.append(_Change("set", (*at, i), new[i]))
                if len(moved) > limit:
                    break
        if len(new) > kept:
            moved.append(_Change("extend", at, new[kept:]))
        if best is None or len(moved) < len(best):
            best = moved
    if best is None or len(best) > limit:
        changes.append(_Change("set", at, new))
    else:
        changes.extend(best)


def _equal(old: dict[str, Any] | list[Any], new: dict[str, Any] | list[Any]) -> bool:
    """Whether two plain trees are alike by Python's own comparison (a figure's template, a trace's times):
    much faster than walking them, and only a tree holding components or NaN needs walking after it."""
    try:
        return bool(old == new)
    except ValueError:  # an array inside: its truth is ambiguous
        return False


def _number(value: Any) -> bool:
    """An int or float, not a bool (True and 1 are sent differently)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True  # both sent as null
    if type(a) is not type(b) and not (_number(a) and _number(b)):
        return False
    return bool(a == b)
