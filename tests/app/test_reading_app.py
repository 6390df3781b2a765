"""A page a reviewer reads without help: plain labels, the sample picker, uploads, one run per
Generate, compare panes without the target (AppTest on a tiny model)."""

from __future__ import annotations

import json
import os

import pytest
from apptest_helpers import button, run, text_area
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV
from components.widgets import CUSTOM
from workspace.store import Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")


def picker(app):
    return next(s for s in app.selectbox if s.label == "Sample prompt")


def open_app(tiny_gguf, monkeypatch, browser="browser-1"):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    test = AppTest.from_file(APP, default_timeout=180)
    test.session_state[state.BROWSER_ID] = browser
    return run(test)


def runs_in(data_dir):
    opened = Workspace.open(os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    try:
        return opened.runs()
    finally:
        opened.close()


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_labels_are_plain_and_technical_ones_are_advanced(app):
    button(app, "Generate").click()
    run(app)
    method = next(r for r in app.radio if r.label == "Method")
    assert "Grad L2 — how sensitive" in method.options
    assert "Deletion — what removing it does" in method.options
    assert "Grad · Input" in method.help and "unreliable" in method.help
    expanders = [e.label for e in app.expander]
    assert "Advanced generation settings" in expanders and "Advanced" in expanders
    assert any(n.label == "Longest answer (tokens)" for n in app.number_input)
    assert not any("tokens/s" in c.value for c in app.caption)  # in the caption's help instead
    assert any(c.value.startswith("Written in") and "tokens/s" in (c.help or "") for c in app.caption)
    granularity = next(s for s in app.selectbox if s.label == "Granularity")
    assert "template parts" in granularity.options and "slots" not in granularity.options


def test_picker_says_custom_once_edited_and_picking_a_sample_resets_it(app):
    assert picker(app).value == "fewshot-mistake" and CUSTOM not in picker(app).options
    text_area(app, "food_likes").input("Blue cheese")
    run(app)
    assert picker(app).value == CUSTOM and picker(app).options[0] == CUSTOM
    assert app.session_state[state.WORKBENCH].sample_source == "fewshot-mistake"  # where it came from
    picker(app).set_value("fewshot-mistake")
    run(app)
    assert picker(app).value == "fewshot-mistake" and CUSTOM not in picker(app).options
    assert text_area(app, "food_likes").value == "Cheese"
    text_area(app, "Prompt template").input("Just a question?")
    run(app)
    assert picker(app).value == CUSTOM
    picker(app).set_value("fewshot-fixed")
    run(app)
    assert picker(app).value == "fewshot-fixed"
    assert "Avoid." in text_area(app, "first_recommendation").value


def test_uploaded_prompts_are_in_the_picker_at_once(app):
    rows = [
        {"prompt": "Translate to French: the cat sleeps on the mat", "target": " le chat"},
        {"template": "Summarise {doc}", "variables": {"doc": "a long text"}},
        {"source": "my-case", "prompt": "Hello"},
    ]
    content = "\n".join(json.dumps(row) for row in rows).encode()
    app.file_uploader[0].set_value(("mine.jsonl", content, "application/jsonl"))
    run(app)
    options = picker(app).options
    assert "mine.jsonl · Translate to French: the cat sleeps…" in options
    assert "mine.jsonl · Summarise a long text" in options
    assert "mine.jsonl · my-case" in options
    assert any("Added 3 prompts from mine.jsonl" in c.value for c in app.caption)
    picker(app).set_value("mine.jsonl · Summarise a long text")
    run(app)
    assert text_area(app, "doc").value == "a long text"
    app.file_uploader[0].set_value(("bad.jsonl", b"{not json", "application/jsonl"))
    run(app)
    assert any(e.value.startswith("bad.jsonl: Row 1") for e in app.error)


def test_one_run_per_generate_and_runs_filed_under_the_template_used(tiny_gguf, monkeypatch, data_dir):
    app = open_app(tiny_gguf, monkeypatch)
    button(app, "Generate").click()
    run(app)
    text_area(app, "food_likes").input("Blue cheese")  # auto re-run generates for the new input
    run(app)
    assert len(runs_in(data_dir)) == 2
    button(app, "Generate").click()  # same input again: the same run, not a third
    run(app)
    runs = runs_in(data_dir)
    assert len(runs) == 2
    assert {r.template for r in runs} == {"fewshot-mistake"}  # an edited sample is a new version of it
    picker(app).set_value("fewshot-fixed")
    run(app)
    button(app, "Generate").click()
    run(app)
    newest = runs_in(data_dir)[0]
    assert newest.template == "fewshot-fixed" and newest.variables["first_recommendation"] == "Avoid."


def test_compare_pane_without_the_target_leaves_the_shared_scale(app):
    for sample in ("fewshot-mistake", "fewshot-fixed"):
        picker(app).set_value(sample)
        run(app)
        button(app, "Generate").click()
        run(app)
        button(app, "📌 Send to compare").click()
        run(app)
    app.switch_page("app_pages/compare.py")
    run(app)
    add = button(app, "Add")
    assert not add.disabled and "at most 4" in add.help
    app.session_state[state.COMPARE_ANCHOR] = "Zanzibar"
    run(app)
    warnings = [w.value for w in app.warning]
    assert sum("No “Zanzibar” in this output" in w and "own colour scale" in w for w in warnings) == 2
    for sample in ("fewshot-constitution", "fewshot-mistake"):
        next(s for s in app.selectbox if s.label == "Add a sample as a variant").set_value(sample)
        button(app, "Add").click()
        run(app)
    full = button(app, "Add")
    assert full.disabled and "holds 4 variants at most" in full.help
