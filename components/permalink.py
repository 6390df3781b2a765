"""Permalinks: the session's whole state saved server-side behind a short id (``?c=ID``).

The state itself is captured and restored by ``components.workspace.codec`` (autosave keeps the
same state per browser); this module stores it and puts its id in the address.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import state
from components.workspace.codec import capture, restore
from components.workspace.connection import workspace
from salience.core.errors import InputError
from workspace.snapshots import FileSnapshotStore, SnapshotNotFound, SnapshotStore, data_root

QUERY_KEY = "c"


@st.cache_resource(show_spinner=False)
def _store_at(root: str) -> SnapshotStore:
    return FileSnapshotStore(Path(root) / "snapshots")


class _WithFallback:
    """The workspace database, reading links made before it existed from the file store."""

    def __init__(self, primary: SnapshotStore, fallback: SnapshotStore) -> None:
        self.primary, self.fallback = primary, fallback

    def save(self, snapshot: dict) -> str:
        return self.primary.save(snapshot)

    def load(self, snapshot_id: str) -> dict:
        try:
            return self.primary.load(snapshot_id)
        except SnapshotNotFound:
            return self.fallback.load(snapshot_id)


def snapshot_store() -> SnapshotStore:
    """The server's store of saved states (shared by every session): the workspace database,
    or files under the data directory when the database is unavailable."""
    files = _store_at(str(data_root()))
    database = workspace()
    return files if database is None else _WithFallback(database, files)


def create_link() -> str:
    """Save the current state; put its id in the address bar and return it."""
    snapshot_id = snapshot_store().save(capture())
    page = state.compare()
    page.permalink_id = page.applied_snapshot = snapshot_id
    st.query_params[QUERY_KEY] = snapshot_id
    return snapshot_id


def apply_link_from_url() -> str | None:
    """Restore ``?c=ID`` once per id; returns an error message for a bad or unknown id."""
    state.init_state()
    wanted = st.query_params.get(QUERY_KEY)
    if not wanted or wanted == state.compare().applied_snapshot:
        return None
    try:
        restore(snapshot_store().load(wanted))
    except InputError as error:
        return str(error)
    state.compare().applied_snapshot = wanted
    return None


def link_url(snapshot_id: str) -> str:
    """The full address of a link on this server (the page's own URL with ``?c=ID``)."""
    base = (st.context.url or "").split("?")[0].rstrip("/")
    if not base.endswith("/compare"):
        base = base.rsplit("/", 1)[0] + "/compare" if base.count("/") > 2 else base + "/compare"
    return f"{base}?{QUERY_KEY}={snapshot_id}"
