"""What the pages' CSV downloads send to dcc.Download, typed (dash.dcc.send_string builds the same dict but
declares no types), written by the one CSV writer (analytics.csv_file.write_csv)."""

from __future__ import annotations

import io
from typing import Any, TypedDict

import pandas as pd

from analytics.csv_file import write_csv


class TextDownload(TypedDict):
    """dcc.Download's `data` for a text file: its content as it is (not base64), and the name it is saved as;
    no type, so the browser takes it from the name."""

    content: str
    filename: str
    type: None
    base64: bool


def csv_download(table: pd.DataFrame, filename: str, **options: Any) -> TextDownload:
    """`table` as a CSV file named `filename`; `options`: write_csv's (pandas.DataFrame.to_csv's)."""
    text = io.StringIO()
    write_csv(table, text, **options)
    return {"content": text.getvalue(), "filename": filename, "type": None, "base64": False}
