"""record uids: every version, run, salience result, note and evaluation has an id of its own
that export and import carry, so a workspace recognises its own records in any file; template and
evaluation names are kept whole (a template is unique by the SHA-256 of its name); salience
results and notes are indexed by creation time (import finds a workspace's own records there in
files exported before uids existed)

Existing rows get their uid here. A row that came from an import (it has an ``import_key``) gets
the first 32 hex digits of that fingerprint, which is the uid importing the same record from an
old file (one without uids) gives it now; any other row gets a random UUID. The helpers are
written out here, frozen, so this revision keeps doing what it did when the store moves on.

The downgrade drops the uids and gives templates back their 200-character names (a longer name,
possible only after this revision, is refused there by PostgreSQL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import hashlib
import re
import uuid

import sqlalchemy as sa
from alembic import op

import workspace.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

IMPORTED_TABLES = ("template_versions", "runs", "salience_results", "notes")  # they have import_key
UID_TABLES = (*IMPORTED_TABLES, "evaluations")
CREATED_INDEXED = (
    "salience_results",
    "notes",
)  # import looks rows up by creation time (versions and runs were)
UID_LENGTH = 32
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _uid_for(import_key: str | None, taken: set[str]) -> str:
    """The uid an imported row would get now (from its fingerprint), else a random one."""
    if import_key and _FINGERPRINT.fullmatch(import_key) and import_key[:UID_LENGTH] not in taken:
        return import_key[:UID_LENGTH]
    return uuid.uuid4().hex


def _fill_uids(table_name: str) -> None:
    columns = [sa.column("id", sa.Integer), sa.column("uid", sa.String)]
    imported = table_name in IMPORTED_TABLES
    if imported:
        columns.append(sa.column("import_key", sa.String))
    table = sa.table(table_name, *columns)
    bind = op.get_bind()
    key = table.c.import_key if imported else sa.null()
    taken: set[str] = set()
    updates = []
    for row_id, import_key in bind.execute(sa.select(table.c.id, key).order_by(table.c.id)):
        uid = _uid_for(import_key, taken)
        taken.add(uid)
        updates.append({"row_id": row_id, "new_uid": uid})
    if updates:
        bind.execute(
            sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(uid=sa.bindparam("new_uid")),
            updates,
        )


def _fill_name_keys() -> None:
    templates = sa.table(
        "templates",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
    )
    bind = op.get_bind()
    updates = [
        {"row_id": row_id, "key": hashlib.sha256(name.encode("utf-8")).hexdigest()}
        for row_id, name in bind.execute(sa.select(templates.c.id, templates.c.name))
    ]
    if updates:
        bind.execute(
            sa.update(templates)
            .where(templates.c.id == sa.bindparam("row_id"))
            .values(name_key=sa.bindparam("key")),
            updates,
        )


def upgrade() -> None:
    for table in UID_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("uid", sa.String(length=UID_LENGTH), nullable=True))
        _fill_uids(table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("uid", existing_type=sa.String(length=UID_LENGTH), nullable=False)
            batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_uid"), ["uid"])

    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=64), nullable=True))
    _fill_name_keys()
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.alter_column("name_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_templates_name_key"), ["name_key"])
        batch_op.drop_constraint(batch_op.f("uq_templates_name"), type_="unique")
        batch_op.alter_column(
            "name", existing_type=sa.String(length=200), type_=workspace.schema.ExactText(), nullable=False
        )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(length=200), type_=workspace.schema.ExactText(), nullable=False
        )
    for table in CREATED_INDEXED:
        op.create_index(op.f(f"ix_{table}_created_at"), table, ["created_at"], unique=False)


def downgrade() -> None:
    for table in CREATED_INDEXED:
        op.drop_index(op.f(f"ix_{table}_created_at"), table_name=table)
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.alter_column(
            "name", existing_type=workspace.schema.ExactText(), type_=sa.String(length=200), nullable=False
        )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.alter_column(
            "name", existing_type=workspace.schema.ExactText(), type_=sa.String(length=200), nullable=False
        )
        batch_op.create_unique_constraint(batch_op.f("uq_templates_name"), ["name"])
        batch_op.drop_constraint(batch_op.f("uq_templates_name_key"), type_="unique")
        batch_op.drop_column("name_key")
    for table in reversed(UID_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_uid"), type_="unique")
            batch_op.drop_column("uid")
