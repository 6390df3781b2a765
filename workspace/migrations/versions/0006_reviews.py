"""reviews: blind side-by-side reviews of two variants, their items (the outputs shown, kept
even when the evaluation they came from is rerun or deleted) and each reviewer's verdicts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workspace.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("name", workspace.schema.ExactText(), nullable=False),
        sa.Column("instructions", workspace.schema.ExactText(), nullable=False),
        sa.Column("ask_reason", sa.Boolean(), nullable=False),
        sa.Column("per_item", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", workspace.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("uid", name=op.f("uq_reviews_uid")),
    )
    op.create_index(op.f("ix_reviews_created_at"), "reviews", ["created_at"], unique=False)
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("output_first", workspace.schema.ExactText(), nullable=False),
        sa.Column("output_second", workspace.schema.ExactText(), nullable=False),
        sa.Column("passed", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_items_review_id_reviews"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("review_id", "position", name="uq_review_items_position"),
    )
    op.create_index(op.f("ix_review_items_review_id"), "review_items", ["review_id"], unique=False)
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("reviewer_key", sa.String(length=200), nullable=False),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("left", sa.Integer(), nullable=False),
        sa.Column("reason", workspace.schema.ExactText(), nullable=False),
        sa.Column("created_at", workspace.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", workspace.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_items.id"],
            name=op.f("fk_verdicts_item_id_review_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_verdicts_review_id_reviews"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
        sa.UniqueConstraint("item_id", "reviewer_key", name="uq_verdicts_item_reviewer"),
        sa.UniqueConstraint("uid", name=op.f("uq_verdicts_uid")),
    )
    op.create_index(op.f("ix_verdicts_item_id"), "verdicts", ["item_id"], unique=False)
    op.create_index(op.f("ix_verdicts_review_id"), "verdicts", ["review_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_verdicts_review_id"), table_name="verdicts")
    op.drop_index(op.f("ix_verdicts_item_id"), table_name="verdicts")
    op.drop_table("verdicts")
    op.drop_index(op.f("ix_review_items_review_id"), table_name="review_items")
    op.drop_table("review_items")
    op.drop_index(op.f("ix_reviews_created_at"), table_name="reviews")
    op.drop_table("reviews")
