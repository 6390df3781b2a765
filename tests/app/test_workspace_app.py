"""Autosave and restore, the history page and review notes, with AppTest on a tiny model."""

from __future__ import annotations

import os

import pytest
import streamlit as st
from apptest_helpers import button, run, text_area
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV, registry
from workspace.store import RunFilter, Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")


def open_app(browser="browser-1", page=None, query=None):
    test = AppTest.from_file(APP, default_timeout=180)
    test.session_state[state.BROWSER_ID] = browser
    for key, value in (query or {}).items():
        test.query_params[key] = value
    if page:
        test.switch_page(page)
    return run(test)


@pytest.fixture
def tiny_app_env(tiny_gguf, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    # The app loads the model in the background; a Generate clicked before that only waits for it.
    registry().wait_warm(f"gguf:{tiny_gguf}", timeout=300)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tiny_app_env, monkeypatch):
    """The app's workspace on the default SQLite file, or on a real PostgreSQL via DATABASE_URL."""
    if request.param == "postgresql":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    return request.param


def workspace_in(data_dir):
    return Workspace.open(os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'workspace.sqlite3'}")


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_edits_and_runs_survive_refresh_and_restart(backend, data_dir):
    app = open_app()
    text_area(app, "food_likes").input("Blue cheese")
    run(app)
    button(app, "Generate").click()
    run(app)
    output = app.session_state[state.WORKBENCH].generation.text

    refreshed = open_app()  # a new session for the same browser
    assert text_area(refreshed, "food_likes").value == "Blue cheese"
    assert refreshed.session_state[state.WORKBENCH].generation.text == output

    st.cache_resource.clear()  # a server restart: nothing left in memory
    restarted = open_app()
    assert text_area(restarted, "food_likes").value == "Blue cheese"
    assert restarted.session_state[state.WORKBENCH].variables["food_likes"] == "Blue cheese"
    other_browser = open_app("browser-2")
    assert text_area(other_browser, "food_likes").value == "Cheese"  # someone else's state is their own

    saved = workspace_in(data_dir)
    [stored] = saved.runs()
    assert stored.output == output and stored.template == "fewshot-mistake"
    assert stored.variables["food_likes"] == "Blue cheese"
    assert saved.salience_for_run(stored.id)  # the explanation was saved with it
    versions = saved.versions("fewshot-mistake")
    assert any(v.variables.get("food_likes") == "Blue cheese" for v in versions)
    saved.close()


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_history_shows_a_run_again_and_takes_notes(backend, data_dir):
    app = open_app()
    button(app, "Generate").click()
    run(app)
    [stored] = workspace_in(data_dir).runs()

    history = open_app(page="app_pages/history.py", query={"run": str(stored.id)})
    assert any(h.value.startswith(f"Run {stored.id}") for h in history.subheader)
    explanation = next(s for s in history.selectbox if s.label == "Explanation")  # the saved scores
    assert len(explanation.options) == len(workspace_in(data_dir).salience_for_run(stored.id)) >= 1
    assert any("Reading:" in m.value for m in history.markdown)
    assert next(b for b in history.button if b.label == "Save note").disabled is not False  # no name yet
    next(t for t in history.text_input if t.label == "Your name (for review notes)").input("Ana").run()
    text_area(history, "Note").input("Recommends eggs to someone who can't eat them.")
    next(b for b in history.button if b.label == "Save note").click()
    run(history)
    assert any("**Ana**" in m.value and "can't eat them" in m.value for m in history.markdown)
    assert workspace_in(data_dir).reviewer("browser-1") == "Ana"
    with_notes = workspace_in(data_dir).runs(RunFilter(with_notes=True))
    assert [r.id for r in with_notes] == [stored.id]

    button(history, "Open in the workbench").click()
    run(history)
    assert history.session_state[state.TEMPLATE].startswith("Analyze a menu item")


def test_history_of_template_versions_restores_one(tiny_app_env, data_dir):
    app = open_app()
    button(app, "Generate").click()
    run(app)
    text_area(app, "first_recommendation").input("Avoid.")
    run(app)
    history = open_app(page="app_pages/history.py")
    versions = workspace_in(data_dir).versions("fewshot-mistake")
    assert [v.variables["first_recommendation"] for v in versions] == ["Avoid.", "You have to try it."]
    assert any(r"first\_recommendation" in m.value and "Avoid." in m.value for m in history.markdown)
    assert any("is the same; only the values below changed." in c.value for c in history.caption)
    restore = [b for b in history.button if b.label.startswith("Restore version 1 ·")]
    assert len(restore) == 1
    restore[0].click()
    run(history)
    assert text_area(history, "first_recommendation").value == "You have to try it."


def test_one_template_version_is_not_compared_with_itself(tiny_app_env, data_dir):
    app = open_app()
    button(app, "Generate").click()
    run(app)
    history = open_app(page="app_pages/history.py")
    assert any("one version so far" in i.value for i in history.info)
    assert not any("identical" in c.value for c in history.caption)  # was "v1 · … and v1 · … are identical"
    assert [b.label for b in history.button if b.label.startswith("Restore")] == [
        next(b.label for b in history.button if b.label.startswith("Restore version 1 ·"))
    ]


def test_unknown_run_in_the_address_says_so(tiny_app_env):
    history = open_app(page="app_pages/history.py", query={"run": "999"})
    assert any("There is no run" in e.value for e in history.error)


def test_damaged_database_keeps_the_file_and_starts_fresh(tiny_app_env, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "workspace.sqlite3").write_bytes(b"garbage" * 1000)
    app = open_app()
    assert any("was damaged" in w.value and "recover" in w.value for w in app.sidebar.warning)
    assert list(data_dir.glob("workspace.sqlite3.damaged-*"))
    button(app, "Generate").click()
    run(app)
    assert len(workspace_in(data_dir).runs()) == 1


def test_unreachable_database_keeps_the_app_working(tiny_gguf, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = open_app()
    assert any("not being saved" in w.value for w in app.sidebar.warning)
    button(app, "Generate").click()
    run(app)
    assert app.session_state[state.WORKBENCH].generation is not None


def test_history_lists_saved_comparisons(tiny_app_env, data_dir):
    saved = workspace_in(data_dir)
    link = saved.save({"state": {}, "variants": [{"name": "mistake"}, {"name": "fixed"}]})
    saved.add_note("Ana", "Good before/after", 1, comparison_id=link)
    history = open_app(page="app_pages/history.py")
    frame = history.dataframe[-1].value
    assert list(frame["variants"]) == ["mistake · fixed"] and list(frame["notes"]) == [1]
    assert list(frame["link"]) == [f"compare?c={link}"]
