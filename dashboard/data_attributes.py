"""HTML data-* attributes on Dash components, which the pages' scripts, print styles and browser tests find rows,
cards and flags by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from dash.development.base_component import Component

Shown = TypeVar("Shown", bound=Component)


def with_data(component: Shown, attributes: Mapping[str, str]) -> Shown:
    """`component` carrying `attributes` ({"data-student": "tile-3"}), as Dash sends them to the browser. A data-*
    name is no Python identifier, and Dash's typed constructors declare no parameter for one, so they are set
    on the built component (Dash sends every data-* attribute the component holds)."""
    for name, value in attributes.items():
        if not name.startswith("data-"):
            raise ValueError(f"{name!r} is not a data-* attribute")
        setattr(component, name, value)
    return component
