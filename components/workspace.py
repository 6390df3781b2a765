"""The app's link to the persistent workspace: browser identity, autosave and restore.

A browser is known by a cookie (set by a tiny component on its first visit). At the
start of a session its last saved state is restored; after every script run the state
is saved when it changed. Text typed into any text area is sent (debounced) as a draft
before the text area commits, so a refresh mid-typing loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from components import state
from components.permalink import capture, restore
from salience.errors import InputError, WorkbenchError
from salience.templates import TemplateError, parse_template
from salience.text import escape
from salience.types import Generation, GenerationSettings, SalienceResult
from workspace.database import WorkspaceUnavailable, default_url
from workspace.store import Workspace, settings_json

COOKIE = "gw_browser"
DRAFT_DEBOUNCE_MS = 700
UNTITLED = "untitled"
RETRY_SECONDS = 30
_FAILURES: dict[str, tuple[float, str]] = {}  # url -> (when it failed, the message)
log = logging.getLogger(__name__)

_JS = r"""
function readCookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

function newId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);  // works on plain http too, unlike randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export default function(component) {
  const { data, setStateValue, setTriggerValue } = component;
  let id = readCookie(data.cookie);
  if (!id) {
    id = newId();
    document.cookie = `${data.cookie}=${id}; path=/; max-age=63072000; SameSite=Lax`;
  }
  if (data.known !== id) setStateValue("browser", id);
  window.__workbenchSendDraft = (draft) => setTriggerValue("draft", draft);
  if (window.__workbenchDrafts) return;
  window.__workbenchDrafts = true;
  let timer = null;
  let pending = null;
  const flush = () => {
    if (pending) { window.__workbenchSendDraft(pending); pending = null; }
  };
  document.addEventListener("input", (event) => {
    const element = event.target;
    if (!(element instanceof HTMLTextAreaElement)) return;
    if (element.closest('[data-testid="stForm"]')) return;  // a form keeps its text until submitted
    const label = element.getAttribute("aria-label");
    if (!label) return;
    pending = { label: label, value: element.value };
    clearTimeout(timer);
    timer = setTimeout(flush, data.debounce_ms);
  }, true);
  // A click elsewhere or Ctrl+Enter commits the text area itself: drop the draft so that its
  // message never races the click's own rerun.
  const drop = () => { clearTimeout(timer); pending = null; };
  document.addEventListener("pointerdown", (event) => {
    if (!(event.target instanceof HTMLTextAreaElement)) drop();
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) drop();
  }, true);
  window.addEventListener("pagehide", flush);
}
"""

_bridge = st.components.v2.component("workspace_bridge", js=_JS)


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Workspace:
    return Workspace.open(url)


def workspace() -> Workspace | None:
    """The shared workspace, or None (with the reason in session state) when it cannot open."""
    url = default_url()
    failed = _FAILURES.get(url)
    if failed and time.monotonic() - failed[0] < RETRY_SECONDS:  # do not wait on a dead server every run
        st.session_state[state.WORKSPACE_ERROR] = failed[1]
        return None
    try:
        opened = _open(url)
    except WorkspaceUnavailable as error:
        message = f"{error} Work is not being saved; the app tries again every {RETRY_SECONDS} s."
        _FAILURES[url] = (time.monotonic(), message)
        st.session_state[state.WORKSPACE_ERROR] = message
        return None
    _FAILURES.pop(url, None)
    st.session_state[state.WORKSPACE_ERROR] = None
    return opened


def browser_id() -> str | None:
    return st.session_state.get(state.BROWSER_ID)


def _draft_keys() -> dict[str, str]:
    """Text-area label -> session key, for the text areas whose drafts are kept."""
    keys = {"Prompt template": state.TEMPLATE, "Reference target (optional)": state.REFERENCE_TARGET}
    try:
        names = parse_template(st.session_state.get(state.TEMPLATE, "")).variables
    except TemplateError:
        names = ()
    for name in names:
        keys[name] = state.VARIABLE_WIDGET_PREFIX + name
    return keys


def _on_bridge() -> None:
    value = st.session_state[state.WORKSPACE_BRIDGE]
    browser = value.get("browser")
    if browser and browser != st.session_state.get(state.BROWSER_ID):
        st.session_state[state.BROWSER_ID] = str(browser)[:64]
    draft = value.get("draft")
    if draft and draft.get("label") in _draft_keys():
        st.session_state[state.DRAFTS][_draft_keys()[draft["label"]]] = str(draft.get("value", ""))
        save_state()


def _current_state() -> dict:
    snapshot = capture()
    snapshot["drafts"] = dict(st.session_state.get(state.DRAFTS) or {})
    snapshot["loaded_sample"] = st.session_state.get(state.LOADED_SAMPLE)
    generation, made_for = st.session_state.get(state.GENERATION), st.session_state.get(state.GENERATED_FOR)
    if generation is not None and made_for is not None:
        spec, precision, prompt, settings = made_for
        snapshot["generation"] = {
            "prompt": generation.prompt,
            "text": generation.text,
            "token_ids": list(generation.token_ids),
            "stop_reason": generation.stop_reason,
            "seconds": generation.seconds,
            "first_token_seconds": generation.first_token_seconds,
            "for": [spec, precision, prompt, settings_json(settings)],
        }
    return snapshot


def _restore_generation(saved: dict | None) -> None:
    if not saved:
        return
    try:
        spec, precision, prompt, settings = saved["for"]
        settings = GenerationSettings(**{**settings, "stop_sequences": tuple(settings["stop_sequences"])})
        generation = Generation(
            saved["prompt"],
            saved["text"],
            tuple(saved["token_ids"]),
            saved["stop_reason"],
            float(saved["seconds"]),
            float(saved["first_token_seconds"]),
        )
    except (KeyError, TypeError, ValueError):
        return
    st.session_state[state.GENERATION] = generation
    st.session_state[state.GENERATED_FOR] = (spec, precision, prompt, settings)


def save_state() -> None:
    """Save this browser's state if it changed since the last save."""
    opened, browser = workspace(), browser_id()
    if opened is None or not browser:
        return
    snapshot = _current_state()
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()
    if digest == st.session_state.get(state.SAVED_STATE_HASH):
        return
    try:
        opened.save_state(browser, snapshot)
    except (WorkbenchError, SQLAlchemyError) as error:
        log.warning("autosave failed: %s", error)
        return
    st.session_state[state.SAVED_STATE_HASH] = digest


def _restore(saved: dict) -> None:
    restore(saved)
    for key, value in (saved.get("drafts") or {}).items():
        st.session_state[key] = value
        if key.startswith(state.VARIABLE_WIDGET_PREFIX):
            st.session_state[state.VARIABLES][key.removeprefix(state.VARIABLE_WIDGET_PREFIX)] = value
    st.session_state[state.DRAFTS] = dict(saved.get("drafts") or {})
    st.session_state[state.LOADED_SAMPLE] = (
        saved.get("loaded_sample") or st.session_state[state.LOADED_SAMPLE]
    )
    _restore_generation(saved.get("generation"))


def autosaved(page: Callable[[], None]) -> Callable[[], None]:
    """Wrap a page: restore the browser's state before it, save what changed after it.

    (Pages, not app.py, do this: AppTest reruns only the page script after its first run.)
    """

    @functools.wraps(page)
    def run() -> None:
        begin()
        try:
            page()
        finally:
            end()

    return run


def begin() -> None:
    """Start of every run: know the browser, and on a session's first run restore its last state."""
    state.init_state()
    if not st.session_state.get(state.BROWSER_ID):
        cookie = st.context.cookies.get(COOKIE) if st.context.cookies else None
        if cookie:
            st.session_state[state.BROWSER_ID] = cookie[:64]
    _bridge(
        key=state.WORKSPACE_BRIDGE,
        data={"cookie": COOKIE, "known": browser_id(), "debounce_ms": DRAFT_DEBOUNCE_MS},
        on_browser_change=_on_bridge,
        on_draft_change=_on_bridge,
    )
    opened, browser = workspace(), browser_id()
    if opened is None or not browser or st.session_state[state.WORKSPACE_RESTORED]:
        return
    st.session_state[state.WORKSPACE_RESTORED] = True
    try:
        saved = opened.load_state(browser)
        if saved:
            _restore(saved)
        if not st.session_state.get(state.REVIEWER):  # never overwrite a name typed meanwhile
            st.session_state[state.REVIEWER] = opened.reviewer(browser) or ""
    except (InputError, WorkbenchError, SQLAlchemyError) as error:
        st.session_state[state.WORKSPACE_ERROR] = f"Your last state could not be restored: {error}"


def end() -> None:
    """End of every run: drop drafts the widgets have caught up with; save the template and state."""
    drafts = st.session_state.get(state.DRAFTS) or {}
    for key in [k for k, v in drafts.items() if st.session_state.get(k) == v]:
        del drafts[key]
    if st.session_state.get(state.TEMPLATE):
        template_version()  # a new version whenever the committed template or a value changed
    save_state()


def template_version() -> int | None:
    """The saved version of the workbench's template and values (saved now if new)."""
    opened = workspace()
    if opened is None:
        return None
    template = st.session_state[state.TEMPLATE]
    try:
        names = parse_template(template).variables
    except TemplateError:
        return None
    values = {name: st.session_state[state.VARIABLES].get(name, "") for name in names}
    key = hashlib.sha256(json.dumps([template, values], sort_keys=True).encode()).hexdigest()
    known = st.session_state.get(state.TEMPLATE_VERSION)
    if known and known[0] == key:
        return known[1]
    name = st.session_state.get(state.LOADED_SAMPLE) or UNTITLED
    try:
        version = opened.save_template_version(
            name,
            template,
            values,
            author=st.session_state.get(state.REVIEWER) or None,
            browser_id=browser_id(),
        )
    except (WorkbenchError, SQLAlchemyError) as error:
        log.warning("template autosave failed: %s", error)
        return None
    st.session_state[state.TEMPLATE_VERSION] = (key, version)
    return version


def variant_version(name: str, template: str, values: dict[str, str]) -> int | None:
    """Save a compare-page variant's template as a version of the template named after it."""
    opened = workspace()
    if opened is None:
        return None
    try:
        return opened.save_template_version(
            name, template, values, st.session_state.get(state.REVIEWER) or None, browser_id()
        )
    except (WorkbenchError, SQLAlchemyError) as error:
        log.warning("template autosave failed: %s", error)
        return None


def remember_run(
    generation: Generation,
    model: str,
    precision: str,
    settings: GenerationSettings,
    variables: dict | None = None,
    version_id: int | None = None,
) -> int | None:
    """Save a finished generation; returns its run id (also remembered for its salience).

    The same output of the same prompt, model and precision is one run per session: an auto
    re-run followed by Generate on unchanged input does not record it twice.
    """
    opened = workspace()
    if opened is None:
        return None
    known = st.session_state[state.RUN_IDS].get((model, precision, generation.prompt, generation.text))
    if known is not None:
        return known
    try:
        run_id = opened.record_run(
            generation, model, precision, settings, variables, version_id, browser_id()
        )
    except (WorkbenchError, SQLAlchemyError) as error:
        log.warning("run autosave failed: %s", error)
        return None
    st.session_state[state.RUN_IDS][(model, precision, generation.prompt, generation.text)] = run_id
    return run_id


def remember_salience(
    result: SalienceResult, model: str, precision: str, prompt: str, target: str, span: tuple[int, int] | None
) -> None:
    """Save a salience result once per session (reruns show the same cached result)."""
    opened = workspace()
    key = (model, precision, prompt, target, span, tuple(sorted(result.scores)))
    if opened is None or key in st.session_state[state.RECORDED_SALIENCE]:
        return
    run_id = st.session_state[state.RUN_IDS].get((model, precision, prompt, target))
    try:
        opened.record_salience(result, model, precision, prompt, target, span, run_id)
    except (WorkbenchError, SQLAlchemyError) as error:
        log.warning("salience autosave failed: %s", error)
        return
    st.session_state[state.RECORDED_SALIENCE].add(key)


def load_into_workbench(name: str, template: str, variables: dict, settings: dict | None = None) -> None:
    """Put a saved template (and a run's generation settings) into the workbench's state."""
    st.session_state[state.TEMPLATE] = template
    st.session_state[state.VARIABLES] = dict(variables)
    for key, value in variables.items():
        st.session_state[state.VARIABLE_WIDGET_PREFIX + key] = value
    st.session_state[state.LOADED_SAMPLE] = name
    st.session_state[state.SELECTION] = None
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
