"""record authors: who made each version, run, note, evaluation, review and verdict, as the
sign-in gave it: the stable user id (OIDC ``sub``) and e-mail next to the display name; runs,
evaluations and reviews get a display name too (versions, notes and verdicts had one)

Existing rows keep NULL: they were made in personal mode, or before the sign-in was recorded, so
with sign-in on only an admin may delete them (workspace/owners.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NAMED = ("runs", "evaluations", "reviews")  # tables that had no display name of their author
IDENTIFIED = ("template_versions", "runs", "notes", "evaluations", "reviews", "verdicts")
MAX_NAME, MAX_SUB, MAX_EMAIL = 200, 255, 320


def upgrade() -> None:
    for table in IDENTIFIED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in NAMED:
                batch_op.add_column(sa.Column("author", sa.String(length=MAX_NAME), nullable=True))
            batch_op.add_column(sa.Column("author_sub", sa.String(length=MAX_SUB), nullable=True))
            batch_op.add_column(sa.Column("author_email", sa.String(length=MAX_EMAIL), nullable=True))


def downgrade() -> None:
    for table in reversed(IDENTIFIED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("author_email")
            batch_op.drop_column("author_sub")
            if table in NAMED:
                batch_op.drop_column("author")
