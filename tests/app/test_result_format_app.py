"""History reopens a salience result saved in the old format (before format_version) by the
old code at revision 0001: the upgrade rewrites it and the page draws it with its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from old_rows import insert_old_rows
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV
from workspace.database import MIGRATIONS

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HISTORY = "app_pages/history.py"
OLD_RESULT = json.loads(
    '{"text": "Q: hi\\nA: hello", "prompt_length": 8, "tokens": ["<bos>", "Q:", " hi\\nA:", " hello"], '
    '"offsets": [[0, 0], [0, 2], [2, 8], [8, 14]], "target_token_span": [3, 4], "target_text": " hello", '
    '"target_log_prob": -1.5, "seconds": 0.2, "diagnostics": {"integrated_gradients": {"baseline": "pad", '
    '"steps": 8, "completeness_gap": 0.01}}, "grad_l2": [0.5, 0.25, 0.125, 0.0], '
    '"integrated_gradients": [0.0, -0.5, 1.0, 0.0]}'
)  # format 1, as SalienceResult.to_json() wrote it before format_version


@pytest.fixture
def tiny_app_env(tiny_gguf, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")


def _old_database(path: Path) -> int:
    """A database at revision 0001 holding a run and its salience row, as the old code wrote them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        run_id = insert_old_rows(connection, OLD_RESULT)
    engine.dispose()
    return run_id


def test_history_draws_a_result_saved_in_the_old_format(tiny_app_env, data_dir):
    run_id = _old_database(data_dir / "workspace.sqlite3")
    history = AppTest.from_file(APP, default_timeout=180)
    history.session_state[state.BROWSER_ID] = "browser-old-format"
    history.query_params["run"] = str(run_id)
    history.switch_page(HISTORY)
    history.run()
    assert not history.exception, history.exception
    method = next(r for r in history.radio if r.label == "Method")
    assert list(method.options) == ["Grad L2", "Integrated Gradients"]
    assert any(m.value.startswith("**Reading:**") for m in history.markdown)
    captions = [c.value for c in history.caption]
    assert "Computed with embedded at bfloat16 · Integrated Gradients: baseline pad, 8 steps" in captions
