"""Putting a saved template (and a run's settings) into the workbench's widgets."""

from __future__ import annotations

import streamlit as st

from components import state
from salience.core.text import escape


def load_into_workbench(name: str, template: str, variables: dict, settings: dict | None = None) -> None:
    """Put a saved template (and a run's generation settings) into the workbench's state."""
    page = state.workbench()
    st.session_state[state.TEMPLATE] = template
    page.variables = dict(variables)
    for key, value in variables.items():
        st.session_state[state.VARIABLE_WIDGET_PREFIX + key] = value
    page.loaded_sample = name
    page.selection = None
    st.session_state[state.DRAFTS] = {}
    if settings:
        temperature = float(settings.get("temperature") or 0.0)
        st.session_state[state.MAX_NEW_TOKENS] = int(settings.get("max_new_tokens") or 48)
        st.session_state[state.STOP_SEQUENCES] = "|".join(
            escape(s) for s in settings.get("stop_sequences") or []
        )
        st.session_state[state.SAMPLING] = temperature > 0
        if temperature > 0:
            st.session_state[state.TEMPERATURE] = temperature
            st.session_state[state.TOP_K] = int(settings.get("top_k") or 0)
            st.session_state[state.TOP_P] = float(settings.get("top_p") or 1.0)
            st.session_state[state.SEED] = int(settings.get("seed") or 0)
        st.session_state[state.CHAT_TEMPLATE] = bool(settings.get("chat_template"))
