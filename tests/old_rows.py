"""A run and its salience row written with the columns of revision 0001, as the old code did
(for the tests of migration 0003 and of History opening an old-format result)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from workspace.schema import Run, SalienceRecord


def insert_old_rows(connection: sa.Connection, result: dict) -> int:
    """Insert the run and its salience row holding ``result`` as stored; returns the run's id."""
    now = datetime.now(UTC)
    run_id = connection.execute(
        sa.insert(Run.__table__)
        .values(
            prompt="Q: hi\nA:",
            variables={},
            model="embedded",
            precision="bfloat16",
            settings={"max_new_tokens": 8},
            output=" hello",
            stop_reason="max_new_tokens",
            tokens=1,
            seconds=0.5,
            first_token_seconds=0.1,
            created_at=now,
        )
        .returning(Run.__table__.c.id)
    ).scalar_one()
    connection.execute(
        sa.insert(SalienceRecord.__table__).values(
            run_id=run_id,
            model="embedded",
            precision="bfloat16",
            prompt="Q: hi\nA:",
            target=" hello",
            target_text=" hello",
            result=result,
            seconds=0.2,
            created_at=now,
        )
    )
    return run_id
