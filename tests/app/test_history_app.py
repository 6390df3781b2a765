"""History on awkward runs: a run without a saved template version, and addresses that name no run."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV
from salience.core.types import Generation, GenerationSettings
from workspace.store import Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")
HISTORY = "app_pages/history.py"


@pytest.fixture
def tiny_app_env(tiny_gguf, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")


def open_history(query: dict) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=180)
    test.session_state[state.BROWSER_ID] = "browser-history"
    for key, value in query.items():
        test.query_params[key] = value
    test.switch_page(HISTORY)
    test.run()
    assert not test.exception, test.exception
    return test


def test_open_in_the_workbench_a_run_without_a_template_version(tiny_app_env, data_dir):
    """An imported run (or one whose version save failed) has no template: its prompt is loaded."""
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    prompt = "Say {hi} to me:"
    run_id = saved.record_run(
        Generation(prompt, " hello", (1, 2), "max_new_tokens", 0.5, 0.1),
        "m",
        "float32",
        GenerationSettings(max_new_tokens=12, stop_sequences=("\n",)),
    )
    saved.close()
    history = open_history({"run": str(run_id)})
    next(b for b in history.button if b.label == "Open in the workbench").click()
    history.run()
    assert not history.exception, history.exception
    assert history.session_state[state.TEMPLATE] == "Say {{hi}} to me:"  # braces kept literal
    assert history.session_state[state.WORKBENCH].variables == {}
    assert history.session_state[state.MAX_NEW_TOKENS] == 12


@pytest.mark.parametrize("wanted", ["99999999999999999999999", "-3", "0", "2147483648", "12abc"])
def test_a_run_address_with_no_such_run_says_so(tiny_app_env, wanted):
    history = open_history({"run": wanted})
    assert any("There is no run" in e.value for e in history.error)
    assert not any("Traceback" in e.value or "Error" in e.value for e in history.error)


def _import(history: AppTest, name: str, content: bytes) -> AppTest:
    uploader = next(u for u in history.file_uploader if "workspace export" in u.label)
    uploader.set_value((name, content, "application/jsonl"))
    history.run()
    next(b for b in history.button if b.label == "Import").click()
    history.run()
    assert not history.exception, history.exception
    return history


def test_import_on_history_lists_each_bad_row_and_imports_a_good_file_once(tiny_app_env, data_dir):
    bad = (
        '{"kind": "note", "id": 1, "run_id": 1, "reviewer": 42, "rating": "banana"}\n'
        + "[" * 100_000
        + "]" * 100_000
        + "\n"
    )
    history = _import(open_history({}), "bad.jsonl", bad.encode())
    [error] = history.error
    assert error.value.startswith("bad.jsonl: nothing was imported.")
    assert "- Line 1 (note, id 1): reviewer: should be a valid string, not 42; rating:" in error.value
    assert "- Line 2 is not JSON (nested too deeply)." in error.value
    assert "Traceback" not in error.value

    good = (
        b'{"kind": "run", "id": 1, "prompt": "Say {hi}", "variables": {}, "model": "m", "output": " ok", '
        b'"settings": {"max_new_tokens": 9}, "created_at": "2026-11-01T10:00:00+00:00"}\n'
    )
    history = _import(open_history({}), "good.jsonl", good)
    assert any(s.value == "Imported 1 run." for s in history.success)
    history = _import(open_history({}), "good.jsonl", good)
    assert any(s.value.startswith("Nothing new to import. 1 record") for s in history.success)
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    [stored] = saved.runs()
    saved.close()
    opened = open_history({"run": str(stored.id)})  # the imported run opens in the workbench
    next(b for b in opened.button if b.label == "Open in the workbench").click()
    opened.run()
    assert not opened.exception, opened.exception
    assert opened.session_state[state.TEMPLATE] == "Say {{hi}}"
    assert opened.session_state[state.MAX_NEW_TOKENS] == 9


def test_without_sign_in_anyone_deletes_a_run_as_before(tiny_app_env, data_dir):
    """Personal mode: the run's Delete button is on, and deleting takes its notes with it."""
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    run_id = saved.record_run(
        Generation("Q:", " A", (1, 2), "max_new_tokens", 0.5, 0.1), "m", "float32", GenerationSettings()
    )
    saved.add_note("Ana", "keep?", run_id=run_id)
    saved.close()
    history = open_history({"run": str(run_id)})
    delete = history.button(key=state.child_key(state.HISTORY_DELETE_RUN, run_id))
    assert not delete.disabled
    delete.click()
    history.run()
    assert not history.exception, history.exception
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    try:
        assert saved.runs() == [] and saved.notes() == []
    finally:
        saved.close()
