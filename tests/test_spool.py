"""The capture spool keeps each session's class (`capture --class`), so that a session of an earlier run,
reopened on the server from the spool by a later run, is opened in its own class; a spool file of the first
layout, frames still waiting in it, is brought up to date when opened and loses none of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from capture.spool import SPOOL_VERSION, Spool, SpooledSession, SpoolError

SERVER = "https://school.example"
TOKEN = "0" * 64

# The spool's tables as the first version wrote them (no class column, no user_version).
FIRST_LAYOUT = """
CREATE TABLE spooled_sessions (
    server TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL, token TEXT NOT NULL,
    confirmed INTEGER NOT NULL, shift INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (server, name)
);
CREATE TABLE spooled_frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, server TEXT NOT NULL, session TEXT NOT NULL,
    frame_index INTEGER NOT NULL, payload TEXT NOT NULL
);
"""


def class_of(spool: Spool, name: str) -> str | None:
    session = spool.session(SERVER, name)
    assert session is not None
    return session.class_of


def test_a_session_reopened_from_the_spool_keeps_its_class(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    assert spool.start_session(SERVER, TOKEN, "maths 09-07", "screen", None, class_of="7B") == 0
    spool.add(SERVER, "maths 09-07", 0, "{}")
    spool.start_session(SERVER, TOKEN, "art 09-07", "screen", None)
    spool.close()

    # A later run (another session, maybe another class) finds the earlier session's class with its frames.
    again = Spool(path)
    oldest = again.oldest(SERVER, TOKEN, 10)
    assert oldest is not None
    assert (oldest[0].name, oldest[0].class_of) == ("maths 09-07", "7B")
    assert again.session(SERVER, "art 09-07") == SpooledSession("art 09-07", "screen", None)
    # Continuing the session without --class keeps its class; with another one, takes that.
    again.start_session(SERVER, TOKEN, "maths 09-07", "screen", None)
    assert class_of(again, "maths 09-07") == "7B"
    again.start_session(SERVER, TOKEN, "maths 09-07", "screen", None, class_of="7B set 2")
    assert class_of(again, "maths 09-07") == "7B set 2"
    again.close()


def test_a_spool_of_the_first_layout_is_upgraded_with_its_waiting_frames(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as old:
        old.executescript(FIRST_LAYOUT)
        old.execute("INSERT INTO spooled_sessions VALUES (?, 'history', 'screen', ?, 1, 0)", (SERVER, TOKEN))
        old.executemany(
            "INSERT INTO spooled_frames (server, session, frame_index, payload) VALUES (?, 'history', ?, '{}')",
            [(SERVER, index) for index in range(3)],
        )
    old.close()

    spool = Spool(path)
    assert spool.waiting(SERVER, TOKEN) == {"history": 3}
    oldest = spool.oldest(SERVER, TOKEN, 10)
    assert oldest is not None
    assert (oldest[0].class_of, [frame.frame_index for frame in oldest[1]]) == (None, [0, 1, 2])
    # The waiting session continues where it was, and can now be given a class.
    assert spool.start_session(SERVER, TOKEN, "history", "screen", None, class_of="9C") == 3
    assert class_of(spool, "history") == "9C"
    spool.close()
    with sqlite3.connect(path) as upgraded:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == SPOOL_VERSION
    upgraded.close()


def test_a_spool_from_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as newer:
        newer.execute(f"PRAGMA user_version = {SPOOL_VERSION + 1}")
    newer.close()
    with pytest.raises(SpoolError, match=r"^the capture spool .* was written by a newer ClassPulse") as refused:
        Spool(path)
    assert "\n" not in str(refused.value)
