"""Opening the workspace database: SQLite by default (WAL), PostgreSQL from $DATABASE_URL.

A SQLite file that is corrupt or unreadable is moved aside (never deleted) and a
fresh workspace is started; the caller gets a message naming both files and what to do.
A file the app cannot write (a read-only folder or mount) is never taken for a damaged one:
it is opened read-only, with a notice that work is not being saved.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from salience.core.errors import WorkbenchError
from workspace.snapshots import data_root

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
    read_only: bool = False  # a healthy file the app cannot write: opened for reading only


def default_url() -> str:
    configured = os.environ.get(DATABASE_ENV, "").strip()
    if configured:
        return configured
    return f"sqlite:///{data_root() / WORKSPACE_FILE}"


def _sqlite_pragmas(engine: Engine, read_only: bool = False) -> None:
    """WAL, a busy timeout, foreign keys; writes take the lock up front (BEGIN IMMEDIATE)."""

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not read_only:  # a read-only file keeps the journal mode it has
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection):
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writable(path: Path) -> bool:
    """Whether the database file (and the folder its journal files live in) can be written.

    ``os.access`` asks the kernel, so a read-only mount or an immutable file says no even to root.
    """
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def _quick_check(uri: str) -> str:
    """'' when the database at ``uri`` passes SQLite's quick check, else a short reason."""
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            row = connection.execute("PRAGMA quick_check").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        return _short_reason(str(error))
    except OSError as error:
        return error.strerror or str(error)
    if not row or row[0] != "ok":
        return "it failed SQLite's integrity check"
    return ""


def _short_reason(message: str) -> str:
    """SQLite's own words for common failures, without its page-level details."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if "malformed" in first or "not a database" in first:
        return "the file is not a readable SQLite database"
    return first[:200]


def read_only_params(path: Path) -> dict[str, str]:
    """A URI that opens ``path`` without writing anything next to it.

    With its ``-wal`` file present SQLite reads the committed pages from it in ``mode=ro``; without
    one, ``immutable=1`` is needed (``mode=ro`` on a WAL database would create the ``-shm`` file).
    """
    if path.with_name(path.name + "-wal").exists():
        return {"mode": "ro"}
    return {"immutable": "1"}


def _check_sqlite_file(path: Path) -> str:
    """Move a damaged database file aside; returns a message for the user, or ''.

    Only a file the app can write is ever moved: a healthy file in a read-only folder is opened
    read-only by the caller instead (see ``writable``).
    """
    if not path.exists():
        return ""
    problem = _quick_check(f"file:{path}?mode=rw")
    if not problem:
        return ""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.rename(aside.with_name(aside.name + suffix))
    except OSError as error:
        raise WorkspaceUnavailable(
            f"The workspace database {path} is damaged ({problem}) and could not be moved aside "
            f"({error.strerror or error}). Move or delete it (and its -wal/-shm files), then reload."
        ) from None
    return (
        f"The workspace database {path} was damaged ({problem}). It was moved to {aside} and a fresh "
        f"workspace was started; nothing was deleted. To recover what it held, run "
        f"`sqlite3 {aside} .recover | sqlite3 recovered.sqlite3`; delete it once you no longer need it."
    )


def _open_read_only(path: Path) -> tuple[dict[str, str], str]:
    """(URI parameters, notice) for a database in a folder the app cannot write."""
    if not path.exists():
        raise WorkspaceUnavailable(
            f"The data folder {path.parent} is read-only, so no workspace database can be created "
            f"there. Work is not being saved. Make the folder writable or set $GEMMA_WORKBENCH_DATA "
            "to a writable folder."
        )
    params = read_only_params(path)
    problem = _quick_check(f"file:{path}?" + "&".join(f"{k}={v}" for k, v in params.items()))
    if problem:
        raise WorkspaceUnavailable(
            f"The workspace database {path} is damaged ({problem}), and its folder is read-only, so it "
            "was left where it is. Work is not being saved. Make the folder writable (the file will be "
            "kept aside and a fresh workspace started), or restore the file from a backup."
        )
    return params, (
        f"The workspace database {path} cannot be written (its folder or file is read-only). "
        "History shows what it holds, but work is not being saved: edits and runs stay in this "
        "browser session only. Make the folder writable to save again."
    )


def is_read_only(engine: Engine) -> bool:
    """Whether ``engine`` was opened read-only by ``open_database``."""
    query = engine.url.query
    return query.get("mode") == "ro" or query.get("immutable") == "1"


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Switch SQLite's foreign keys (only possible outside a transaction: on the driver's connection)."""
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest version (creates it in an empty database).

    On SQLite, foreign keys are off while migrations run: a batch migration recreates a table,
    and dropping the old one with foreign keys on would delete the rows of every table whose
    foreign key cascades from it (notes and salience results of runs).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)


def _check_revision(engine: Engine, shown: str) -> None:
    """A read-only database cannot be migrated: it must already be at the newest schema."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise WorkspaceUnavailable(
            f"The workspace database {shown} is read-only and was made by an older version of the "
            "workbench, so it cannot be upgraded. Make its folder writable, then reload."
        )


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
    read_only = False
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise WorkspaceUnavailable(
                    f"The data folder {path.parent} cannot be created ({error.strerror or error}). "
                    "Work is not being saved. Set $GEMMA_WORKBENCH_DATA to a writable folder."
                ) from None
            if writable(path):
                notice = _check_sqlite_file(path)
            else:
                params, notice = _open_read_only(path)
                parsed = parsed.set(database=f"file:{path}", query={**parsed.query, **params, "uri": "true"})
                read_only = True
        engine = create_engine(
            parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        _sqlite_pragmas(engine, read_only)
    else:
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
    try:
        if read_only:
            _check_revision(engine, shown)
        else:
            migrate(engine)
    except SQLAlchemyError as error:
        engine.dispose()
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise WorkspaceUnavailable(f"The workspace database {shown} cannot be used: {reason}") from None
    return Opened(engine, shown, notice, read_only)
