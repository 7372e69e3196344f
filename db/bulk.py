"""Many rows into one table at once, inside the caller's transaction: on PostgreSQL an insert by COPY and an
upsert by one statement over arrays; elsewhere (SQLite, one teacher's machine) one executemany each.

The school server writes 50 observation rows and 50 roll-up rows a second per classroom (db.recorder,
db.rollups). An executemany costs a round of parameter processing per row in SQLAlchemy and psycopg, and that,
more than the database's own work, is what held one server to fewer classrooms than a school has.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import numpy as np
from psycopg import sql
from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (every row with the same columns, in the same order) into `table`."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    # The driver's own connection is the one SQLAlchemy's transaction runs on: the COPY commits or rolls back
    # with the rest of it. SQLAlchemy types it as possibly gone (None), which it is not inside a transaction.
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row([row[column] for column in columns])


def upsert_rows(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str], summed: Sequence[str]
) -> None:
    """Insert `rows` (unique by their `key` columns, every row with the same columns in the same order); where a
    row with that key is stored already, its `summed` columns are added to and its other columns replaced."""
    if not rows:
        return
    columns = tuple(rows[0])
    if connection.dialect.name != "postgresql":
        insert_sqlite = sqlite.insert(table)
        merged = {
            column: table.c[column] + insert_sqlite.excluded[column]
            if column in summed
            else insert_sqlite.excluded[column]
            for column in columns
            if column not in key
        }
        connection.execute(insert_sqlite.on_conflict_do_update(index_elements=list(key), set_=merged), list(rows))
        return
    statement = _unnest_upsert(connection.dialect, table, columns, tuple(key), tuple(summed))
    # As in insert_rows: the transaction's own driver connection, never None here.
    with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(statement, column_arrays(rows, columns))


def column_arrays(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """`rows` as one array per column, the parameters of unnested_rows, each written as PostgreSQL's array
    literal (`{1,2,NULL}`), which the statement's cast reads: psycopg's own list adaptation costs Python work
    per element (3x the CPU of this at 50 rows), and the server's interpreter is what a school's load
    saturates first (bench.school)."""
    return [array_literal([row[column] for row in rows]) for column in columns]


def array_literal(values: Sequence[Any]) -> str:
    """`values` (None, bool, int, float, str or datetime) as a PostgreSQL array literal of one dimension."""
    kinds = set(map(type, values))
    if kinds == {float}:
        # repr is the shortest text that reads back as the same double, as float8's input reads it.
        written: Iterable[str] = map(float.__repr__, values)
    elif kinds == {int}:
        written = map(int.__repr__, values)
    elif kinds == {datetime}:
        # A batch's rows share a few times (their frames'): each is written once.
        times = {value: value.isoformat() for value in set(values)}
        written = map(times.__getitem__, values)
    else:
        written = map(_element, values)
    return "{" + ",".join(written) + "}"


def _element(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    if value is None:
        return "NULL"
    if kind is bool:
        return "t" if value else "f"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, datetime):
        return value.isoformat()
    # NumPy's scalars (a capture's signals): numbers.Integral / numbers.Real without being int or float.
    if isinstance(value, np.bool_):
        return _element(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    raise TypeError(f"no array literal for {kind.__name__}")


def unnested_rows(dialect: Dialect, table: Table, columns: Sequence[str]) -> sql.Composed:
    """`SELECT * FROM unnest(%s::type[], ...)`: any number of rows of `table`'s `columns` sent as one array per
    column (column_arrays), unnested by the server: one parameter per column, however many rows."""
    arrays = sql.SQL(", ").join(
        sql.SQL("%s::{}[]").format(sql.SQL(table.c[column].type.compile(dialect=dialect))) for column in columns
    )
    return sql.SQL("SELECT * FROM unnest({})").format(arrays)


@cache
def _unnest_upsert(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...], summed: tuple[str, ...]
) -> bytes:
    """PostgreSQL's upsert of any number of rows in one statement. The same text every time, so psycopg prepares
    it once per connection."""
    return (
        upsert_statement(dialect, table, columns, key, summed, unnested_rows(dialect, table, columns))
        .as_string(None)
        .encode()
    )


def upsert_statement(
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    summed: Sequence[str],
    rows: sql.Composable,
) -> sql.Composed:
    """`INSERT INTO table (columns) <rows> ON CONFLICT (key) DO UPDATE`: `summed` columns added to, the others
    replaced."""
    merged = sql.SQL(", ").join(
        sql.SQL("{0} = {1}.{0} + EXCLUDED.{0}" if column in summed else "{0} = EXCLUDED.{0}").format(
            sql.Identifier(column), sql.Identifier(table.name)
        )
        for column in columns
        if column not in key
    )
    return sql.SQL("INSERT INTO {} ({}) {} ON CONFLICT ({}) DO UPDATE SET {}").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        rows,
        sql.SQL(", ").join(map(sql.Identifier, key)),
        merged,
    )
