"""import keys: a fingerprint on imported rows, so importing a file twice adds nothing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("template_versions", "runs", "salience_results", "notes")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("import_key", sa.String(length=64), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_import_key"), ["import_key"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_import_key"))
            batch_op.drop_column("import_key")
