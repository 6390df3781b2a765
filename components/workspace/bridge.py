"""The browser bridge: a tiny component that sets the browser's cookie and sends drafts.

A browser is known by a cookie (set by the component on its first visit, read back from
``st.context.cookies`` by later sessions). Text typed into any text area outside a form is sent
(debounced) as a *draft* before the text area commits, so a refresh mid-typing loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from components import state
from salience.prompts.templates import TemplateError, parse_template

COOKIE = "gw_browser"
DRAFT_DEBOUNCE_MS = 700

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


def cookie_browser() -> None:
    """Know the browser from its cookie (sent with the page request) before anything is drawn."""
    if not st.session_state.get(state.BROWSER_ID):
        cookie = st.context.cookies.get(COOKIE) if st.context.cookies else None
        if cookie:
            st.session_state[state.BROWSER_ID] = cookie[:64]


def draw(on_draft: Callable[[], None]) -> None:
    """Draw the (invisible) bridge; ``on_draft`` runs after a browser id or a draft arrives."""

    def changed() -> None:
        value = st.session_state[state.WORKSPACE_BRIDGE]
        browser = value.get("browser")
        if browser and browser != st.session_state.get(state.BROWSER_ID):
            st.session_state[state.BROWSER_ID] = str(browser)[:64]
        draft = value.get("draft")
        keys = draft_keys()
        if draft and draft.get("label") in keys:
            st.session_state[state.DRAFTS][keys[draft["label"]]] = str(draft.get("value", ""))
            on_draft()

    _bridge(
        key=state.WORKSPACE_BRIDGE,
        data={
            "cookie": COOKIE,
            "known": st.session_state.get(state.BROWSER_ID),
            "debounce_ms": DRAFT_DEBOUNCE_MS,
        },
        on_browser_change=changed,
        on_draft_change=changed,
    )


def draft_keys() -> dict[str, str]:
    """Text-area label -> session key, for the text areas whose drafts are kept."""
    keys = {"Prompt template": state.TEMPLATE, "Reference target (optional)": state.REFERENCE_TARGET}
    try:
        names = parse_template(st.session_state.get(state.TEMPLATE, "")).variables
    except TemplateError:
        names = ()
    for name in names:
        keys[name] = state.VARIABLE_WIDGET_PREFIX + name
    return keys


def drop_caught_up_drafts() -> None:
    """Forget drafts whose text area has committed the same text."""
    drafts = st.session_state.get(state.DRAFTS) or {}
    for key in [k for k, v in drafts.items() if st.session_state.get(k) == v]:
        del drafts[key]
