"""Fault probes on the app's autosave, with AppTest on a tiny model: PostgreSQL stopped in the middle
of a session (the test starts and stops its own server), a read-only data folder, a committed edit
written before generation starts, and a saved generation that cannot be restored."""

from __future__ import annotations

import pytest
from apptest_helpers import button, run, text_area
from faults import read_only
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV, registry
from components.workspace import connection
from workspace.store import Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")


def open_app(browser="browser-1", page=None):
    test = AppTest.from_file(APP, default_timeout=180)
    test.session_state[state.BROWSER_ID] = browser
    if page:
        test.switch_page(page)
    return run(test)


def sidebar_text(app) -> str:
    parts = [w.value for w in app.sidebar.warning] + [c.value for c in app.sidebar.caption]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def warm_model(tiny_gguf, monkeypatch):
    spec = f"gguf:{tiny_gguf}"
    monkeypatch.setenv(MODEL_ENV, spec)
    registry().wait_warm(spec, timeout=300)  # Generate runs at once instead of waiting for the load
    monkeypatch.setattr(connection, "RETRY_SECONDS", 0)  # retry at every run, not every 30 s
    yield
    connection._open.clear()


def generate(app):
    button(app, "Generate").click()
    run(app)
    assert app.session_state[state.WORKBENCH].generation is not None
    return app.session_state[state.WORKBENCH].generation


def test_postgresql_stopped_mid_session_keeps_every_edit_and_run(warm_model, own_postgres, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", own_postgres.url)
    app = open_app()
    text_area(app, "food_likes").input("Blue cheese")
    run(app)
    generate(app)
    assert "Autosaved to PostgreSQL" in sidebar_text(app)

    own_postgres.stop()
    text_area(app, "food_likes").input("Goat cheese")
    run(app)
    during = generate(app)  # generation goes on
    shown = sidebar_text(app)
    assert "Not saved" in shown and "kept in this tab" in shown and "Autosaved" not in shown
    assert app.session_state[state.PENDING_WRITES]  # the template version and the run wait

    history = open_app(page="app_pages/history.py", browser="browser-2")  # a page that reads
    assert any("cannot be read right now" in e.value for e in history.error)
    assert "Traceback" not in str(history) and "psycopg" not in "".join(e.value for e in history.error)

    own_postgres.start()
    run(app)  # the next run writes what was kept
    assert "Autosaved to PostgreSQL" in sidebar_text(app)
    assert not app.session_state[state.PENDING_WRITES]
    saved = Workspace.open(own_postgres.url)
    try:
        outputs = {(run.variables.get("food_likes"), run.output) for run in saved.runs()}
        assert ("Goat cheese", during.text) in outputs
        versions = saved.versions("fewshot-mistake")
        goat = [v for v in versions if v.variables.get("food_likes") == "Goat cheese"]
        assert goat
        [run_row] = [r for r in saved.runs() if r.variables.get("food_likes") == "Goat cheese"]
        assert run_row.template == "fewshot-mistake"  # linked to the version written just before it
        assert saved.load_state("browser-1")["state"]["variables"]["food_likes"] == "Goat cheese"
    finally:
        saved.close()


def test_read_only_data_folder_keeps_generate_and_says_nothing_is_saved(warm_model, data_dir):
    app = open_app()
    generate(app)
    connection._open.clear()  # a restart, now on a read-only folder
    with read_only(data_dir):
        app = open_app()
        shown = sidebar_text(app)
        assert "not being saved" in shown and "Autosaved" not in shown
        assert "damaged" not in shown and "Read-only file system" not in shown
        generate(app)
        assert app.session_state[state.PENDING_WRITES]  # kept in the tab
        connection._open.clear()
    assert not list(data_dir.glob("*.damaged-*"))


def test_a_committed_edit_is_saved_before_generation_starts(warm_model, data_dir, monkeypatch):
    """Ctrl+Enter commits a text area, and Generate then streams for up to a minute: a crash in
    between must not lose the edit (the browser already dropped its draft)."""
    app = open_app()
    seen = []
    model_registry = type(registry())
    original = model_registry.stream

    def stream(self, *args, **kwargs):
        saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
        try:
            seen.append([v.variables.get("food_likes") for v in saved.versions("fewshot-mistake")])
            seen.append(saved.load_state("browser-1")["state"]["variables"].get("food_likes"))
        finally:
            saved.close()
        yield from original(self, *args, **kwargs)

    monkeypatch.setattr(model_registry, "stream", stream)
    text_area(app, "food_likes").set_value("Blue cheese")  # committed, then Generate in the same run
    generate(app)
    assert seen and "Blue cheese" in seen[0] and seen[1] == "Blue cheese"


def test_a_saved_generation_that_cannot_be_restored_is_reported(warm_model, data_dir):
    app = open_app()
    made = generate(app)
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    snapshot = saved.load_state("browser-1")
    snapshot["generation"]["for"][3]["a_setting_from_a_newer_version"] = 1  # ignored, still restored
    saved.save_state("browser-1", snapshot)
    assert open_app().session_state[state.WORKBENCH].generation.text == made.text

    del snapshot["generation"]["token_ids"]
    saved.save_state("browser-1", snapshot)
    saved.close()
    reopened = open_app()
    assert reopened.session_state[state.WORKBENCH].generation is None
    assert any("last generation could not be restored" in w.value for w in reopened.sidebar.warning)
