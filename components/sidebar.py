"""Shared sidebar: model picker with visible loading progress; a failed load keeps the old model."""

from __future__ import annotations

import streamlit as st

from components import state
from components.model_resource import default_spec, registry
from components.workspace import browser_id, workspace
from salience.errors import WorkbenchError
from salience.loading import KAGGLE_PRESETS
from salience.model import LanguageModel

CHOICES = {
    "Gemma 3 270M (embedded, offline)": "embedded",
    **{f"Kaggle: {name}": f"kaggle:{name}" for name in KAGGLE_PRESETS},
    "Local KerasHub preset or GGUF file…": "",
}


def _load(spec: str) -> LanguageModel | None:
    """Load with a progress bar on first use; on failure say why and return None."""
    models = registry()
    if models.loaded(spec):
        return models.get(spec)
    bar = st.progress(0.0, text=f"Loading {spec}…")

    def progress(message: str, fraction: float) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        with st.spinner(f"Loading {spec} (first start converts the model once, about a minute)…"):
            model = models.get(spec, progress)
    except WorkbenchError as error:
        bar.empty()
        st.session_state[state.MODEL_ERROR] = str(error)
        return None
    bar.empty()
    return model


def model_sidebar() -> LanguageModel | None:
    """Render the model picker; returns the model in use (or None if none could load)."""
    state.init_state()
    if st.session_state[state.MODEL_SPEC] == "embedded" and default_spec() != "embedded":
        st.session_state[state.MODEL_SPEC] = default_spec()
    with st.sidebar:
        st.subheader("Model")
        with st.form("model_form", border=False):
            label = st.selectbox("Model", list(CHOICES), index=0, help="The embedded model works offline.")
            custom = st.text_input(
                "Path or spec",
                key=state.MODEL_SPEC_INPUT,
                persist_state="session",
                placeholder="preset:/path/to/dir, gguf:/path/file.gguf or kaggle:PRESET",
                help="Used when the choice above is 'Local…'; Kaggle presets need credentials.",
            )
            submitted = st.form_submit_button("Load model")
        if submitted:
            wanted = CHOICES[label] or custom.strip()
            if wanted == "embedded":
                wanted = default_spec()
            if not wanted:
                st.session_state[state.MODEL_ERROR] = "Type a preset directory, a GGUF file or kaggle:PRESET."
            else:
                previous = st.session_state[state.MODEL_SPEC]
                st.session_state[state.MODEL_SPEC] = wanted
                st.session_state[state.MODEL_ERROR] = None
                if _load(wanted) is None:
                    st.session_state[state.MODEL_SPEC] = previous
        model = _load(st.session_state[state.MODEL_SPEC])
        if st.session_state[state.MODEL_ERROR]:
            st.error(st.session_state[state.MODEL_ERROR], icon="⚠️")
        if model is not None:
            st.caption(f"In use: **{model.name}** · up to {model.max_context:,} tokens per prompt here")
            st.radio(
                "Compute precision",
                ("bfloat16", "float32"),
                key=state.PRECISION,
                persist_state="session",
                horizontal=True,
                help="bfloat16 is about twice as fast; float32 is exact (scores agree closely).",
            )
        _workspace_status()
    return model


def _on_reviewer_change() -> None:
    opened, browser = workspace(), browser_id()
    if opened is not None and browser:
        opened.set_reviewer(browser, st.session_state[state.REVIEWER])


def _workspace_status() -> None:
    st.subheader("Workspace")
    st.text_input(
        "Your name (for review notes)",
        key=state.REVIEWER,
        persist_state="session",
        max_chars=200,
        on_change=_on_reviewer_change,
        help="Remembered in this browser; shown on the notes and ratings you leave.",
    )
    opened = workspace()
    if opened is None:
        st.warning(st.session_state[state.WORKSPACE_ERROR] or "The workspace is not available.", icon="⚠️")
        return
    if opened.notice:
        st.warning(opened.notice, icon="⚠️")
    where = "PostgreSQL" if opened.url.startswith("postgresql") else "SQLite"
    st.caption(f"Autosaved to {where}: every edit, run and explanation. See **History**.")
