"""What capture tells a person while it runs, and its --help: the real command on a pseudo-terminal and on
pipes, the real configuration reaching the run."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import cv2
import pytest

from capture.__main__ import build_parser
from tests.cli import REPO, run_module, sqlite_rows
from tests.galleries import astronaut, compose_gallery, lfw_faces
from tests.screen import showing_fullscreen

TERMINAL_COLUMNS = 120
RUN_SECONDS = 240


def on_terminal(*args: str) -> tuple[int, str]:
    """`python -m capture ARGS` with stdin, stdout and stderr on a pseudo-terminal; its exit code and all it wrote."""
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, TERMINAL_COLUMNS, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "capture", *args], cwd=REPO, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + RUN_SECONDS
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command ended and closed its side
                break
            if not chunk:
                break
            written += chunk
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        process.kill()
        os.close(master)
    return code, written.decode(errors="replace")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three frames of the astronaut photo."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        cv2.imwrite(str(frames / f"{index}.png"), astronaut())
    return frames


def test_a_file_shows_frames_done_of_total_on_a_terminal(folder: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    code, written = on_terminal("--source", str(folder), "--db", db, "--session", "bar", "--attention-only")
    assert code == 0, written
    # tqdm's bar: the session, frames done of the folder's 3, the rate and the faces of the last frame.
    assert re.search(r"bar: 100%.*3/3 \[.*frame.*1 faces", written), written
    assert "session=bar frames=3 faces=3" in written


def test_a_file_shows_no_progress_when_not_on_a_terminal(folder: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    result = run_module("capture", "--source", str(folder), "--db", db, "--session", "piped", "--attention-only")
    assert result.returncode == 0, result.stderr
    assert "3/3" not in result.stderr and "\r" not in result.stderr and "frame/s" not in result.stderr
    assert result.stdout.splitlines()[-1].startswith("session=piped frames=3 faces=3")


def test_a_live_source_prints_a_status_line_on_a_terminal(xvfb_display: str, needs_tool, tmp_path: Path) -> None:
    needs_tool("feh")
    gallery = compose_gallery(lfw_faces(9, start=60), 3, 3, seed=3)
    # Every frame's line, so that three frames at 5/s give three of them.
    school = tmp_path / "school.toml"
    school.write_text("[capture]\nstatus_seconds = 0.001\n")
    db = f"sqlite:///{tmp_path / 'class.db'}"
    with showing_fullscreen(gallery.image, tmp_path):
        code, written = on_terminal(
            "--db", db, "--session", "live", "--max-frames", "3", "--fps", "5", "--config", str(school)
        )
    assert code == 0, written
    lines = re.findall(r"frame (\d+): (\d+) tiles, (\d+) faces, (\d+) names, \d+ ms/frame \(grid layout\)", written)
    assert [int(frame) for frame, *_ in lines] == [1, 2, 3], written
    assert all(int(tiles) == 9 and int(faces) == 9 for _, tiles, faces, _ in lines), written


def test_help_reads_as_a_manual(tmp_path: Path) -> None:
    result = run_module("capture", "--help")
    assert result.returncode == 0, result.stderr
    assert "`" not in result.stdout
    assert result.stdout.startswith("usage: python -m capture [--source SRC]")
    for group in ("source:", "identity:", "where rows go:", "tuning:", "examples:"):
        assert f"\n{group}\n" in result.stdout, group
    for action in build_parser()._actions:
        assert action.help and action.help.strip(), action.option_strings


def test_a_schools_file_makes_every_capture_attention_only(tmp_path: Path) -> None:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut())
    school = tmp_path / "school.toml"
    school.write_text("[capture]\nattention_only = true\n")
    db = tmp_path / "class.db"
    # A model that does not exist: the run succeeds only if the file's attention_only keeps it unloaded.
    args = ("--source", str(image), "--db", f"sqlite:///{db}", "--model", str(tmp_path / "no.tflite"))
    result = run_module("capture", *args, "--config", str(school))
    assert result.returncode == 0, result.stderr
    assert sqlite_rows(db, "SELECT count(*), count(emotion) FROM observations") == [(1, 0)]
