"""Test helper: runs the project's command-line entry points as real subprocesses, checks their errors,
and reads back the SQLite files they wrote."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from db.engine import connect

REPO = Path(__file__).resolve().parents[1]


def run_module(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS...` from the repository root, output captured as text."""
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit code 2 and exactly one line on stderr (log lines of libraries aside) that names `words`."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def sqlite_rows(db: Path, sql: str) -> list[tuple]:
    """Every row `sql` (a test's own fixed query) returns from the SQLite file `db`."""
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def count_rows(db: Path, table: str) -> int:
    return sqlite_rows(db, f"SELECT count(*) FROM {table}")[0][0]


def copy_sqlite(source: Path, target: Path) -> None:
    """A copy of the SQLite file `source` at `target`, through SQLite's backup API (whole, whatever its journal
    holds): a test's own copy of a database a module built once costs a file copy, not recording it again."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    original.close()
    copy.close()


@contextmanager
def connected_copy(source: Path, target: Path) -> Iterator[Engine]:
    """An engine on a copy of the SQLite file `source` at `target` (copy_sqlite), disposed of afterwards: the
    fixture of a test that changes the database a module built once."""
    copy_sqlite(source, target)
    engine = connect(f"sqlite:///{target}")
    yield engine
    engine.dispose()
