"""Alembic environment: migrations run on the connection the workspace hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from workspace.schema import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` on the command line: use sqlalchemy.url
        engine = engine_from_config(
            config.get_section(config.config_ini_section, {}), poolclass=pool.NullPool
        )
        with engine.begin() as connection:
            _migrate(connection)
        return
    _migrate(connection)


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
