"""Shared widgets: template editor with variables, generation settings, salience controls."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components import state
from salience.errors import InputError
from salience.methods import REGISTRY
from salience.model import unescape
from salience.samples import PromptExample, load_samples, parse_jsonl
from salience.segments import AGGREGATIONS, GRANULARITIES
from salience.templates import RenderedPrompt, TemplateError, parse_template, render
from salience.types import GenerationSettings

MONOSPACE = """<style>
.stTextArea textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
</style>"""
MAX_TEMPLATE_CHARS = 100_000


def _examples() -> list[PromptExample]:
    return load_samples() + list(st.session_state.get(state.UPLOADED_EXAMPLES) or [])


def _apply_example(example: PromptExample) -> None:
    st.session_state[state.TEMPLATE] = example.template
    st.session_state[state.VARIABLES] = dict(example.variables)
    for name, value in example.variables.items():
        st.session_state[state.VARIABLE_WIDGET_PREFIX + name] = value
    st.session_state[state.REFERENCE_TARGET] = example.target or ""
    st.session_state[state.USE_REFERENCE] = bool(example.target)
    st.session_state[state.SELECTION] = None
    st.session_state[state.LOADED_SAMPLE] = example.source


def _on_sample_change() -> None:
    source = st.session_state[state.SAMPLE_SOURCE]
    for example in _examples():
        if example.source == source:
            _apply_example(example)
            return


def _on_variable_change(name: str) -> None:
    st.session_state[state.VARIABLES][name] = st.session_state[state.VARIABLE_WIDGET_PREFIX + name]


def template_editor() -> RenderedPrompt | None:
    """Sample picker, upload, template editor and one input per variable; returns the rendered prompt."""
    st.html(MONOSPACE)
    examples = _examples()
    if st.session_state.get(state.LOADED_SAMPLE) is None:
        for example in examples:
            if example.source == st.session_state[state.SAMPLE_SOURCE]:
                _apply_example(example)
    sources = [example.source for example in examples]
    notes = {example.source: example.notes for example in examples}
    st.selectbox(
        "Sample prompt",
        sources,
        key=state.SAMPLE_SOURCE,
        persist_state="session",
        on_change=_on_sample_change,
        help="Loads a template and its variables; your edits to the current one are replaced.",
    )
    if notes.get(st.session_state[state.SAMPLE_SOURCE]):
        st.caption(notes[st.session_state[state.SAMPLE_SOURCE]])
    upload = st.file_uploader(
        "Your prompts (JSONL)",
        type=["jsonl", "json", "txt"],
        help="One JSON object per line: {'prompt': ..., 'target': ...} or {'template': ..., 'variables': {...}}.",
    )
    if upload is not None:
        try:
            loaded = parse_jsonl(upload.getvalue())
        except InputError as error:
            st.error(f"{upload.name}: {error}", icon="⚠️")
        else:
            st.session_state[state.UPLOADED_EXAMPLES] = loaded
            st.caption(f"Loaded {len(loaded)} prompts from {upload.name}; pick them above.")
    st.text_area(
        "Prompt template",
        key=state.TEMPLATE,
        persist_state="session",
        height=320,
        max_chars=MAX_TEMPLATE_CHARS,
        help="Write {name} for a variable and {{ or }} for a literal brace.",
    )
    try:
        template = parse_template(st.session_state[state.TEMPLATE])
    except TemplateError as error:
        st.error(str(error), icon="⚠️")
        return None
    values: dict[str, str] = st.session_state[state.VARIABLES]
    if template.variables:
        st.markdown("**Variables**")
    for name in template.variables:
        widget = state.VARIABLE_WIDGET_PREFIX + name
        if widget not in st.session_state:
            st.session_state[widget] = values.get(name, "")
        st.text_area(
            name, key=widget, persist_state="session", height=68, on_change=_on_variable_change, args=(name,)
        )
        values[name] = st.session_state[widget]
    rendered = render(template, {name: values.get(name, "") for name in template.variables})
    if not rendered.text.strip():
        st.warning("The prompt is empty: write a template or pick a sample.")
        return None
    return rendered


def generation_settings() -> GenerationSettings:
    """Max new tokens, stop sequences, greedy or sampling; returns the settings."""
    with st.expander("Generation settings"):
        st.number_input(
            "Max new tokens",
            min_value=1,
            max_value=512,
            step=8,
            key=state.MAX_NEW_TOKENS,
            persist_state="session",
        )
        st.text_input(
            "Stop sequences",
            key=state.STOP_SEQUENCES,
            persist_state="session",
            help=r"Separate several with |. Write \n for a newline: \n\n stops at a blank line.",
        )
        st.toggle("Sample (instead of greedy)", key=state.SAMPLING, persist_state="session")
        if st.session_state[state.SAMPLING]:
            st.slider("Temperature", 0.05, 2.0, key=state.TEMPERATURE, persist_state="session", step=0.05)
            st.number_input(
                "Top-k (0 = off)", min_value=0, max_value=1000, key=state.TOP_K, persist_state="session"
            )
            st.slider("Top-p", 0.05, 1.0, key=state.TOP_P, persist_state="session", step=0.05)
            st.number_input("Seed", min_value=0, max_value=2**31 - 1, key=state.SEED, persist_state="session")
        st.checkbox(
            "Wrap in Gemma chat turns (instruct models)", key=state.CHAT_TEMPLATE, persist_state="session"
        )
    return current_settings()


def current_settings() -> GenerationSettings:
    """The generation settings in session state (set on the workbench, shared by the compare page)."""
    stops = tuple(unescape(part) for part in st.session_state[state.STOP_SEQUENCES].split("|") if part)
    sampling = st.session_state[state.SAMPLING]
    return GenerationSettings(
        max_new_tokens=int(st.session_state[state.MAX_NEW_TOKENS]),
        stop_sequences=stops,
        temperature=float(st.session_state[state.TEMPERATURE]) if sampling else 0.0,
        top_k=int(st.session_state[state.TOP_K]) or None if sampling else None,
        top_p=float(st.session_state[state.TOP_P]) if sampling else None,
        seed=int(st.session_state[state.SEED]) if sampling else None,
        chat_template=bool(st.session_state[state.CHAT_TEMPLATE]),
    )


@dataclass(frozen=True)
class ControlKeys:
    """Session keys of one set of salience controls (the workbench's or the compare page's)."""

    method: str
    granularity: str
    regex: str
    aggregation: str
    intensity: str


WORKBENCH_CONTROLS = ControlKeys(
    state.METHOD, state.GRANULARITY, state.REGEX, state.AGGREGATION, state.INTENSITY
)
COMPARE_CONTROLS = ControlKeys(
    state.COMPARE_METHOD,
    state.COMPARE_GRANULARITY,
    state.COMPARE_REGEX,
    state.COMPARE_AGGREGATION,
    state.COMPARE_INTENSITY,
)


def salience_controls(keys: ControlKeys = WORKBENCH_CONTROLS) -> tuple[str, str, str | None, str, float]:
    """Method, granularity (+ custom pattern), aggregation and colour intensity."""
    method_col, granularity_col, intensity_col = st.columns([3, 2, 2])
    method_col.radio(
        "Method",
        list(REGISTRY),
        key=keys.method,
        persist_state="session",
        format_func=lambda name: REGISTRY[name].label,
        horizontal=True,
        help="Grad L2: how sensitive the selection is to each part. Grad·Input and Integrated Gradients "
        "are signed: positive pushed the model toward the selection. Integrated Gradients is slower.",
    )
    granularity_col.selectbox("Granularity", GRANULARITIES, key=keys.granularity, persist_state="session")
    intensity_col.slider(
        "Intensity",
        0.25,
        4.0,
        key=keys.intensity,
        persist_state="session",
        step=0.25,
        help="Brighten faint colours.",
    )
    pattern = None
    if st.session_state[keys.granularity] == "regex":
        pattern = st.text_input(
            "Segment starts at (regular expression)", key=keys.regex, persist_state="session"
        )
    with st.expander("Aggregation"):
        st.radio(
            "Segment score", AGGREGATIONS, key=keys.aggregation, persist_state="session", horizontal=True
        )
    return (
        st.session_state[keys.method],
        st.session_state[keys.granularity],
        pattern,
        st.session_state[keys.aggregation],
        float(st.session_state[keys.intensity]),
    )
