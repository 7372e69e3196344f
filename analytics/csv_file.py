"""The one CSV writer: every CSV ClassPulse writes (`analytics export`, the report's students.csv, class.csv and
flags.csv, the dashboard's downloads) goes through `write_csv`, or holds a table made by `spreadsheet_safe`.

Names come from OCR and from teachers' renames, so a cell can hold "=HYPERLINK(...)" or "+cmd|..." that a
spreadsheet would run as a formula when the file is opened (CSV injection). Such a cell is written with a
leading apostrophe, which spreadsheets read as "this is text" (OWASP's advice); numbers, negative ones
included, are left as they are.
"""

from __future__ import annotations

import re
from typing import IO, Any

import pandas as pd

# What makes a spreadsheet evaluate a cell: a formula (=), a sign or @ that starts one, and a tab or carriage
# return before any of these (some spreadsheets skip them).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number such as -12.5 or +3e-4 starts with a sign but is only a number.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with every text cell a spreadsheet would evaluate made plain text (a leading apostrophe).
    Applying it twice changes nothing more."""
    text_columns = [column for column in table.columns if table[column].dtype == object]
    return table.assign(**{str(column): table[column].map(_safe_cell) for column in text_columns})


def write_csv(table: pd.DataFrame, target: str | IO[str] | Any, **options: Any) -> None:
    """Write `table` to `target` (a path or an open text file), made spreadsheet-safe; `options` are
    pandas.DataFrame.to_csv's (e.g. float_format), the index left out unless they say otherwise. Raises OSError
    when it cannot be written."""
    spreadsheet_safe(table).to_csv(target, **{"index": False} | options)


def _safe_cell(cell: object) -> object:
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
