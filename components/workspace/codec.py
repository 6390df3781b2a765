"""The session's state as JSON and back: what a link restores (``capture``/``restore``) and what
autosave keeps per browser (that, plus drafts, the loaded sample and the last generation)."""

from __future__ import annotations

import streamlit as st

from components import state
from salience.errors import InputError
from salience.variant import Variant
from workspace.snapshots import generation_from_json, generation_to_json


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
    try:
        restored_variants = [Variant.from_json(item) for item in variants]
    except InputError as error:
        raise InputError(f"A saved variant is malformed ({error})") from None
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


def browser_state() -> dict:
    """What autosave keeps for this browser."""
    snapshot = capture()
    snapshot["drafts"] = dict(st.session_state.get(state.DRAFTS) or {})
    snapshot["loaded_sample"] = st.session_state.get(state.LOADED_SAMPLE)
    generation, made_for = st.session_state.get(state.GENERATION), st.session_state.get(state.GENERATED_FOR)
    if generation is not None and made_for is not None:
        snapshot["generation"] = generation_to_json(generation, made_for)
    return snapshot


def restore_browser_state(saved: dict) -> None:
    """Put a browser's saved state back; says so (WORKSPACE_NOTICE) when its generation cannot be."""
    restore(saved)
    for key, value in (saved.get("drafts") or {}).items():
        st.session_state[key] = value
        if key.startswith(state.VARIABLE_WIDGET_PREFIX):
            st.session_state[state.VARIABLES][key.removeprefix(state.VARIABLE_WIDGET_PREFIX)] = value
    st.session_state[state.DRAFTS] = dict(saved.get("drafts") or {})
    st.session_state[state.LOADED_SAMPLE] = (
        saved.get("loaded_sample") or st.session_state[state.LOADED_SAMPLE]
    )
    if saved.get("generation"):
        try:
            generation, made_for = generation_from_json(saved["generation"])
        except InputError as error:
            st.session_state[state.WORKSPACE_NOTICE] = (
                f"Your last generation could not be restored ({error}); press Generate to make it again."
            )
            return
        st.session_state[state.GENERATION] = generation
        st.session_state[state.GENERATED_FOR] = made_for
