"""Shared fixtures: a virtual X screen (Xvfb) and the FER2013 data file."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy
import sqlalchemy.pool

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


POSTGRES_URL_VARIABLE = "CLASSPULSE_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test.

    The server is the one `scripts/postgres.sh run` (make test) starts and names in CLASSPULSE_TEST_POSTGRES_URL;
    without it the test skips, but fails under CI so CI cannot skip silently.
    """
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        reason = f"{POSTGRES_URL_VARIABLE} is not set (make test starts PostgreSQL via scripts/postgres.sh)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must not skip this test")
        pytest.skip(reason)
    name = f"classpulse_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sqlalchemy.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        # FORCE: a test that failed may leave a capture process or a pooled connection attached.
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
