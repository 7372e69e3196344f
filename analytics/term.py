"""A class over a term: each roster student (db.classes) across the class's lessons, with every number taken from
that lesson's own report (analytics.report.session_tables), so the class page and each lesson's report agree.

Per lesson and roster student (`term_rows`): whether they attended (present in the gallery at some point: a
face or a camera-off tile), when they joined and left and how long they were in class (attendance.csv), how
long their face showed, their camera-off time, attentive share and mean engagement over the time their face
showed, and their flags (students.csv). A roster student read as two students of one lesson (two tiles with
the same name) has those students' numbers combined as the report combines frames: times added, engagement
and attentive share weighted by face time, joined the earliest, left the latest.

Over the term (`roster_table`): lessons attended of the class's lessons, times added, camera-off share of the
time in class, engagement and attentive share weighted by face time (the same "over the time present" as a
lesson's), flags added.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analytics.csv_file import spreadsheet_safe
from analytics.export import iso_utc
from analytics.flags import Flag
from analytics.report import SessionTables
from db.queries import SessionInfo

# What term_rows needs of one lesson's report, per student key (lesson_students).
LESSON_COLUMNS = [
    "student",
    "joined",
    "left",
    "seconds_in_class",  # attendance.csv's seconds_present: a face or a camera-off tile
    "seconds_face",  # students.csv's seconds_present: the face showing
    "seconds_camera_off",
    "seconds_attentive",
    "attentive_share",
    "engagement",
    "flags",
    "flag_reasons",  # every flag in words, its time in ISO 8601 UTC (students.csv's): for the CSV
    "flag_list",  # the same flags (analytics.flags.Flag), oldest first: for a page to word in the viewer's zone
]
TERM_COLUMNS = [
    "class_student_id",
    "name",
    "session_id",
    "session",
    "started_at",
    "attended",
    "students",  # the lesson's student keys that are this roster student, ", "-separated
    *LESSON_COLUMNS[1:],
]
ROSTER_COLUMNS = [
    "class_student_id",
    "name",
    "lessons",  # the class's lessons
    "attended",  # of them, those the student was in
    "seconds_in_class",
    "seconds_face",
    "seconds_camera_off",
    "camera_off_share",  # of the time in class
    "attentive_share",
    "engagement",
    "flags",
]
_SUMMED = ["seconds_in_class", "seconds_face", "seconds_camera_off", "seconds_attentive", "flags"]


def lesson_students(tables: SessionTables) -> pd.DataFrame:
    """LESSON_COLUMNS of one lesson's report: its student table beside its attendance, by student key."""
    attendance = tables.attendance[["student", "joined", "left", "seconds_present"]].rename(
        columns={"seconds_present": "seconds_in_class"}
    )
    students = tables.students.rename(columns={"seconds_present": "seconds_face"})
    merged = students.merge(attendance, on="student", how="left", validate="one_to_one")
    by_student: dict[str, list[Flag]] = {}
    for flag in tables.flags:
        by_student.setdefault(flag.student, []).append(flag)
    merged["flag_list"] = pd.Series([by_student.get(key, []) for key in merged["student"]], merged.index, object)
    return merged[LESSON_COLUMNS].reset_index(drop=True)


def term_rows(lessons: list[SessionInfo], links: pd.DataFrame, per_lesson: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per roster student and lesson (TERM_COLUMNS), by roster name then lesson start.

    `lessons`: the class's sessions (db.class_reads.class_lessons); `links`: db.class_reads.roster_links;
    `per_lesson`: lesson_students of each lesson's report, by session id."""
    # Plain dicts, not a table filtered per cell: a term is roster x lessons cells, each a few lookups.
    reports = {
        lesson.id: {row["student"]: row for row in per_lesson[lesson.id].to_dict("records")} for lesson in lessons
    }
    keys: dict[tuple[int, int], list[str]] = {}
    for link in links.dropna(subset=["session_id"]).to_dict("records"):
        keys.setdefault((int(link["class_student_id"]), int(link["session_id"])), []).append(str(link["student"]))
    rows: list[dict[str, Any]] = []
    for roster_student in links.drop_duplicates("class_student_id").to_dict("records"):
        for lesson in lessons:
            theirs = keys.get((int(roster_student["class_student_id"]), lesson.id), [])
            seen = [reports[lesson.id][key] for key in theirs if key in reports[lesson.id]]
            rows.append(
                {
                    "class_student_id": roster_student["class_student_id"],
                    "name": roster_student["name"],
                    "session_id": lesson.id,
                    "session": lesson.name,
                    "started_at": pd.Timestamp(lesson.started_at),
                    "students": ", ".join(theirs),
                }
                | _combined(seen)
            )
    return pd.DataFrame(rows, columns=TERM_COLUMNS)


def _combined(seen: list[dict[Any, Any]]) -> dict[str, Any]:
    """One roster student's numbers in one lesson from the report rows of their students there (none, one or
    more; see the module docstring)."""
    if not seen:
        return {
            "attended": False,
            "joined": pd.NaT,
            "left": pd.NaT,
            **{column: 0.0 for column in _SUMMED},
            "flags": 0,
            "attentive_share": None,
            "engagement": None,
            "flag_reasons": "",
            "flag_list": [],
        }
    if len(seen) == 1:
        # The report's own values, untouched: a weighted mean of one row could differ from it in the last digit.
        (row,) = seen
        return {column: row[column] for column in LESSON_COLUMNS[1:]} | {
            "attended": bool(pd.notna(row["joined"])),
            "flags": int(row["flags"]),
        }
    on_camera = sum(float(row["seconds_face"]) for row in seen)
    scored = [row for row in seen if pd.notna(row["engagement"])]
    joined = [row["joined"] for row in seen if pd.notna(row["joined"])]
    left = [row["left"] for row in seen if pd.notna(row["left"])]
    return {
        "attended": bool(joined),
        "joined": min(joined) if joined else pd.NaT,
        "left": max(left) if left else pd.NaT,
        **{column: float(sum(float(row[column]) for row in seen)) for column in _SUMMED},
        "flags": int(sum(int(row["flags"]) for row in seen)),
        "attentive_share": sum(float(row["seconds_attentive"]) for row in seen) / on_camera if on_camera > 0 else None,
        "engagement": (
            sum(float(row["engagement"]) * float(row["seconds_face"]) for row in scored) / on_camera
            if scored and on_camera > 0
            else None
        ),
        "flag_reasons": "; ".join(str(row["flag_reasons"]) for row in seen if row["flag_reasons"]),
        "flag_list": sorted((flag for row in seen for flag in row["flag_list"]), key=lambda flag: flag.start),
    }


def roster_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per roster student over the term (ROSTER_COLUMNS), from term_rows, by name."""
    if rows.empty:
        return pd.DataFrame(columns=ROSTER_COLUMNS)
    timed = rows.assign(
        weighted=rows["engagement"].astype(float) * rows["seconds_face"].astype(float),
        **{column: rows[column].astype(float) for column in _SUMMED},
    )
    table = timed.groupby("class_student_id", sort=False).agg(
        name=("name", "first"),
        lessons=("session_id", "size"),
        attended=("attended", "sum"),
        seconds_in_class=("seconds_in_class", "sum"),
        seconds_face=("seconds_face", "sum"),
        seconds_camera_off=("seconds_camera_off", "sum"),
        seconds_attentive=("seconds_attentive", "sum"),
        weighted=("weighted", lambda values: values.sum(min_count=1)),
        flags=("flags", "sum"),
    )
    face = table["seconds_face"].where(table["seconds_face"] > 0)
    table["camera_off_share"] = table["seconds_camera_off"] / table["seconds_in_class"].where(
        table["seconds_in_class"] > 0
    )
    table["attentive_share"] = table["seconds_attentive"] / face
    table["engagement"] = table["weighted"] / face
    table = table.astype({"attended": "int64", "flags": "int64"})
    return table.reset_index()[ROSTER_COLUMNS]


def student_term(rows: pd.DataFrame, class_student_id: int) -> pd.DataFrame:
    """The term_rows of one roster student, oldest lesson first."""
    theirs = rows[rows["class_student_id"] == class_student_id]
    return theirs.sort_values(["started_at", "session_id"], kind="stable").reset_index(drop=True)


TERM_FILE_COLUMNS = [
    "name",
    "session",
    "started_at",
    "attended",
    "joined",
    "left",
    "seconds_in_class",
    "seconds_face",
    "seconds_camera_off",
    "attentive_share",
    "engagement",
    "flags",
    "flag_reasons",
]


def term_file(rows: pd.DataFrame) -> pd.DataFrame:
    """student_term (or term_rows) as its CSV download holds it: times in ISO 8601 UTC with a Z, attended as
    0/1, names and reasons made spreadsheet-safe (analytics.csv_file)."""
    shown = rows.assign(
        started_at=rows["started_at"].map(iso_utc),
        joined=rows["joined"].map(iso_utc),
        left=rows["left"].map(iso_utc),
        attended=rows["attended"].astype(int),
    )
    return spreadsheet_safe(shown[TERM_FILE_COLUMNS])
