"""The sidebar's name on a browser's first visit: the browser's id arrives in a rerun of its own
(the bridge sets the cookie, then reports it), after the visitor may already have typed a name.

That rerun must not send the name box's value again: the browser would replace the name it holds
with it, and its next rerun would send an empty name (seen in the two-reviewer browser test under
load: "Save note" did nothing and the sidebar's name was gone).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_helpers import run
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV, registry
from workspace.store import Workspace

APP = str(Path(__file__).resolve().parents[2] / "app.py")
NAME_BOX = "Your name (for review notes)"


@pytest.fixture
def tiny_app_env(tiny_gguf, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    registry().wait_warm(f"gguf:{tiny_gguf}", timeout=300)  # the app loads it in the background


def name_box(app):
    return next(t for t in app.text_input if t.label == NAME_BOX)


def first_visit():
    """The history page before the browser's id is known (the cookie is set by that page)."""
    test = AppTest.from_file(APP, default_timeout=180)
    test.switch_page("app_pages/history.py")
    return run(test)


def workspace_in(data_dir):
    return Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")


def test_the_id_arriving_does_not_send_the_name_box_again(tiny_app_env, data_dir):
    app = first_visit()
    app.session_state[state.BROWSER_ID] = "new-browser"  # what the bridge's rerun brings
    run(app)
    assert name_box(app).value == ""
    assert not name_box(app).proto.set_value  # the browser keeps what it holds


def test_a_name_typed_before_the_id_arrived_is_kept_and_saved(tiny_app_env, data_dir):
    app = first_visit()
    name_box(app).input("Ana").run()  # no browser id yet: the name box cannot save it
    assert workspace_in(data_dir).reviewer("new-browser") is None
    app.session_state[state.BROWSER_ID] = "new-browser"
    run(app)
    assert name_box(app).value == "Ana"
    assert not name_box(app).proto.set_value
    assert workspace_in(data_dir).reviewer("new-browser") == "Ana"  # a refresh brings it back

    again = AppTest.from_file(APP, default_timeout=180)
    again.session_state[state.BROWSER_ID] = "new-browser"
    run(again)
    assert name_box(again).value == "Ana"
