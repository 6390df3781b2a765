"""Migration 0005 (record uids, whole template names) on SQLite and the real PostgreSQL: rows
written by the old code at revision 0004 get their uids, lose nothing (SQLite's batch migration
recreates tables, which must not cascade deletes), and the workspace then recognises its own
export, and an old file it imported before, as already there."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from old_rows import insert_old_rows
from old_rows import migrate as _alembic

from workspace.database import MIGRATIONS
from workspace.schema import UTCDateTime
from workspace.store import Workspace

MIGRATION = "0005"
UID = re.compile(r"[0-9a-f]{32}")
RESULT = {
    "text": "Q: hi\nA: hello",
    "prompt_length": 8,
    "tokens": ["<bos>", "Q:", " hi\nA:", " hello"],
    "offsets": [[0, 0], [0, 2], [2, 8], [8, 14]],
    "target_token_span": [3, 4],
    "target_text": " hello",
    "target_log_prob": -1.5,
    "seconds": 0.2,
    "grad_l2": [0.5, 0.25, 0.125, 0.0],
}  # format 1, as revision 0001's code stored it (0003 rewrites it)
FINGERPRINT = "ab" * 32  # an import_key as revision 0002's import stored it
TABLES = ("template_versions", "runs", "salience_results", "notes", "evaluations")


def _sql(statement: str) -> sa.TextClause:
    """Raw SQL whose :now is written as the models write times (SQLite compares them as text)."""
    return sa.text(statement).bindparams(sa.bindparam("now", type_=UTCDateTime()))


def _old_workspace(connection: sa.Connection) -> None:
    """A template with two versions (one imported), a run with its salience row and a note, and
    an evaluation, inserted with the columns of revision 0004."""
    now = datetime.now(UTC)
    run_id = insert_old_rows(connection, RESULT)
    template_id = connection.execute(
        _sql("INSERT INTO templates (name, created_at) VALUES ('menu', :now) RETURNING id"), {"now": now}
    ).scalar_one()
    for text, key in (("Q: {q}", None), ("Q2: {q}", FINGERPRINT)):
        connection.execute(
            _sql(
                "INSERT INTO template_versions (template_id, text, variables, import_key, created_at) "
                "VALUES (:template, :text, '{}', :key, :now)"
            ),
            {"template": template_id, "text": text, "key": key, "now": now},
        )
    connection.execute(
        _sql(
            "INSERT INTO notes (run_id, reviewer, rating, text, created_at) VALUES (:run, 'Ana', 1, 'ok', :now)"
        ),
        {"run": run_id, "now": now},
    )
    connection.execute(
        _sql(
            "INSERT INTO evaluations (name, plan, options, status, total, created_at, updated_at) "
            "VALUES ('menu eval', '{}', '{}', 'finished', 0, :now, :now)"
        ),
        {"now": now},
    )


def _rows(engine: sa.Engine, table: str) -> list[dict]:
    with engine.connect() as connection:
        return [
            dict(row._mapping) for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
        ]


def test_old_rows_get_uids_and_nothing_is_lost(database_url):
    engine = sa.create_engine(database_url)
    _alembic(engine, command.upgrade, "0004")
    with engine.begin() as connection:
        _old_workspace(connection)
    before = {table: len(_rows(engine, table)) for table in TABLES}

    opened = Workspace.open(database_url)  # migrates to the newest revision, foreign keys on
    try:
        after = {table: _rows(engine, table) for table in TABLES}
        assert {table: len(rows) for table, rows in after.items()} == before  # no cascade deleted rows
        for table, rows in after.items():
            uids = [row["uid"] for row in rows]
            assert all(UID.fullmatch(uid) for uid in uids), table
            assert len(set(uids)) == len(uids), table
        imported = next(row for row in after["template_versions"] if row["import_key"])
        assert imported["uid"] == FINGERPRINT[:32]  # what importing that old record again gives it
        assert [v.template for v in opened.versions("menu")] == ["menu", "menu"]

        exported = opened.export_jsonl()
        counts = opened.import_jsonl(exported)  # its own export adds nothing
        assert sum(counts.added.values()) == 0 and counts.skipped == 5  # (evaluations are not exported)
        lines = (json.loads(line) for line in exported.split("\n") if line)
        as_before = "".join(json.dumps({k: v for k, v in r.items() if k != "uid"}) + "\n" for r in lines)
        counts = opened.import_jsonl(as_before)  # nor its export as the old code wrote it
        assert sum(counts.added.values()) == 0 and counts.skipped == 5  # (evaluations are not exported)
        opened.save_template_version("menu", "Q3: {q}", {})  # the old template is found by its name
        assert len(opened.versions("menu")) == 3 and opened.template_names() == ["menu"]
        before["template_versions"] += 1
    finally:
        opened.close()

    _alembic(engine, command.downgrade, "0004")  # and back: the old code's columns, the same rows
    assert {table: len(_rows(engine, table)) for table in TABLES} == before
    assert "uid" not in _rows(engine, "runs")[0]
    _alembic(engine, command.upgrade, "head")
    engine.dispose()


def test_a_file_imported_before_uids_is_still_recognised_after_the_upgrade(database_url):
    """An old export (no uids) imported at revision 0004 and again after the upgrade adds nothing."""
    line = {
        "kind": "run",
        "id": 1,
        "prompt": "p",
        "model": "m",
        "output": "o",
        "created_at": "2026-01-01T00:00:00Z",
    }
    old_file = json.dumps(line) + "\n"
    engine = sa.create_engine(database_url)
    _alembic(engine, command.upgrade, "0004")
    with engine.begin() as connection:  # what revision 0004's import stored: the fingerprint, no uid
        from workspace import records
        from workspace.store import _fingerprint

        [(_, record)] = records.parse_lines(old_file)
        connection.execute(
            sa.text(
                "INSERT INTO runs (prompt, variables, model, precision, settings, output, stop_reason, tokens, "
                "seconds, first_token_seconds, import_key, created_at) VALUES ('p', '{}', 'm', 'bfloat16', "
                "'{}', 'o', '', 0, 0, 0, :key, :when)"
            ),
            {"key": _fingerprint(records.dumped(record)), "when": record.created_at},
        )
    engine.dispose()
    opened = Workspace.open(database_url)
    try:
        again = opened.import_jsonl(old_file)
        assert again.added["run"] == 0 and again.present["run"] == 1
        assert opened.import_jsonl(opened.export_jsonl()).added["run"] == 0
    finally:
        opened.close()


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_the_uid_revision_follows_the_evaluations_revision():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1  # later revisions follow it in one line
    assert scripts.get_revision(MIGRATION).down_revision == "0004"
