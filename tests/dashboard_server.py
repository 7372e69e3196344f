"""Test helper: `python -m dashboard` as a real server on a free local port, used once it answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli import REPO

SERVER_START_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_dashboard(url: str, data_dir: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The dashboard on database `url`, its key and its output (dashboard.log) in `data_dir`: yields its base URL
    and process once it answers; stopped afterwards unless the test stopped it."""
    port = free_port()
    log = data_dir / "dashboard.log"
    command = [sys.executable, "-m", "dashboard", "--db", url, "--port", str(port), "--data-dir", str(data_dir)]
    with log.open("w") as output:
        server = subprocess.Popen([*command, *extra], cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, server, log)
        yield base_url, server
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=30)


def _wait_until_serving(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"python -m dashboard exited with {server.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(base_url + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (signed-out visitors get an error status)
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"python -m dashboard did not answer within {SERVER_START_S} s:\n{log.read_text()}")
