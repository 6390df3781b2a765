"""Migration 0003 (result format 2) on SQLite and the real PostgreSQL: a salience row written by
the old code at revision 0001 opens through the store with the same scores after the upgrade."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from old_rows import insert_old_rows
from old_rows import migrate as _alembic

from salience.core.types import Provenance, SalienceResult
from workspace.database import MIGRATIONS
from workspace.schema import SalienceRecord
from workspace.store import Workspace

MIGRATION = "0003"
OLD_RESULT = json.loads(
    '{"text": "Q: hi\\nA: hello", "prompt_length": 8, "tokens": ["<bos>", "Q:", " hi\\nA:", " hello"], '
    '"offsets": [[0, 0], [0, 2], [2, 8], [8, 14]], "target_token_span": [3, 4], "target_text": " hello", '
    '"target_log_prob": -1.5, "seconds": 0.2, "diagnostics": {"integrated_gradients": {"baseline": "pad", '
    '"steps": 8, "completeness_gap": 0.01}}, "grad_l2": [0.5, 0.25, 0.125, 0.0], '
    '"grad_dot_input": [0.0, -0.75, 0.3, 0.0], "integrated_gradients": [0.0, -0.5, 1.0, 0.0]}'
)  # SalienceResult.to_json() of format 1, as the old code stored it


def _old_rows(engine: sa.Engine) -> int:
    """A run and its salience row, inserted with the columns of revision 0001 (as the old code did)."""
    with engine.begin() as connection:
        return insert_old_rows(connection, OLD_RESULT)


def _stored(engine: sa.Engine) -> dict:
    with engine.connect() as connection:
        return connection.scalar(sa.select(SalienceRecord.__table__.c.result))


def test_an_old_format_row_opens_after_the_upgrade(database_url):
    engine = sa.create_engine(database_url)
    _alembic(engine, command.upgrade, "0001")
    run_id = _old_rows(engine)
    assert _stored(engine) == OLD_RESULT  # the old format, byte for byte what the old code wrote

    opened = Workspace.open(database_url)  # migrates to the newest revision
    try:
        [saved] = opened.salience_for_run(run_id)
    finally:
        opened.close()
    assert list(saved.result.scores) == ["grad_l2", "grad_dot_input", "integrated_gradients"]
    for name in saved.result.scores:
        np.testing.assert_array_equal(saved.result.scores[name], np.asarray(OLD_RESULT[name], np.float32))
    assert saved.result.tokens == tuple(OLD_RESULT["tokens"]) and saved.result.target_text == " hello"
    assert saved.result.diagnostics == OLD_RESULT["diagnostics"]
    assert saved.result.provenance == Provenance(
        "embedded", "bfloat16", {"integrated_gradients": {"baseline": "pad", "steps": 8}}
    )

    stored = _stored(engine)  # rewritten in the new format by the migration
    assert stored["format_version"] == 2
    assert stored["scores"] == {k: OLD_RESULT[k] for k in saved.result.scores}
    assert not {"grad_l2", "grad_dot_input", "integrated_gradients"} & set(stored)
    assert stored["provenance"]["model"] == "embedded" and stored["provenance"]["precision"] == "bfloat16"
    assert SalienceResult.from_json(stored).provenance == saved.result.provenance

    _alembic(engine, command.downgrade, "0002")  # and back: the old code could read it again
    assert _stored(engine) == OLD_RESULT
    _alembic(engine, command.upgrade, "head")
    assert _stored(engine) == stored
    engine.dispose()


def test_the_result_format_revision_is_on_the_one_line_of_revisions():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1  # two helpers chaining onto the same revision would branch
    assert scripts.get_revision(MIGRATION).down_revision == "0002"
    assert MIGRATION in {script.revision for script in scripts.walk_revisions()}


def test_rows_saved_now_are_format_2_with_provenance(database_url):
    opened = Workspace.open(database_url)
    try:
        result = SalienceResult.from_json(OLD_RESULT)
        assert result.provenance.model == ""  # format 1 did not record the model
        opened.record_salience(result, "gguf:x", "float32", "Q: hi\nA:", " hello", None)
        stored = _stored(opened.engine)
    finally:
        opened.close()
    assert stored["format_version"] == 2
    assert (stored["provenance"]["model"], stored["provenance"]["precision"]) == ("gguf:x", "float32")


@pytest.mark.parametrize("version", [1, 2])
def test_import_stores_either_format_as_format_2(database_url, version):
    result = OLD_RESULT if version == 1 else SalienceResult.from_json(OLD_RESULT).to_json()
    opened = Workspace.open(database_url)
    try:
        line = {
            "kind": "salience",
            "id": 1,
            "model": "embedded",
            "precision": "bfloat16",
            "prompt": "Q: hi\nA:",
            "target": " hello",
            "result": result,
        }
        opened.import_jsonl(json.dumps(line) + "\n")
        stored = _stored(opened.engine)
    finally:
        opened.close()
    assert stored["format_version"] == 2 and stored["provenance"]["model"] == "embedded"
    assert stored["scores"]["grad_l2"] == OLD_RESULT["grad_l2"]
