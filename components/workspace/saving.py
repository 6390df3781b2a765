"""Saving what the pages make: template versions, generations (runs) and salience results.

Each write goes through ``connection.write``: when the database is down it is kept in the session
and written, in order, once the database is back. The session remembers what it queued, so a
rerun does not queue the same thing twice.
"""

from __future__ import annotations

import hashlib
import json

import streamlit as st

from components import state
from components.signin import current_author
from components.workspace.connection import FAILED, browser_id, write
from salience.core.types import Generation, GenerationSettings, SalienceResult
from salience.prompts.templates import TemplateError, parse_template

UNTITLED = "untitled"


def template_version() -> int | None:
    """The saved version of the workbench's template and values (saved now if new).

    None when the template does not parse, or when its version is kept for a retry.
    """
    template = st.session_state[state.TEMPLATE]
    try:
        names = parse_template(template).variables
    except TemplateError:
        return None
    values = {name: state.workbench().variables.get(name, "") for name in names}
    key = hashlib.sha256(json.dumps([template, values], sort_keys=True).encode()).hexdigest()
    known = st.session_state.get(state.TEMPLATE_VERSION)
    if known and known[0] == key:
        return known[1]  # None while it waits for the database
    name = state.workbench().loaded_sample or UNTITLED
    author = st.session_state.get(state.REVIEWER) or None
    browser, by = browser_id(), current_author()

    def save(opened) -> int:
        version = opened.save_template_version(name, template, values, author, browser, by)
        current = st.session_state.get(state.TEMPLATE_VERSION)
        if current is None or current[0] == key:
            st.session_state[state.TEMPLATE_VERSION] = (key, version)
        return version

    st.session_state[state.TEMPLATE_VERSION] = (key, None)
    version = write("the prompt template", save)
    return None if version is FAILED else version


def variant_version(name: str, template: str, values: dict[str, str]) -> int | None:
    """Save a compare-page variant's template as a version of the template named after it."""
    author, browser, by = st.session_state.get(state.REVIEWER) or None, browser_id(), current_author()
    version = write(
        f"the variant '{name}'",
        lambda opened: opened.save_template_version(name, template, values, author, browser, by),
    )
    return None if version is FAILED else version


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
    re-run followed by Generate on unchanged input does not record it twice. A run kept for a
    retry is linked to the template version kept just before it, once both are written.
    """
    key = (model, precision, generation.prompt, generation.text)
    run_ids = st.session_state[state.RUN_IDS]
    if key in run_ids:
        return run_ids[key]
    waiting = st.session_state.get(state.TEMPLATE_VERSION)
    waiting_key = waiting[0] if version_id is None and waiting and waiting[1] is None else None
    browser, by = browser_id(), current_author()

    def save(opened) -> int:
        linked = version_id
        if linked is None and waiting_key:
            written = st.session_state.get(state.TEMPLATE_VERSION)
            linked = written[1] if written and written[0] == waiting_key else None
        run_id = opened.record_run(generation, model, precision, settings, variables, linked, browser, by)
        st.session_state[state.RUN_IDS][key] = run_id
        return run_id

    run_ids[key] = None  # queued or written: not again in this session
    run_id = write("the generation", save)
    return None if run_id is FAILED else run_id


def remember_salience(
    result: SalienceResult, model: str, precision: str, prompt: str, target: str, span: tuple[int, int] | None
) -> None:
    """Save a salience result once per session (reruns show the same cached result)."""
    key = (model, precision, prompt, target, span, tuple(sorted(result.scores)))
    if key in st.session_state[state.RECORDED_SALIENCE]:
        return
    st.session_state[state.RECORDED_SALIENCE].add(key)

    def save(opened) -> None:
        run_id = st.session_state[state.RUN_IDS].get((model, precision, prompt, target))
        opened.record_salience(result, model, precision, prompt, target, span, run_id)

    write("the explanation", save)
