"""Shared widgets: template editor with variables, generation settings, salience controls."""

from __future__ import annotations

import dataclasses
import re

import streamlit as st

from components import state
from salience.attribution.methods import DEFAULT_METHOD, DELETION, REGISTRY
from salience.core.errors import InputError
from salience.core.text import unescape
from salience.core.types import (
    MAX_SEED,
    MAX_TOP_K,
    PAGE_MAX_NEW_TOKENS,
    TEMPERATURE_RANGE,
    TOP_P_RANGE,
    GenerationSettings,
)
from salience.prompts.samples import load_samples, parse_jsonl
from salience.prompts.segments import AGGREGATIONS, GRANULARITIES
from salience.prompts.templates import RenderedPrompt, TemplateError, parse_template, render
from salience.prompts.variant import Variant

MONOSPACE = """<style>
.stTextArea textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
</style>"""
MAX_TEMPLATE_CHARS = 100_000
TEMPLATE_NEAR_LIMIT = 0.9  # from this share of the limit on, the box says how much room is left


CUSTOM = "Custom (edited)"
# Numbers only an engineer reads (scales, correlations, precisions, stop reasons, method names of
# statistics) live in an expander with this label; the browser tests reject them anywhere else.
ENGINEER_DETAILS = "Details for engineers"
STOP_REASONS = {  # a generation's stop reason in words
    "stop_sequence": "stopped at the stop text",
    "end_of_text": "the model finished",
    "max_new_tokens": "reached the length limit",
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$])")


def plain_markdown(text: str) -> str:
    """User text made safe inside ``st.markdown``: no emphasis, headings, links, LaTeX or colours."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


FIRST_WORDS = 6


def _examples() -> list[Variant]:
    return load_samples() + state.workbench().uploaded


def _apply_example(example: Variant) -> None:
    page = state.workbench()
    page.sample_source = example.name
    st.session_state[state.TEMPLATE] = example.template
    page.variables = dict(example.variables)
    for name, value in example.variables.items():
        st.session_state[state.VARIABLE_WIDGET_PREFIX + name] = value
    st.session_state[state.REFERENCE_TARGET] = example.target or ""
    st.session_state[state.USE_REFERENCE] = bool(example.target)
    page.selection = None
    page.loaded_sample = example.name


def _on_sample_change(examples: dict[str, Variant]) -> None:
    """Picking a sample (the same one too, after edits) loads it afresh."""
    chosen = examples.get(st.session_state[state.SAMPLE_PICKER])
    if chosen is not None:
        _apply_example(chosen)


def is_edited(example: Variant | None) -> bool:
    """True when the workbench's template or a value differs from ``example``."""
    if example is None or st.session_state[state.TEMPLATE] != example.template:
        return True
    values = state.workbench().variables
    return any(values.get(name, "") != value for name, value in example.variables.items())


def first_words(text: str, count: int = FIRST_WORDS, limit: int = 48) -> str:
    """'Translate to French: the cat…' — the first words of a text, on one line."""
    words = text.split()
    head = " ".join(words[:count])
    if len(head) > limit:
        head = head[: limit - 1].rstrip()
    return head + ("…" if len(words) > count or len(head) < len(" ".join(words[:count])) else "")


def name_uploads(file_name: str, examples: list[Variant]) -> list[Variant]:
    """Name uploaded prompts by their file and first words ('mine.jsonl · Translate to…'),
    or by the ``source`` a row gives; every name unique and distinct from the samples'."""
    taken = {example.name for example in load_samples()}
    named = []
    for example in examples:
        given = example.name if not re.fullmatch(r"row \d+", example.name) else ""
        try:
            text = example.render().text
        except InputError:
            text = example.template
        base = f"{file_name} · {given or first_words(text) or 'empty prompt'}"
        name, number = base, 2
        while name in taken:
            name, number = f"{base} ({number})", number + 1
        taken.add(name)
        named.append(dataclasses.replace(example, name=name))
    return named


def _on_upload() -> None:
    """Parse an uploaded file before the page runs, so its prompts are in the picker at once."""
    page = state.workbench()
    upload = st.session_state.get(state.UPLOADER)
    if upload is None:
        page.upload_message = None
        return
    try:
        loaded = parse_jsonl(upload.getvalue())
    except InputError as error:
        page.upload_message = ("error", plain_markdown(f"{upload.name}: {error}"))
        return
    page.uploaded = name_uploads(upload.name, loaded)
    count = f"{len(loaded)} prompt{'s' if len(loaded) != 1 else ''}"
    page.upload_message = (
        "info",
        f"Added {count} from {plain_markdown(upload.name)} to “Sample prompt” above.",
    )


def _on_variable_change(name: str) -> None:
    state.workbench().variables[name] = st.session_state[state.VARIABLE_WIDGET_PREFIX + name]


def template_editor() -> RenderedPrompt | None:
    """Sample picker, upload, template editor and one input per variable; returns the rendered prompt."""
    st.html(MONOSPACE)
    page = state.workbench()
    _sample_picker(page)
    _uploader(page)
    _template_box()
    try:
        template = parse_template(st.session_state[state.TEMPLATE])
    except TemplateError as error:
        st.error(str(error), icon="⚠️")
        return None
    values = _variable_inputs(template, page)
    rendered = render(template, {name: values.get(name, "") for name in template.variables})
    if not rendered.text.strip():
        st.warning("The prompt is empty: write a template or pick a sample.")
        return None
    return rendered


def _sample_picker(page) -> None:
    """The sample select ("Custom (edited)" once the template or values differ) and its notes."""
    examples = {example.name: example for example in _examples()}
    if page.loaded_sample is None and page.sample_source in examples:
        _apply_example(examples[page.sample_source])
    base = examples.get(page.sample_source)
    edited = is_edited(base)
    st.session_state[state.SAMPLE_PICKER] = CUSTOM if edited else base.name
    st.selectbox(
        "Sample prompt",
        ([CUSTOM] if edited else []) + list(examples),
        key=state.SAMPLE_PICKER,
        on_change=_on_sample_change,
        args=(examples,),
        help="Loads a template and its values. Once you edit them this shows “Custom (edited)”; "
        "pick a sample again to start over from it.",
    )
    if base is not None and base.notes and not edited:
        st.caption(plain_markdown(base.notes))


def _uploader(page) -> None:
    """The JSONL upload and what it said about the last file."""
    st.file_uploader(
        "Your prompts (JSONL)",
        type=["jsonl", "json", "txt"],
        key=state.UPLOADER,
        on_change=_on_upload,
        max_upload_size=5,  # MB: salience.prompts.samples.MAX_FILE_BYTES
        help="One JSON object per line: {'prompt': ..., 'target': ...} or {'template': ..., 'variables': {...}}.",
    )
    message = page.upload_message
    if message and st.session_state.get(state.UPLOADER) is not None:
        if message[0] == "error":
            st.error(message[1], icon="⚠️")
        else:
            st.caption(message[1])


def _template_box() -> None:
    """The template text area, with a note once it nears its size limit."""
    st.text_area(
        "Prompt template",
        key=state.TEMPLATE,
        persist_state="session",
        height=320,
        max_chars=MAX_TEMPLATE_CHARS,
        help="Write {name} for a variable and {{ or }} for a literal brace. "
        f"The box holds up to {MAX_TEMPLATE_CHARS:,} characters.",
    )
    length = len(st.session_state[state.TEMPLATE])
    if length >= TEMPLATE_NEAR_LIMIT * MAX_TEMPLATE_CHARS:
        st.caption(
            f"{length:,} of the {MAX_TEMPLATE_CHARS:,} characters the template box holds: "
            "it takes nothing beyond that (pasted text is cut there)."
        )


def _variable_inputs(template, page) -> dict[str, str]:
    """One text area per template variable; returns the page's values (updated from them)."""
    values = page.variables
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
    return values


def generation_settings() -> GenerationSettings:
    """Answer length (plain), then stop text, sampling and chat format under "Advanced"."""
    with st.expander("Generation settings"):
        st.number_input(
            "Longest answer (tokens)",
            min_value=1,
            max_value=PAGE_MAX_NEW_TOKENS,
            step=8,
            key=state.MAX_NEW_TOKENS,
            persist_state="session",
            help="A token is a word or a piece of one. The answer also ends where the stop text "
            "(Advanced) says, by default at a blank line.",
        )
        st.toggle(
            "Vary the answer (sampling)",
            key=state.SAMPLING,
            persist_state="session",
            help="Off: always the likeliest next word, so the same prompt gives the same answer.",
        )
    with st.expander("Advanced generation settings"):
        st.text_input(
            "Stop sequences",
            key=state.STOP_SEQUENCES,
            persist_state="session",
            help=r"Separate several with |. Write \n for a newline: \n\n stops at a blank line.",
        )
        if st.session_state[state.SAMPLING]:
            st.slider(
                "Temperature", *TEMPERATURE_RANGE, key=state.TEMPERATURE, persist_state="session", step=0.05
            )
            st.number_input(
                "Top-k (0 = off)", min_value=0, max_value=MAX_TOP_K, key=state.TOP_K, persist_state="session"
            )
            st.slider("Top-p", *TOP_P_RANGE, key=state.TOP_P, persist_state="session", step=0.05)
            st.number_input("Seed", min_value=0, max_value=MAX_SEED, key=state.SEED, persist_state="session")
        else:
            st.caption("Temperature, top-k, top-p and seed appear when “Vary the answer” is on.")
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


GRANULARITY_NAMES = {
    "slots": "template parts",
    "regex": "custom pattern",
    "words": "words (finer)",
    "tokens": "tokens (finest)",
}
# What a reviewer reads first: whole sentences (a line of a few-shot example is one), then
# coarser units; words and tokens are the "finer" end of the same control.
GRANULARITY_ORDER = ("sentences", "lines", "paragraphs", "slots", "words", "tokens", "regex")


def method_choices() -> list[str]:
    """The default first (the Deletion estimate: faithful first colours at the speed of a click),
    then Deletion (the reference it is checked against), then the other methods."""
    first = [name for name in (DEFAULT_METHOD, DELETION, "grad_l2") if name in REGISTRY]
    return first + [name for name in REGISTRY if name not in first]


def method_help() -> str:
    """Every method's plain title and honest description, for the method picker's help."""
    return "\n\n".join(
        f"**{REGISTRY[name].title}.** {REGISTRY[name].description}" for name in method_choices()
    )


def method_line(method: str) -> str:
    """One line a reviewer understands: what the colours show, and where to change them."""
    spec = REGISTRY[method]
    default = " (the default)" if method == DEFAULT_METHOD else ""
    return f"**Colours:** {spec.label}{default} — {spec.plain}. Other methods are under **Advanced**."


def salience_controls(
    keys: state.ControlKeys = state.WORKBENCH_CONTROLS,
) -> tuple[str, str, str | None, str, float]:
    """Method, granularity (+ custom pattern), colour intensity; aggregation under "Advanced"."""
    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on narrow screens, never truncates
    row.selectbox(
        "Granularity",
        [name for name in GRANULARITY_ORDER if name in GRANULARITIES]
        + [name for name in GRANULARITIES if name not in GRANULARITY_ORDER],
        key=keys.granularity,
        persist_state="session",
        format_func=lambda name: GRANULARITY_NAMES.get(name, name),
        help="How big the coloured pieces of the prompt are, and what a click on the output explains: "
        "sentences (a line of an example is one sentence), lines, paragraphs or the template's parts; "
        "words and tokens are finer; a custom pattern starts a piece wherever it matches.",
        width=190,
    )
    row.slider(
        "Intensity",
        0.25,
        4.0,
        key=keys.intensity,
        persist_state="session",
        step=0.25,
        help="Brighten faint colours.",
        width=190,
    )
    if st.session_state[keys.granularity] == "regex":
        st.text_input("Segment starts at (regular expression)", key=keys.regex, persist_state="session")
    st.markdown(method_line(st.session_state[keys.method]))
    with st.expander("Advanced"):
        choices = method_choices()
        st.radio(
            "Method",
            choices,
            key=keys.method,
            persist_state="session",
            format_func=lambda name: REGISTRY[name].title,
            captions=[REGISTRY[name].trust for name in choices],
            help=method_help(),
        )
        st.radio(
            "Segment score (aggregation of its tokens)",
            AGGREGATIONS,
            key=keys.aggregation,
            persist_state="session",
            horizontal=True,
            help="sum: long segments can add up; mean: per token; max: the strongest token. "
            "Deletion already scores whole segments.",
        )
    return control_values(keys)


def control_values(keys: state.ControlKeys) -> tuple[str, str, str | None, str, float]:
    """Method, granularity, pattern (None unless the granularity is "regex"), aggregation and
    intensity as the controls of ``keys`` hold them (drawn or not)."""
    granularity = st.session_state[keys.granularity]
    return (
        st.session_state[keys.method],
        granularity,
        st.session_state[keys.regex] if granularity == "regex" else None,
        st.session_state[keys.aggregation],
        float(st.session_state[keys.intensity]),
    )
