"""Classes and their rosters: sessions of one class (`capture --class`) share its students across a term
(db.classes); a merge keeps what it changed in the roster so that its undo can restore it.

The new columns are nullable with their foreign key, added in place on both engines: alembic's batch mode
would rebuild sessions or students on SQLite, and dropping the old table with foreign keys on deletes its rows'
children. Sessions recorded before this revision have no class.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
# (table, column, referred table, ON DELETE, indexed)
REFERENCES = (
    ("sessions", "class_id", "classes", "SET NULL", True),
    ("students", "class_student_id", "class_students", "SET NULL", True),
    ("student_merges", "kept_class_student_id", "class_students", "SET NULL", False),
    ("student_merges", "dropped_class_student_id", "class_students", "SET NULL", False),
    ("student_merges", "roster_alias_was", "class_students", "SET NULL", False),
)


def upgrade() -> None:
    op.create_table(
        "classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("teacher", sa.String(100), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_classes"),
        sa.UniqueConstraint("teacher", "name", name="uq_classes_teacher_name"),
    )
    op.create_table(
        "class_students",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"], ["classes.id"], name="fk_class_students_class_id_classes", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_class_students"),
    )
    op.create_index("ix_class_students_class_id", "class_students", ["class_id"])
    op.create_table(
        "class_student_aliases",
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("class_student_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"], ["classes.id"], name="fk_class_student_aliases_class_id_classes", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["class_student_id"],
            ["class_students.id"],
            name="fk_class_student_aliases_class_student_id_class_students",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("class_id", "alias", name="pk_class_student_aliases"),
    )
    op.create_index("ix_class_student_aliases_class_student_id", "class_student_aliases", ["class_student_id"])
    for table, column, referred, on_delete, indexed in REFERENCES:
        name = f"fk_{table}_{column}_{referred}"
        if op.get_context().dialect.name == "sqlite":
            # SQLite adds a column with its key written inline in place; alembic would ask for batch mode.
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN {column} INTEGER"
                f" CONSTRAINT {name} REFERENCES {referred} (id) ON DELETE {on_delete}"
            )
        else:
            foreign_key = sa.ForeignKey(f"{referred}.id", name=name, ondelete=on_delete)
            op.add_column(table, sa.Column(column, sa.Integer(), foreign_key, nullable=True))
        if indexed:
            op.create_index(f"ix_{table}_{column}", table, [column])
    op.add_column("student_merges", sa.Column("roster_alias", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("student_merges", "roster_alias")
    for table, column, referred, _, indexed in reversed(REFERENCES):
        if indexed:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
        if op.get_context().dialect.name == "postgresql":
            op.drop_constraint(f"fk_{table}_{column}_{referred}", table, type_="foreignkey")
        # SQLite (3.35+) drops a column that has its own foreign key in place; alembic's batch mode would
        # rebuild the table instead, which on sessions or students deletes their children.
        op.drop_column(table, column)
    op.drop_index("ix_class_student_aliases_class_student_id", table_name="class_student_aliases")
    op.drop_table("class_student_aliases")
    op.drop_index("ix_class_students_class_id", table_name="class_students")
    op.drop_table("class_students")
    op.drop_table("classes")
