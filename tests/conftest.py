"""Shared fixtures: a virtual X screen (Xvfb) and the FER2013 data file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.galleries import FER_CSV
from tests.screen import ScreenError, virtual_screen


def require_tool(name: str) -> str:
    """The path of program `name`; skips the test when it is missing, but fails under CI so CI cannot skip silently."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (scripts/setup.sh test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must not skip this test")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def needs_tool() -> Callable[[str], str]:
    """require_tool, for tests that need a program such as feh."""
    return require_tool


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A 1920x1080 virtual X screen; DISPLAY points at it until the session ends. Yields e.g. ':3'."""
    require_tool("Xvfb")
    try:
        with virtual_screen() as display:
            yield display
    except ScreenError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def fer_csv() -> Path:
    """The FER2013 CSV shared by this machine's checkouts; skips when it is absent."""
    if not FER_CSV.is_file():
        pytest.skip(f"FER2013 data not found at {FER_CSV}")
    return FER_CSV
