"""Autosave around every page: restore a browser's last state at the start of its session, save
committed edits before the page's long work (generation) starts, and save what changed after it.

(Pages, not app.py, are wrapped: AppTest reruns only the page script after its first run.)
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from components import state
from components.workspace import bridge
from components.workspace.codec import browser_state, restore_browser_state
from components.workspace.connection import FAILED, attempt, browser_id, flush, reason, workspace, write
from components.workspace.saving import template_version
from salience.core.errors import InputError, WorkbenchError


def save_state() -> None:
    """Save this browser's state if it changed since the last save (retried on the next run if not)."""
    browser = browser_id()
    if not browser:
        return
    snapshot = browser_state()
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()
    if digest == st.session_state.get(state.SAVED_STATE_HASH):
        return
    if attempt("your work", lambda opened: opened.save_state(browser, snapshot)) is not FAILED:
        st.session_state[state.SAVED_STATE_HASH] = digest


def save_now() -> None:
    """Write kept writes, the committed template (a new version if it changed) and the state."""
    bridge.drop_caught_up_drafts()
    flush()
    if st.session_state.get(state.TEMPLATE):
        template_version()
    save_state()


def autosaved(page: Callable[[], None]) -> Callable[[], None]:
    """Wrap a page: restore the browser's state before it, save what changed before and after it.

    A database that fails while the page reads from it (History, a link) shows one line instead
    of a traceback; the session's work is kept.
    """

    @functools.wraps(page)
    def run() -> None:
        begin()
        try:
            page()
        except SQLAlchemyError as error:
            st.error(
                f"The workspace database cannot be read right now ({reason(error)}). Your work in this "
                "tab is kept and saved when the database is back; reload the page to try again.",
                icon="⚠️",
            )
        finally:
            end()

    return run


def begin() -> None:
    """Start of every run: know the browser, restore its last state once, then save committed edits
    before the page runs (a text area commits its text before the run that generates)."""
    state.init_state()
    bridge.cookie_browser()
    bridge.draw(save_state)
    browser = browser_id()
    if browser and not st.session_state[state.WORKSPACE_RESTORED]:
        _restore_once(browser)
    if st.session_state[state.WORKSPACE_RESTORED] or not browser:
        save_now()


def _restore_once(browser: str) -> None:
    """On the session's first run with a known browser, put its last saved state back.

    With the database down then, the tab starts fresh (and says so) rather than later replacing
    what was typed meanwhile with an older state.
    """
    st.session_state[state.WORKSPACE_RESTORED] = True
    opened = workspace()
    if opened is None:
        st.session_state[state.WORKSPACE_NOTICE] = (
            "Your last saved state could not be restored because the workspace database is not "
            "available; this tab starts fresh, and its work is saved once the database is back."
        )
        return
    try:
        saved = opened.load_state(browser)
        if saved:
            restore_browser_state(saved)
        _restore_reviewer(browser, opened.reviewer(browser) or "")
    except (InputError, WorkbenchError, SQLAlchemyError) as error:
        shown = reason(error) if isinstance(error, SQLAlchemyError) else error
        st.session_state[state.WORKSPACE_NOTICE] = f"Your last state could not be restored: {shown}"


def _restore_reviewer(browser: str, saved: str) -> None:
    """Put the browser's saved name back, unless one was typed this session (then save that).

    The name box is assigned only when there is a saved name to show: on a browser's first
    visit its id arrives in a rerun of its own, and assigning even "" there would make
    Streamlit send the box's value again, replacing a name typed and submitted meanwhile in the
    browser (its next rerun would then send an empty name).
    """
    typed = st.session_state.get(state.REVIEWER, "")
    if not typed:
        if saved:
            st.session_state[state.REVIEWER] = saved
    elif typed != saved:  # typed before the browser was known: the name box could not save it
        write("your name", lambda opened: opened.set_reviewer(browser, typed))


def end() -> None:
    """End of every run: drop drafts the widgets have caught up with; save the template and state."""
    if st.session_state[state.WORKSPACE_RESTORED] or not browser_id():
        save_now()
