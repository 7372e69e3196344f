"""CSV injection (issue 12, item 5): names a teacher or OCR gave come out of every CSV ClassPulse writes (the
export, the report's three files, the dashboard's two downloads) as text a spreadsheet shows, never runs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.csv_file import spreadsheet_safe
from dashboard.pages.report import rows_download, students_download
from db.migrate import upgrade
from tests.cli import run_module
from tests.test_timeline import HAPPY, record

# The names, and a tab and a carriage return before a formula.
HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3+cmd|x", "@SUM(1,2)", "=cmd|'/C calc'!A0"]
HOSTILE += ["\t=1+1", "\r=1+1"]
STUDENTS = [f"tile-{index}" for index in range(len(HOSTILE))]


def test_cells_a_spreadsheet_would_evaluate_become_text_and_numbers_stay_numbers() -> None:
    table = pd.DataFrame({"name": [*HOSTILE, "Ada", "-12.5", "+3e-4", "", None], "x": range(len(HOSTILE) + 5)})
    safe = spreadsheet_safe(table)
    assert list(safe["name"]) == [f"'{name}" for name in HOSTILE] + ["Ada", "-12.5", "+3e-4", "", None]
    assert list(safe["x"]) == list(table["x"])
    assert spreadsheet_safe(safe).equals(safe)  # applying it again changes nothing


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """Session 'maths': one student per hostile name, renamed by `python -m db students rename`."""
    url = f"sqlite:///{tmp_path / 'class.db'}"
    migrated = upgrade(url)
    record(migrated, "maths", [(seconds, dict.fromkeys(STUDENTS, HAPPY)) for seconds in range(0, 30, 2)])
    for key, name in zip(STUDENTS, HOSTILE, strict=True):
        renamed = run_module("db", "students", "rename", "--db", url, "--session", "maths", "--", key, name)
        assert renamed.returncode == 0, renamed.stderr
    return migrated


def names_in(text: str) -> set[str]:
    return {row["name"] for row in csv.DictReader(io.StringIO(text))}


def assert_safe(names: set[str]) -> None:
    # rename keeps a name as given, stripped of surrounding blanks: the tab and CR ones lose them there.
    expected = {f"'{name.strip()}" for name in HOSTILE}
    assert names == expected, names


def test_the_export_and_the_reports_files_hold_the_names_as_text(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    exported = run_module("analytics", "export", "--db", url, "--session", "maths", "--out", str(tmp_path / "rows.csv"))
    assert exported.returncode == 0, exported.stderr
    assert_safe(names_in((tmp_path / "rows.csv").read_text()))
    report = run_module("analytics", "report", "--db", url, "--session", "maths", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert_safe(names_in((tmp_path / "report" / "students.csv").read_text()))


def test_the_dashboards_downloads_hold_the_names_as_text(engine: Engine) -> None:
    assert_safe(names_in(rows_download(engine, "maths")["content"]))
    assert_safe(names_in(students_download(engine, "maths")["content"]))
