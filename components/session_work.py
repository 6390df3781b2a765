"""Work that belongs to a browser session and stops when that session ends or moves on.

Streamlit has no "session ended" callback, but the runtime says, thread-safely, whether a
session is still connected (`Runtime.is_active_session`): a closed tab drops its websocket and
the session leaves the active set at once. Every model call the app starts for a page carries a
`stop_check()`, made on the page's own script thread; a long call (Deletion, a generation, an
evaluation batch) polls it between two of its steps and ends once the session is gone:

- on the script thread the check is also Streamlit's own interrupt point (``yield_check``, what
  every ``st.*`` call runs): a pending rerun (a click, a page change) or stop raises Streamlit's
  rerun/stop exception there, so a page never waits for a batch whose answer nobody wants;
- on a worker thread (Deletion) it answers True once the session is gone.

Shared work (the model's load and warm-up) carries no session and never stops for one. Outside
a Streamlit server (AppTest, the CLI, tests) there is no runtime to ask: work counts as wanted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx


def session_id() -> str | None:
    """The id of the browser session whose script runs on this thread (None off a script thread)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def page_id() -> str | None:
    """The page this thread's script run draws (its page script hash), or None."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.page_script_hash if ctx is not None else None


def session_alive(session: str | None) -> bool:
    """True while ``session`` is connected (always True for no session or without a runtime)."""
    if session is None or not runtime.exists():
        return True
    return runtime.get_instance().is_active_session(session)


def stop_check(also: Callable[[], bool] | None = None) -> Callable[[], bool]:
    """A ``cancelled()`` predicate for work started now on a page's script thread: true once the
    session has ended (or ``also()`` is true); on that script thread a pending rerun or stop
    raises Streamlit's own exception from it instead. Poll it from any thread."""
    ctx = get_script_run_ctx(suppress_warning=True)
    session = ctx.session_id if ctx is not None else None
    yield_check = ctx.yield_check if ctx is not None else None
    script_thread = threading.get_ident()

    def cancelled() -> bool:
        if yield_check is not None and threading.get_ident() == script_thread:
            yield_check()  # raises on a pending rerun or stop, as any st.* call would
        return (also is not None and also()) or not session_alive(session)

    return cancelled
