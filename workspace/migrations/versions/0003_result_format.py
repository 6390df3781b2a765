"""result format 2: stored salience results nest their scores under ``scores`` and carry
``format_version`` and ``provenance`` (model, precision, method parameters)

Format 1 (``SalienceResult.to_json`` before this revision) put each method's scores beside the
other fields as a top-level list. The conversion is written out here, frozen, so that this
revision keeps doing what it did when the engine's format moves on; the engine reads format 1 too
(``SalienceResult.from_json``), so a row this revision has not reached still opens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 200  # rows read and rewritten at a time (results hold every token's scores)
V1_FIELDS = (
    "text",
    "prompt_length",
    "tokens",
    "offsets",
    "target_token_span",
    "target_text",
    "target_log_prob",
    "seconds",
    "diagnostics",
)
V1_PARAMETERS = {"integrated_gradients": ("baseline", "steps")}  # kept in format 1's diagnostics

results = sa.table(
    "salience_results",
    sa.column("id", sa.Integer),
    sa.column("model", sa.String),
    sa.column("precision", sa.String),
    sa.column("result", sa.JSON),
)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_format_2(result: dict, model: str, precision: str) -> dict:
    """A format-1 result in format 2, its provenance from the row (and IG's diagnostics)."""
    scores = {
        key: value
        for key, value in result.items()
        if key not in V1_FIELDS and isinstance(value, list) and all(_is_number(v) for v in value)
    }
    diagnostics = result.get("diagnostics") if isinstance(result.get("diagnostics"), dict) else {}
    parameters = {
        method: {name: diagnostics[method][name] for name in names if name in diagnostics[method]}
        for method, names in V1_PARAMETERS.items()
        if method in scores and isinstance(diagnostics.get(method), dict)
    }
    return {
        "format_version": 2,
        **{key: result[key] for key in V1_FIELDS if key in result},
        "scores": scores,
        "provenance": {"model": model or "", "precision": precision or "", "parameters": parameters},
    }


def to_format_1(result: dict) -> dict:
    """A format-2 result as format 1 wrote it (the provenance is dropped)."""
    return {
        **{key: result[key] for key in V1_FIELDS if key in result},
        **dict(result.get("scores") or {}),
    }


def _rewrite(convert) -> None:
    connection = op.get_bind()
    ids = connection.scalars(sa.select(results.c.id).order_by(results.c.id)).all()
    for first in range(0, len(ids), BATCH):
        chunk = ids[first : first + BATCH]
        rows = connection.execute(
            sa.select(results.c.id, results.c.model, results.c.precision, results.c.result).where(
                results.c.id.in_(chunk)
            )
        )
        for row_id, model, precision, result in rows.all():
            converted = convert(result, model, precision) if isinstance(result, dict) else None
            if converted is not None:
                connection.execute(results.update().where(results.c.id == row_id).values(result=converted))


def upgrade() -> None:
    _rewrite(
        lambda result, model, precision: (
            None if "format_version" in result else to_format_2(result, model, precision)
        )
    )


def downgrade() -> None:
    _rewrite(
        lambda result, model, precision: to_format_1(result) if result.get("format_version") == 2 else None
    )
