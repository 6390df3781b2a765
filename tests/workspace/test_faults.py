"""Fault probes on the workspace database: a read-only data folder (with a healthy or a damaged
file, with and without its -wal/-shm files), a damaged file's message, and a PostgreSQL server
stopped while a workspace is open."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from faults import assert_read_only, read_only
from sqlalchemy.exc import OperationalError

from salience.core.types import Generation, GenerationSettings
from workspace.database import WorkspaceUnavailable, is_read_only
from workspace.store import Workspace

SETTINGS = GenerationSettings(max_new_tokens=8)


def generation(text=" hello"):
    return Generation("Q: hi\nA:", text, (1, 2), "eos", 0.5, 0.1)


def _workspace_with_a_run(folder, keep_wal: bool):
    """A workspace file in ``folder`` holding one run; with ``keep_wal`` its -wal/-shm files stay
    beside it (copied while a connection is open, as a crashed or running server leaves them)."""
    source = folder.parent / "source"
    source.mkdir()
    opened = Workspace.open(f"sqlite:///{source / 'workspace.sqlite3'}")
    opened.record_run(generation(), "m", "bfloat16", SETTINGS)
    if keep_wal:
        holder = sqlite3.connect(source / "workspace.sqlite3")
        holder.execute("PRAGMA wal_autocheckpoint = 0")
        holder.execute("SELECT count(*) FROM runs").fetchone()
        for name in ("workspace.sqlite3", "workspace.sqlite3-wal", "workspace.sqlite3-shm"):
            shutil.copy(source / name, folder / name)
        holder.close()
        opened.close()
    else:
        opened.close()
        shutil.copy(source / "workspace.sqlite3", folder / "workspace.sqlite3")
    return folder / "workspace.sqlite3"


@pytest.mark.parametrize("keep_wal", [True, False], ids=["with-wal", "without-wal"])
def test_read_only_folder_with_a_healthy_database_opens_read_only(tmp_path, keep_wal):
    folder = tmp_path / "data"
    folder.mkdir()
    path = _workspace_with_a_run(folder, keep_wal)
    if keep_wal:
        assert (folder / "workspace.sqlite3-wal").stat().st_size > 0
    before = sorted(p.name for p in folder.iterdir())
    with read_only(folder):
        assert_read_only(folder)
        opened = Workspace.open(f"sqlite:///{path}")
        try:
            assert is_read_only(opened.engine)
            assert "cannot be written" in opened.notice and "not being saved" in opened.notice
            assert str(path) in opened.notice
            assert [run.output for run in opened.runs()] == [" hello"]  # history still reads
            with pytest.raises(OperationalError, match="readonly"):
                opened.record_run(generation(" again"), "m", "bfloat16", SETTINGS)
        finally:
            opened.close()
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing renamed, nothing added
    assert not list(folder.glob("*.damaged-*"))


def test_read_only_folder_with_a_damaged_database_is_left_alone_and_says_what_to_do(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "workspace.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with read_only(folder), pytest.raises(WorkspaceUnavailable) as raised:
        Workspace.open(f"sqlite:///{path}")
    message = str(raised.value)
    assert str(path) in message and "damaged" in message and "read-only" in message
    assert "Make the folder writable" in message
    assert path.exists() and not list(folder.glob("*.damaged-*"))


def test_read_only_empty_folder_says_nothing_is_saved(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    with read_only(folder), pytest.raises(WorkspaceUnavailable, match="read-only.*not being saved"):
        Workspace.open(f"sqlite:///{folder / 'workspace.sqlite3'}")


def test_damaged_database_message_names_the_file_and_what_to_do(tmp_path):
    """A file whose pages are damaged (not just garbage) fails quick_check with SQLite's page-level
    text (``btreeInitPage() returns error code 11``); the user gets the file names and a next step."""
    path = tmp_path / "workspace.sqlite3"
    opened = Workspace.open(f"sqlite:///{path}")
    for index in range(200):
        opened.record_run(generation(f" output {index} " * 40), "m", "bfloat16", SETTINGS)
    opened.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):  # every page header after the first two
        data[offset : offset + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    reopened = Workspace.open(f"sqlite:///{path}")
    reopened.close()
    notice = reopened.notice
    [aside] = tmp_path.glob("workspace.sqlite3.damaged-*")
    assert str(path) in notice and str(aside) in notice and ".recover" in notice
    assert "btree" not in notice.lower() and "page" not in notice.lower()


def test_stopped_postgresql_fails_writes_and_recovers_when_back(own_postgres):
    opened = Workspace.open(own_postgres.url)
    opened.record_run(generation(), "m", "bfloat16", SETTINGS)
    own_postgres.stop()
    with pytest.raises(OperationalError):
        opened.record_run(generation(" during"), "m", "bfloat16", SETTINGS)
    own_postgres.start()
    opened.record_run(generation(" after"), "m", "bfloat16", SETTINGS)  # the pool reconnects
    assert sorted(run.output for run in opened.runs()) == [" after", " hello"]
    opened.close()
