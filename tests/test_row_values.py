"""dashboard.row_values, on values as pandas gives a table's rows (itertuples), and dashboard.data_attributes on
a component as Dash serialises it: a page's row reads a missing name, time or score as missing, and a value of
another type fails by name instead of being drawn."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from dash import html

from analytics.attendance import attendance_table
from analytics.school import grouping_columns
from dashboard import row_values
from dashboard.data_attributes import with_data
from dashboard.pages.report import Attendance
from dashboard.pages.school import TrendLine

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_tables_rows_read_as_their_types_with_gaps_as_missing() -> None:
    table = pd.DataFrame(
        {
            "student": ["tile-0", "tile-1"],
            "name": ["Ada", np.nan],
            "seen": [pd.Timestamp(T0), pd.NaT],
            "seconds": [1.5, np.nan],
            "count": np.array([3, 0], dtype="int64"),
        }
    )
    first, second = table.itertuples(index=False)
    assert (row_values.key(first.student), row_values.text(first.name), row_values.text(second.name)) == (
        "tile-0",
        "Ada",
        None,
    )
    assert row_values.optional_moment(first.seen) == pd.Timestamp(T0)
    assert row_values.optional_moment(second.seen) is None
    assert row_values.number(first.seconds) == 1.5 and math.isnan(row_values.number(second.seconds))
    assert (row_values.count(first.count), row_values.count(np.int64(7))) == (3, 7)


@pytest.mark.parametrize(
    ("read", "value"),
    [
        (row_values.key, None),
        (row_values.text, 3),
        (row_values.number, "1.5"),
        (row_values.number, True),
        (row_values.count, 1.0),
        (row_values.moment, pd.NaT),
        (row_values.optional_moment, "2026-03-02"),
        (row_values.spells, "start/end"),
    ],
)
def test_a_value_of_another_type_fails_by_name(read: object, value: object) -> None:
    assert callable(read)
    with pytest.raises(TypeError):
        read(value)


def test_attendance_rows_read_a_student_never_present_as_without_times() -> None:
    ts = [T0 + pd.Timedelta(seconds=i) for i in range(4)]
    signals = pd.DataFrame(
        {
            "student_id": [1, 1, 1, 1, 2],
            "student": ["tile-0"] * 4 + ["tile-1"],
            "name": ["Ada"] * 4 + [None],
            "ts": [*ts, ts[0]],
            "seconds": [1.0] * 5,
            "presence": ["face", "empty", "face", "camera_off", "empty"],
        }
    )
    present, never = Attendance.rows(attendance_table(signals))
    assert (present.student, present.name, present.joined, present.times_away) == ("tile-0", "Ada", ts[0], 1)
    assert present.away == [(ts[1], ts[2])]
    assert (never.name, never.joined, never.left, never.away) == (None, None, None, [])


def test_data_attributes_are_sent_with_the_component_and_nothing_else_is_set() -> None:
    row = with_data(html.Tr("Ada", className="row"), {"data-student": "tile-0"})
    # As Dash's constructor sends one given as a keyword (the form the type check cannot take).
    assert row.to_plotly_json() == html.Tr("Ada", className="row", **{"data-student": "tile-0"}).to_plotly_json()
    assert row.to_plotly_json()["props"] == {"children": "Ada", "className": "row", "data-student": "tile-0"}
    with pytest.raises(ValueError, match="not a data"):
        with_data(html.Tr(), {"title": "x"})


def test_trend_rows_per_class_read_the_class_a_python_keyword_names() -> None:
    table = pd.DataFrame(
        {
            "week": [pd.Timestamp("2026-11-30", tz="UTC")],
            "class": ["Maths 7B"],
            "teacher": ["alice"],
            "sessions": [2],
            "scored": [1],
            "engagement": [0.7],
            "attendance": [np.nan],
            "camera_off": [0.25],
        }
    )
    (line,) = TrendLine.rows(table, grouping_columns("class"))
    assert (line.week, line.groups, line.sessions, line.scored) == (table["week"][0], ["Maths 7B", "alice"], 2, 1)
    assert line.engagement == 0.7 and math.isnan(line.attendance)
