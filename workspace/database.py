"""Opening the workspace database: SQLite by default (WAL), PostgreSQL from $DATABASE_URL.

A SQLite file that is corrupt or unreadable is moved aside (never deleted) and a
fresh workspace is started; the caller gets a message saying where the old file is.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from salience.errors import WorkbenchError
from salience.snapshots import data_root

DATABASE_ENV = "DATABASE_URL"
WORKSPACE_FILE = "workspace.sqlite3"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 5
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class WorkspaceUnavailable(WorkbenchError):
    """The configured database cannot be reached or used."""


@dataclass(frozen=True)
class Opened:
    engine: Engine
    url: str  # without a password
    notice: str = ""  # e.g. where a corrupt file was moved


def default_url() -> str:
    configured = os.environ.get(DATABASE_ENV, "").strip()
    if configured:
        return configured
    return f"sqlite:///{data_root() / WORKSPACE_FILE}"


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys; writes take the lock up front (BEGIN IMMEDIATE)."""

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection):
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _check_sqlite_file(path: Path) -> str:
    """Move a damaged database file aside; returns a message for the user, or ''."""
    if not path.exists():
        return ""
    problem = ""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            row = connection.execute("PRAGMA quick_check").fetchone()
            if not row or row[0] != "ok":
                problem = f"it failed its integrity check ({row[0] if row else 'no answer'})"
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        problem = str(error)
    except OSError as error:
        problem = error.strerror or str(error)
    if not problem:
        return ""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    return (
        f"The workspace database could not be read ({problem}). It was kept as {aside} and a fresh "
        "workspace was started; nothing was deleted."
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest version (creates it in an empty database)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str | None = None) -> Opened:
    """An engine on a migrated database; raises WorkspaceUnavailable with a readable reason."""
    url = url or default_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WorkspaceUnavailable(
            f"${DATABASE_ENV} is not a database URL (e.g. postgresql+psycopg://user:pass@host/db)."
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    shown = parsed.render_as_string(hide_password=True)
    notice = ""
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            notice = _check_sqlite_file(path)
        engine = create_engine(
            parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
    try:
        migrate(engine)
    except SQLAlchemyError as error:
        engine.dispose()
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise WorkspaceUnavailable(f"The workspace database {shown} cannot be used: {reason}") from None
    return Opened(engine, shown, notice)
