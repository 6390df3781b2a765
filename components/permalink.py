"""Permalinks: the session's whole state saved server-side behind a short id (``?c=ID``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import state
from salience.compare import Variant
from salience.errors import InputError
from salience.snapshots import FileSnapshotStore, SnapshotNotFound, SnapshotStore, data_root

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
    from components.workspace import workspace  # the workspace restores states with this module

    files = _store_at(str(data_root()))
    database = workspace()
    return files if database is None else _WithFallback(database, files)


def capture() -> dict:
    """The state a link restores: prompt, settings, target, method, granularity, variants."""
    values = {key: st.session_state.get(key, state.DEFAULTS.get(key)) for key in state.SNAPSHOT_KEYS}
    if values[state.SELECTION] is not None:
        values[state.SELECTION] = list(values[state.SELECTION])
    variants = st.session_state.get(state.COMPARE_VARIANTS) or []
    return {"state": values, "variants": [variant.to_json() for variant in variants]}


def restore(snapshot: dict) -> None:
    """Put a captured state into this session (unknown keys are ignored)."""
    values = snapshot.get("state")
    variants = snapshot.get("variants")
    if not isinstance(values, dict) or not isinstance(variants, list):
        raise InputError("The saved state is incomplete and cannot be restored.")
    restored_variants = [Variant.from_json(item) for item in variants]
    for key in state.SNAPSHOT_KEYS:
        if key in values:
            value = values[key]
            st.session_state[key] = tuple(value) if key == state.SELECTION and value else value
    for name, value in (values.get(state.VARIABLES) or {}).items():
        st.session_state[state.VARIABLE_WIDGET_PREFIX + name] = value
    # A state saved before the workbench ever ran (a visitor who opened Compare or History first)
    # has no template: leave the sample unloaded so the workbench loads it, instead of an empty prompt.
    st.session_state[state.LOADED_SAMPLE] = (
        values.get(state.SAMPLE_SOURCE) if values.get(state.TEMPLATE) else None
    )
    st.session_state[state.GENERATION] = None
    st.session_state[state.GENERATED_FOR] = None
    st.session_state[state.COMPARE_VARIANTS] = restored_variants
    for key in [k for k in st.session_state if str(k).startswith(state.COMPARE_EDIT_PREFIX)]:
        del st.session_state[key]


def create_link() -> str:
    """Save the current state; put its id in the address bar and return it."""
    snapshot_id = snapshot_store().save(capture())
    st.session_state[state.PERMALINK_ID] = snapshot_id
    st.session_state[state.APPLIED_SNAPSHOT] = snapshot_id
    st.query_params[QUERY_KEY] = snapshot_id
    return snapshot_id


def apply_link_from_url() -> str | None:
    """Restore ``?c=ID`` once per id; returns an error message for a bad or unknown id."""
    state.init_state()
    wanted = st.query_params.get(QUERY_KEY)
    if not wanted or wanted == st.session_state.get(state.APPLIED_SNAPSHOT):
        return None
    try:
        restore(snapshot_store().load(wanted))
    except InputError as error:
        return str(error)
    st.session_state[state.APPLIED_SNAPSHOT] = wanted
    return None


def link_url(snapshot_id: str) -> str:
    """The full address of a link on this server (the page's own URL with ``?c=ID``)."""
    base = (st.context.url or "").split("?")[0].rstrip("/")
    if not base.endswith("/compare"):
        base = base.rsplit("/", 1)[0] + "/compare" if base.count("/") > 2 else base + "/compare"
    return f"{base}?{QUERY_KEY}={snapshot_id}"
