"""The app's link to the persistent workspace, split by concern:

- ``bridge``: the browser cookie and typed drafts (a tiny component);
- ``connection``: the shared database connection, and writes kept and retried while it is down;
- ``codec``: the session's state as JSON (links and autosave) and back;
- ``autosave``: restore at a session's start, save before and after every page run;
- ``saving``: template versions, runs and salience results;
- ``loading``: a saved template into the workbench's widgets.
"""

from components.workspace.autosave import autosaved, begin, end, save_now, save_state
from components.workspace.bridge import COOKIE, DRAFT_DEBOUNCE_MS
from components.workspace.codec import capture, restore
from components.workspace.connection import RETRY_SECONDS, browser_id, flush, pending_count, workspace
from components.workspace.loading import load_into_workbench
from components.workspace.saving import (
    UNTITLED,
    remember_run,
    remember_salience,
    template_version,
    variant_version,
)

__all__ = [
    "COOKIE",
    "DRAFT_DEBOUNCE_MS",
    "RETRY_SECONDS",
    "UNTITLED",
    "autosaved",
    "begin",
    "browser_id",
    "capture",
    "end",
    "flush",
    "load_into_workbench",
    "pending_count",
    "remember_run",
    "remember_salience",
    "restore",
    "save_now",
    "save_state",
    "template_version",
    "variant_version",
    "workspace",
]
