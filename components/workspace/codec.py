"""The session's state as JSON and back: what a link restores (``capture``/``restore``) and what
autosave keeps per browser (that, plus drafts, the loaded sample and the last generation)."""

from __future__ import annotations

import streamlit as st

from components import state
from salience.core.errors import InputError
from salience.prompts.variant import Variant
from workspace.snapshots import generation_from_json, generation_to_json


def capture() -> dict:
    """The state a link restores: prompt, settings, target, method, granularity, variants."""
    values = {key: st.session_state.get(key, state.DEFAULTS.get(key)) for key in state.SNAPSHOT_KEYS}
    page = state.workbench()
    values.update({name: getattr(page, name) for name in state.SNAPSHOT_FIELDS})
    if values["selection"] is not None:
        values["selection"] = list(values["selection"])
    return {"state": values, "variants": [variant.to_json() for variant in state.compare().variants]}


def restore(snapshot: dict) -> None:
    """Put a captured state into this session (unknown keys are ignored)."""
    values = snapshot.get("state")
    variants = snapshot.get("variants")
    if not isinstance(values, dict) or not isinstance(variants, list):
        raise InputError("The saved state is incomplete and cannot be restored.")
    try:
        restored_variants = [Variant.from_json(item) for item in variants]
    except InputError as error:
        raise InputError(f"A saved variant is malformed ({error})") from None
    for key in state.SNAPSHOT_KEYS:
        if key in values:
            st.session_state[key] = values[key]
    page = state.workbench()
    for name in state.SNAPSHOT_FIELDS:
        if name in values:
            setattr(page, name, values[name])
    page.selection = tuple(page.selection) if page.selection else None
    page.variables = dict(page.variables) if isinstance(page.variables, dict) else {}
    for name, value in page.variables.items():
        st.session_state[state.VARIABLE_WIDGET_PREFIX + name] = value
    # A state saved before the workbench ever ran (a visitor who opened Compare or History first)
    # has no template: leave the sample unloaded so the workbench loads it, instead of an empty prompt.
    page.loaded_sample = values.get("sample_source") if values.get(state.TEMPLATE) else None
    page.generation = page.generated_for = None
    state.compare().variants = restored_variants
    for key in [k for k in st.session_state if str(k).startswith(state.COMPARE_EDIT_PREFIX)]:
        del st.session_state[key]


def browser_state() -> dict:
    """What autosave keeps for this browser."""
    snapshot = capture()
    page = state.workbench()
    snapshot["drafts"] = dict(st.session_state.get(state.DRAFTS) or {})
    snapshot["loaded_sample"] = page.loaded_sample
    if page.generation is not None and page.generated_for is not None:
        snapshot["generation"] = generation_to_json(page.generation, page.generated_for)
    return snapshot


def restore_browser_state(saved: dict) -> None:
    """Put a browser's saved state back; says so (WORKSPACE_NOTICE) when its generation cannot be."""
    restore(saved)
    page = state.workbench()
    for key, value in (saved.get("drafts") or {}).items():
        st.session_state[key] = value
        if key.startswith(state.VARIABLE_WIDGET_PREFIX):
            page.variables[key.removeprefix(state.VARIABLE_WIDGET_PREFIX)] = value
    st.session_state[state.DRAFTS] = dict(saved.get("drafts") or {})
    page.loaded_sample = saved.get("loaded_sample") or page.loaded_sample
    if saved.get("generation"):
        try:
            generation, made_for = generation_from_json(saved["generation"])
        except InputError as error:
            st.session_state[state.WORKSPACE_NOTICE] = (
                f"Your last generation could not be restored ({error}); press Generate to make it again."
            )
            return
        page.generation, page.generated_for = generation, made_for
