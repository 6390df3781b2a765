"""evaluations: a prompt evaluation and each finished (row, variant), committed as it completes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workspace.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("plan", workspace.schema.ExactText(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("browser_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", workspace.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", workspace.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(op.f("ix_evaluations_created_at"), "evaluations", ["created_at"], unique=False)
    op.create_table(
        "evaluation_cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", workspace.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evaluation_cells_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_cells")),
        sa.UniqueConstraint("evaluation_id", "row", "variant", name="uq_evaluation_cells_cell"),
    )
    op.create_index(
        op.f("ix_evaluation_cells_evaluation_id"), "evaluation_cells", ["evaluation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_evaluation_cells_evaluation_id"), table_name="evaluation_cells")
    op.drop_table("evaluation_cells")
    op.drop_index(op.f("ix_evaluations_created_at"), table_name="evaluations")
    op.drop_table("evaluations")
