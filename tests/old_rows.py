"""A run and its salience row written with the columns of revision 0001, as the old code did
(for the tests of migrations 0003 and 0005 and of History opening an old-format result)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from workspace.schema import UTCDateTime

# The tables as revision 0001 made them (the models' later columns, e.g. uid, are not there yet).
OLD_RUNS = sa.table(
    "runs",
    *(sa.column(name) for name in ("id", "prompt", "model", "precision", "output", "stop_reason")),
    *(sa.column(name) for name in ("tokens", "seconds", "first_token_seconds")),
    sa.column("created_at", UTCDateTime()),
    sa.column("variables", sa.JSON),
    sa.column("settings", sa.JSON),
)
OLD_SALIENCE = sa.table(
    "salience_results",
    *(sa.column(name) for name in ("run_id", "model", "precision", "prompt", "target", "target_text")),
    sa.column("seconds"),
    sa.column("created_at", UTCDateTime()),
    sa.column("result", sa.JSON),
)


def insert_old_rows(connection: sa.Connection, result: dict) -> int:
    """Insert the run and its salience row holding ``result`` as stored; returns the run's id."""
    now = datetime.now(UTC)
    run_id = connection.execute(
        sa.insert(OLD_RUNS)
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
        .returning(OLD_RUNS.c.id)
    ).scalar_one()
    connection.execute(
        sa.insert(OLD_SALIENCE).values(
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


def migrate(engine: sa.Engine, action, revision: str) -> None:
    """Run an Alembic command (``alembic.command.upgrade``/``downgrade``) to ``revision`` on ``engine``."""
    from alembic.config import Config

    from workspace.database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)
