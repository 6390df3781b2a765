"""The app's connection to the workspace database, and writes that wait for it.

One ``Workspace`` per database URL is shared by every session. When it cannot be opened, or a
write fails (PostgreSQL stopped, a read-only data folder), the write is kept in this session, in
order, and retried: at the next run after ``RETRY_SECONDS`` (the sidebar's save line reruns on its
own while something waits). Nothing typed or generated is lost to an outage while the tab is open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from components import state
from salience.core.errors import InputError, WorkbenchError
from workspace.database import WorkspaceUnavailable, default_url, is_read_only, writable
from workspace.store import Workspace

RETRY_SECONDS = 30
_OPEN_FAILURES: dict[str, tuple[float, str]] = {}  # url -> (when opening failed, the message)
_WRITE_FAILURES: dict[str, tuple[float, str]] = {}  # url -> (when a write failed, the reason)
_READ_ONLY_CHECKED: dict[str, float] = {}  # url -> when a read-only file was last checked
FAILED = object()  # what ``attempt`` returns when the write did not happen
REFUSED = object()  # what ``attempt`` returns when the store refused the write itself (never retried)
log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Workspace:
    return Workspace.open(url)


def _recent(failures: dict[str, tuple[float, str]], url: str) -> str | None:
    failed = failures.get(url)
    if failed and time.monotonic() - failed[0] < RETRY_SECONDS:
        return failed[1]
    return None


def _writable_again(opened: Workspace, url: str) -> bool:
    """A workspace opened read-only whose file can be written now (checked every RETRY_SECONDS)."""
    if not is_read_only(opened.engine):
        return False
    now = time.monotonic()
    if now - _READ_ONLY_CHECKED.setdefault(url, now) < RETRY_SECONDS:
        return False
    _READ_ONLY_CHECKED[url] = now
    return writable(Path((opened.engine.url.database or "").removeprefix("file:")))


def workspace() -> Workspace | None:
    """The shared workspace, or None (with the reason in session state) when it cannot open."""
    url = default_url()
    failed = _recent(_OPEN_FAILURES, url)
    if failed:  # do not wait on a dead server every run
        st.session_state[state.WORKSPACE_ERROR] = failed
        return None
    try:
        opened = _open(url)
        if _writable_again(opened, url):
            opened.close()
            _open.clear()
            opened = _open(url)
    except WorkspaceUnavailable as error:
        message = f"{error} Work is not being saved; the app tries again every {RETRY_SECONDS} s."
        _OPEN_FAILURES[url] = (time.monotonic(), message)
        st.session_state[state.WORKSPACE_ERROR] = message
        return None
    _OPEN_FAILURES.pop(url, None)
    st.session_state[state.WORKSPACE_ERROR] = None
    return opened


def browser_id() -> str | None:
    return st.session_state.get(state.BROWSER_ID)


def reason(error: BaseException) -> str:
    """One line for a person: the database's first line of the error, no SQL, no traceback."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return (lines[0] if lines else type(original).__name__)[:300]


def _blocked(opened: Workspace | None, url: str) -> str | None:
    """Why a write cannot be tried now, or None to try it."""
    if opened is None:
        return st.session_state.get(state.WORKSPACE_ERROR) or "The workspace database is not available."
    if is_read_only(opened.engine):
        return opened.notice or "The workspace database is read-only: work is not being saved."
    return _recent(_WRITE_FAILURES, url)


def attempt(description: str, action: Callable[[Workspace], Any]) -> Any:
    """Run one write now; ``FAILED`` (with the reason in SAVE_FAILURE) when it did not happen,
    ``REFUSED`` when the store refused this write itself (an `InputError`: e.g. the evaluation was
    deleted meanwhile, or the record is someone else's): trying again would fail the same way,
    and the database is fine."""
    url = default_url()
    opened = workspace()
    blocked = _blocked(opened, url)
    if blocked:
        st.session_state[state.SAVE_FAILURE] = blocked
        return FAILED
    try:
        result = action(opened)
    except InputError as error:
        message = f"Not saved ({description}): {reason(error)}"
        log.info("%s", message)
        st.session_state[state.SAVE_FAILURE] = message
        return REFUSED
    except (WorkbenchError, SQLAlchemyError) as error:
        message = f"Saving {description} failed: {reason(error)}"
        log.warning("%s", message)
        _WRITE_FAILURES[url] = (time.monotonic(), message)
        st.session_state[state.SAVE_FAILURE] = message
        return FAILED
    _WRITE_FAILURES.pop(url, None)
    st.session_state[state.SAVE_FAILURE] = None
    return result


def flush() -> bool:
    """Retry the kept writes in order; True when none is left."""
    pending = st.session_state.setdefault(state.PENDING_WRITES, [])
    while pending:
        description, action = pending[0]
        if attempt(description, action) is FAILED:
            return False
        pending.pop(0)  # done, or refused for good (said in SAVE_FAILURE)
    return True


def write(description: str, action: Callable[[Workspace], Any]) -> Any:
    """Run a write now, after any kept earlier ones; keep it for a retry when it fails.

    Returns the action's result, or ``FAILED`` when the write was kept for later or refused
    (a refused write is not kept: it would block every later one).
    """
    if flush():
        result = attempt(description, action)
        if result is REFUSED:
            return FAILED
        if result is not FAILED:
            return result
    st.session_state[state.PENDING_WRITES].append((description, action))
    return FAILED


def pending_count() -> int:
    return len(st.session_state.get(state.PENDING_WRITES) or [])
