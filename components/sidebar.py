"""Shared sidebar: model picker and the model's start-up status; a failed load keeps the old model.

Nothing here waits for a model: loads run behind futures in `components.model_resource`;
while one runs, a fragment polls its status every second and reruns the page once
the phase changes, so the loaded state appears without a click.

With an engine (``--engine URL`` / ``$GEMMA_WORKBENCH_ENGINE``) the session uses it by default:
the sidebar names the engine, its model and its replicas (a fragment re-reads them), offers only
the precisions it serves, and when the engine is down says so in one line with a button that
switches this session to the in-process model (session state, and so every typed text, stays).
"""

from __future__ import annotations

from concurrent.futures import wait

import streamlit as st

from components import state
from components.model_resource import (
    FAILED,
    LOADING,
    WARMING,
    LoadStatus,
    engine_spec,
    in_process_spec,
    is_remote,
    registry,
)
from components.signin import current_identity
from components.widgets import plain_markdown
from components.workspace import RETRY_SECONDS, browser_id, pending_count, save_now, workspace
from components.workspace.connection import write
from salience.model.decoding import PRECISIONS
from salience.model.loader import KAGGLE_PRESETS

CHOICES = {
    "Gemma 3 270M (offline)": "embedded",
    **{f"Kaggle: {name}": f"kaggle:{name}" for name in KAGGLE_PRESETS},
    "Local KerasHub preset or GGUF file…": "",
}
POLL_SECONDS = 1.0
ENGINE_POLL_SECONDS = 5.0  # how often the engine line re-reads the replica count (asked every 10 s)
USE_IN_PROCESS = "Use the in-process model instead"
SAVE_RETRY_POLL_SECONDS = 5.0  # how often an unsaved tab checks whether the database is back
# The first call at a precision the model holds no weights for (float32 of a preset served in
# bfloat16): 8.5 s to read them and 4 s for its first graphs, measured on 2 cores.
FIRST_USE_SECONDS = "about 10–15 s on 2 cores"
QUICK_FAILURE_SECONDS = 1.0  # wait this long after "Load model" so a wrong path fails at once


def _choices() -> dict[str, str]:
    """The picker's choices: the engine first when the app is pointed at one."""
    engine = engine_spec()
    return {f"Engine at {engine}": engine, **CHOICES} if engine else CHOICES


def _spec_name(spec: str) -> str:
    if is_remote(spec):
        return f"the engine at {spec}"
    return next((label for label, value in CHOICES.items() if value == spec), spec)


def _session_spec() -> str:
    """The spec this session uses. With an engine set, that is the engine unless this session chose
    the in-process model; a restored state made with another model is remembered, so the sidebar
    can say that the engine serves something else."""
    state.init_state()
    spec, engine = st.session_state[state.MODEL_SPEC], engine_spec()
    if engine and not st.session_state[state.MODEL_IN_PROCESS]:
        if spec != engine:
            if spec != "embedded" and not is_remote(spec):  # "embedded" is simply the app's default
                st.session_state[state.MODEL_EXPECTED] = spec
            st.session_state[state.MODEL_SPEC] = engine
    elif spec == "embedded" and in_process_spec() != "embedded":
        st.session_state[state.MODEL_SPEC] = in_process_spec()
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
    st.session_state[state.MODEL_IN_PROCESS] = not is_remote(wanted)
    st.session_state[state.MODEL_EXPECTED] = None  # a model chosen here is what the user expects
    st.session_state[state.MODEL_ERROR] = None
    wait([models.start(wanted, retry=True).model], timeout=QUICK_FAILURE_SECONDS)


def _use_in_process() -> None:
    """The engine is down: this session switches to the in-process model (nothing else changes)."""
    wanted = in_process_spec()
    st.session_state[state.MODEL_SPEC] = wanted
    st.session_state[state.MODEL_IN_PROCESS] = True
    st.session_state[state.MODEL_FALLBACK] = None
    st.session_state[state.MODEL_ERROR] = None
    registry().start(wanted, retry=True)


def _try_engine_again(spec: str) -> None:
    models = registry()
    model = models.model(spec) if models.loaded(spec) else None
    if model is not None:  # connected before and went away: ask it now
        models.check_engine(model)
    else:
        st.session_state[state.MODEL_ERROR] = None
        wait([models.start(spec, retry=True).model], timeout=QUICK_FAILURE_SECONDS)


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
    if status.phase == LOADING and is_remote(status.spec):  # the engine's own words
        return f"⏳ Waiting for the engine ({status.elapsed:.0f} s so far): {status.message}."
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
        _model_form()
        status = _settle()
        model = registry().model(status.spec) if status.usable else None
        remote = model is not None and hasattr(model, "url")
        if st.session_state[state.MODEL_ERROR]:
            st.error(st.session_state[state.MODEL_ERROR], icon="⚠️")
        if status.phase == FAILED and is_remote(status.spec):  # the engine is down or not an engine
            _engine_fallback(status.spec)
        if status.notice:  # e.g. a damaged model cache that was found and rebuilt
            st.info(status.notice, icon="ℹ️")
        if remote:
            _engine_status(model, status.spec)
        elif model is not None:
            st.caption(
                f"In use: **{plain_markdown(model.name)}** · up to {model.max_context:,} tokens per prompt here"
            )
        if model is not None:
            _precision(model, remote)
        if status.phase in (LOADING, WARMING):
            if notice_in_main:
                st.caption(status_text(status))
            else:
                _poll(status.spec, status.phase, False)
        _workspace_status()
    return model


def _model_form() -> None:
    """The model picker's form; a submitted choice starts loading it (or says what is missing)."""
    with st.form("model_form", border=False):
        label = st.selectbox("Model", list(_choices()), index=0, help="The embedded model works offline.")
        custom = st.text_input(
            "Path or spec",
            key=state.MODEL_SPEC_INPUT,
            persist_state="session",
            placeholder="preset:/path/to/dir, gguf:/path/file.gguf or kaggle:PRESET",
            help="Used when the choice above is 'Local…'; Kaggle presets need credentials; "
            "an engine's address (http://HOST:PORT) uses that engine.",
        )
        submitted = st.form_submit_button("Load model")
    if submitted:
        wanted = _choices()[label] or custom.strip()
        if wanted == "embedded":
            wanted = in_process_spec()
        if not wanted:
            st.session_state[state.MODEL_ERROR] = "Type a preset directory, a GGUF file or kaggle:PRESET."
        else:
            _ask_for(wanted)


def _precision(model, remote: bool) -> None:
    """The compute precision radio under "Advanced", offering what the model serves."""
    offered = tuple(getattr(model, "precisions", PRECISIONS))
    if st.session_state.get(state.PRECISION) not in offered:  # the engine serves one only
        served = getattr(model, "precision", offered[0])
        st.session_state[state.PRECISION] = served if served in offered else offered[0]
    with st.expander("Advanced"):
        st.radio(
            "Compute precision",
            offered,
            key=state.PRECISION,
            persist_state="session",
            horizontal=True,
            help="bfloat16 is about twice as fast; float32 is exact (scores agree closely)."
            + (
                f" The engine serves {' and '.join(offered)} only."
                if remote and len(offered) < len(PRECISIONS)
                else ""
            ),
        )
        chosen = st.session_state.get(state.PRECISION)
        prepared = getattr(model, "prepared", None)  # an engine's replicas hold what they serve
        if prepared is not None and chosen in offered and not prepared(chosen):
            st.caption(
                f"The first answer in {chosen} reads the model's {chosen} weights and prepares them "
                f"first ({FIRST_USE_SECONDS}); the ones after it start at once."
            )


def no_model_text() -> str:
    """The main area's line when no model answers: why, when the sidebar knows (e.g. an engine
    that is down), else how to pick one."""
    error = st.session_state.get(state.MODEL_ERROR)
    if error:
        return f"No model is answering: {plain_markdown(error)} The sidebar says what you can do."
    return "No model is loaded. Pick one in the sidebar; the embedded Gemma 3 270M works offline."


def _engine_fallback(spec: str) -> None:
    """Under the engine's one-line error: switch this session to the in-process model, or retry."""
    row = st.container(horizontal=True, wrap=True)
    row.button(USE_IN_PROCESS, type="primary", on_click=_use_in_process, width="content")
    row.button("Try the engine again", on_click=_try_engine_again, args=(spec,), width="content")


def _engine_status(model, spec: str) -> None:
    """The engine in use: its model and replicas (re-read every few seconds), or one line and the
    fallback button when it stopped answering; a restored state made with another model is said."""
    models = registry()
    health = models.engine_health(model)
    changed = models.engine_changed(model.url)
    if changed:
        st.info(changed, icon="ℹ️")
    expected = st.session_state.get(state.MODEL_EXPECTED)
    if expected and expected != model.spec:
        st.warning(
            f"This saved work was made with {_code(expected)}; the engine serves "
            f"**{plain_markdown(model.name)}** ({_code(model.spec)}), so outputs and scores may differ.",
            icon="⚠️",
        )
    if health.problem:
        st.error(health.problem, icon="⚠️")
        _engine_fallback(spec)
    _engine_line(spec, id(model), health.problem)


def _code(spec: str) -> str:
    return "`" + spec.replace("`", "'") + "`"


def _replicas(count: int) -> str:
    return f"{count} replica{'s' if count != 1 else ''}" if count else "no replica answering"


@st.fragment(run_every=ENGINE_POLL_SECONDS)
def _engine_line(spec: str, drawn_model: int, drawn_problem: str | None) -> None:
    """'In use: MODEL on the engine at URL · N replicas', kept current; reruns the page when the
    engine stops (or starts again) answering or switches models."""
    models = registry()
    model = models.model(spec) if models.loaded(spec) else None
    if model is None or id(model) != drawn_model:
        st.rerun()
    health = models.engine_health(model)
    if health.problem != drawn_problem:
        st.rerun()
    st.caption(
        f"In use: **{plain_markdown(model.name)}** on the engine at {_code(model.url)} · "
        f"{_replicas(health.replicas)} · up to {model.max_context:,} tokens per prompt"
    )


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
        disabled=current_identity() is not None,  # signed in: the name is the sign-in's
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
