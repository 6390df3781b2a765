"""A write the store refuses for good (an `InputError`) is said once and dropped: it never blocks
the writes after it, and it does not count as the database failing."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from components import state
from components.workspace import connection
from workspace.store import Workspace


def _script():
    import streamlit as st

    from components.workspace import connection
    from salience.core.errors import InputError

    def refused(opened):
        raise InputError("Evaluation 7 no longer exists (deleted?).")

    if "refused" not in st.session_state:
        st.session_state["refused"] = connection.write("a row of evaluation 7", refused) is connection.FAILED
    st.session_state["note"] = connection.write("a note", lambda opened: opened.add_note(1, "Ana", "fine"))


def test_a_refused_write_is_dropped_and_the_next_ones_go_through(tmp_path, monkeypatch):
    opened = Workspace.open(f"sqlite:///{tmp_path / 'workspace.sqlite3'}")
    monkeypatch.setattr(connection, "workspace", lambda: opened)
    calls = []
    monkeypatch.setattr(opened, "add_note", lambda run_id, reviewer, text: calls.append(text) or len(calls))
    app = AppTest.from_function(_script)
    app.run()
    assert not app.exception, app.exception
    assert app.session_state["refused"] is True
    assert app.session_state["note"] == 1 and calls == ["fine"]  # the refusal blocked nothing
    assert not app.session_state[state.PENDING_WRITES]  # and was not kept for a retry
    app.run()
    assert app.session_state["note"] == 2 and calls == ["fine", "fine"]
    assert app.session_state[state.SAVE_FAILURE] is None  # the later write succeeded
    opened.close()
