"""Shared sidebar: model picker and the model's start-up status; a failed load keeps the old model.

Nothing here waits for a model: loads run behind futures in `components.model_resource`;
while one runs, a fragment polls its status every second and reruns the page once
the phase changes, so the loaded state appears without a click.
"""

from __future__ import annotations

from concurrent.futures import wait

import streamlit as st

from components import state
from components.model_resource import FAILED, LOADING, WARMING, LoadStatus, default_spec, registry
from components.widgets import plain_markdown
from components.workspace import RETRY_SECONDS, browser_id, pending_count, save_now, workspace
from components.workspace.connection import write
from salience.loading import KAGGLE_PRESETS

CHOICES = {
    "Gemma 3 270M (offline)": "embedded",
    **{f"Kaggle: {name}": f"kaggle:{name}" for name in KAGGLE_PRESETS},
    "Local KerasHub preset or GGUF file…": "",
}
POLL_SECONDS = 1.0
SAVE_RETRY_POLL_SECONDS = 5.0  # how often an unsaved tab checks whether the database is back
QUICK_FAILURE_SECONDS = 1.0  # wait this long after "Load model" so a wrong path fails at once


def _spec_name(spec: str) -> str:
    return next((label for label, value in CHOICES.items() if value == spec), spec)


def _session_spec() -> str:
    state.init_state()
    if st.session_state[state.MODEL_SPEC] == "embedded" and default_spec() != "embedded":
        st.session_state[state.MODEL_SPEC] = default_spec()
    return st.session_state[state.MODEL_SPEC]


def model_status() -> LoadStatus:
    """Where the model this session uses stands (loading, warming, ready or failed); never waits."""
    return registry().status(_session_spec())


def _ask_for(wanted: str) -> None:
    """Start loading ``wanted`` for this session; fall back to the model in use if it fails."""
    models = registry()
    previous = st.session_state[state.MODEL_SPEC]
    if previous != wanted and models.status(previous).usable:
        st.session_state[state.MODEL_FALLBACK] = previous
    st.session_state[state.MODEL_SPEC] = wanted
    st.session_state[state.MODEL_ERROR] = None
    wait([models.start(wanted, retry=True).model], timeout=QUICK_FAILURE_SECONDS)


def _settle() -> LoadStatus:
    """This session's model status, after switching back to the previous model if a load failed."""
    models = registry()
    status = models.status(st.session_state[state.MODEL_SPEC])
    if status.phase == FAILED:
        st.session_state[state.MODEL_ERROR] = status.error
        fallback = st.session_state[state.MODEL_FALLBACK]
        st.session_state[state.MODEL_FALLBACK] = None
        if fallback and fallback != status.spec:
            st.session_state[state.MODEL_SPEC] = fallback
            status = models.status(fallback)
    elif status.usable:
        st.session_state[state.MODEL_FALLBACK] = None
    return status


def status_text(status: LoadStatus) -> str:
    """One plain line on a model that is not ready yet."""
    name = _spec_name(status.spec)
    if status.phase == LOADING:
        return f"⏳ Loading the model ({status.eta})… {name}: {status.message}."
    if status.phase == WARMING:
        return (
            f"⏳ Warming up the model ({status.eta}): {status.message}. "
            "You can already generate; the first answers may be slower until then."
        )
    return ""


@st.fragment(run_every=POLL_SECONDS)
def _poll(spec: str, phase: str, in_main: bool) -> None:
    """Redraw the status every second; rerun the whole page once the phase changes."""
    status = registry().status(spec)
    if status.phase != phase:
        st.rerun()
    if not in_main:
        st.caption(status_text(status))
        return
    st.info(status_text(status))
    if status.phase == LOADING:
        done = min(status.elapsed / max(status.expected_load, 1.0), 0.95)
        st.progress(done)


def loading_notice() -> LoadStatus:
    """In the main area: a live "Loading the model (about N s)…" notice while the model starts."""
    status = model_status()
    if status.phase in (LOADING, WARMING):
        _poll(status.spec, status.phase, True)
    return status


def model_sidebar(notice_in_main: bool = False):
    """Render the model picker; returns the model in use, or None while it loads or if none could.

    Never waits for a load. With ``notice_in_main`` the page shows the live status itself
    (`loading_notice`); otherwise the sidebar does.
    """
    _session_spec()
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
                _ask_for(wanted)
        status = _settle()
        model = registry().model(status.spec) if status.usable else None
        if st.session_state[state.MODEL_ERROR]:
            st.error(st.session_state[state.MODEL_ERROR], icon="⚠️")
        if status.notice:  # e.g. a damaged model cache that was found and rebuilt
            st.info(status.notice, icon="ℹ️")
        if model is not None:
            st.caption(
                f"In use: **{plain_markdown(model.name)}** · up to {model.max_context:,} tokens per prompt here"
            )
            with st.expander("Advanced"):
                st.radio(
                    "Compute precision",
                    ("bfloat16", "float32"),
                    key=state.PRECISION,
                    persist_state="session",
                    horizontal=True,
                    help="bfloat16 is about twice as fast; float32 is exact (scores agree closely).",
                )
        if status.phase in (LOADING, WARMING):
            if notice_in_main:
                st.caption(status_text(status))
            else:
                _poll(status.spec, status.phase, False)
        _workspace_status()
    return model


def _on_reviewer_change() -> None:
    browser, name = browser_id(), st.session_state[state.REVIEWER]
    if browser:
        write("your name", lambda opened: opened.set_reviewer(browser, name))


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
    notice = st.session_state.get(state.WORKSPACE_NOTICE)
    if notice:
        st.warning(notice, icon="⚠️")
    if _unsaved():
        _retrying_save_status()
    else:
        _save_status()


def _unsaved() -> bool:
    return bool(
        st.session_state.get(state.SAVE_FAILURE)
        or pending_count()
        or st.session_state.get(state.WORKSPACE_ERROR)
    )


@st.fragment(run_every=SAVE_RETRY_POLL_SECONDS)
def _retrying_save_status() -> None:
    """While something is not saved: retry on its own (a tab left alone still saves once the
    database is back), and say what is kept."""
    save_now()
    _save_status()


def _save_status() -> None:
    """One honest line: saved, or why not and what is kept."""
    opened = workspace()
    failure = st.session_state.get(state.SAVE_FAILURE)
    kept = pending_count()
    if opened is None or failure or kept:
        reason = failure or st.session_state.get(state.WORKSPACE_ERROR) or "The workspace is not available."
        waiting = f"{kept} change{'s' if kept != 1 else ''} and your" if kept else "Your"
        st.warning(
            f"**Not saved.** {reason} {waiting} current work are kept in this tab and saved once the "
            f"database is back (retrying every {RETRY_SECONDS} s); keep this tab open.",
            icon="⚠️",
        )
        return
    if opened.notice:
        st.warning(opened.notice, icon="⚠️")
    where = "PostgreSQL" if opened.url.startswith("postgresql") else "SQLite"
    st.caption(f"Autosaved to {where}: every edit, run and explanation. See **History**.")
