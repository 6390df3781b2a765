""" "What if I delete this?": regenerate without one prompt segment and show what changed."""

from __future__ import annotations

import html

import streamlit as st

from components import state
from components.diff_view import diff_html
from components.model_resource import registry
from components.widgets import plain_markdown
from salience.attribution.agreement import (
    without_segment,
)
from salience.core.errors import WorkbenchError
from salience.core.text import excerpt
from salience.core.types import GenerationSettings, SalienceResult
from salience.prompts.describe import describe_segments
from salience.prompts.templates import RenderedPrompt
from salience.prompts.variant_comparison import output_diff
from salience.report.views import ranking
from salience.report.whatif import counterpart


# ---- "What if I delete this?" -------------------------------------------------------------
def _choices(view, result: SalienceResult, rendered: RenderedPrompt | None) -> list[tuple[int, int, str]]:
    """Prompt segments as (start, end, label), in the page's one ranking (strongest first)."""
    places = describe_segments(
        view.segments, result.text, result.prompt_length, rendered.slots if rendered else ()
    )
    order = ranking(view, result)
    if view.scale <= 0:
        order = sorted(order)
    choices = []
    for index in order:
        seg = view.segments[index]
        where = places[index]
        label = f"“{excerpt(seg.text, 60)}”" + (f" — {where}" if where else "")
        choices.append((seg.start, min(seg.end, result.prompt_length), label))
    return choices


def _what_if_key(model, precision: str, prompt: str, settings: GenerationSettings) -> tuple:
    return (model.spec, precision, prompt, settings)


def _run_what_if(model, precision: str, prompt: str, settings, start: int, end: int, placeholder) -> None:
    removed = prompt[start:end]
    try:
        shorter = without_segment(prompt, start, end)
        *_, before = registry().stream(model, prompt, settings, precision)
        after = None
        for after in registry().stream(model, shorter, settings, precision):
            placeholder.code(after.text + " ▌", language=None, wrap_lines=True)
    except WorkbenchError as error:
        placeholder.empty()
        state.workbench().what_if = {
            "key": _what_if_key(model, precision, prompt, settings),
            "span": (start, end),
            "removed": removed,
            "error": str(error),
        }
        return
    placeholder.empty()
    state.workbench().what_if = {
        "key": _what_if_key(model, precision, prompt, settings),
        "span": (start, end),
        "removed": removed,
        "before": before.text,
        "after": after.text if after else "",
    }


def what_if(
    model,
    precision: str,
    prompt: str,
    settings: GenerationSettings,
    view,
    result: SalienceResult,
    rendered: RenderedPrompt | None,
) -> None:
    """A select of prompt segments (strongest first) and a button that regenerates without one."""
    st.markdown("**What if I delete this?**")
    if not _segment_select(view, result, rendered):
        return
    clicked = st.button("What if I delete this?", icon="✂️")
    placeholder = st.empty()
    if clicked:
        start, end = st.session_state[state.WHAT_IF_SEGMENT]
        with st.spinner("Regenerating without it…"):
            _run_what_if(model, precision, prompt, settings, start, end, placeholder)
    shown = state.workbench().what_if
    if not shown or shown["key"] != _what_if_key(model, precision, prompt, settings):
        return
    removed = excerpt(shown["removed"], 80)
    if "error" in shown:
        st.warning(f"Deleting “{plain_markdown(removed)}”: {plain_markdown(shown['error'])}", icon="⚠️")
        return
    _outcome(shown, removed, prompt, result)


def _segment_select(view, result: SalienceResult, rendered: RenderedPrompt | None) -> bool:
    """The select of prompt segments, on the strongest after a new click or ranking (False: none)."""
    choices = _choices(view, result, rendered)
    if not choices:
        st.info("The prompt has no segment to delete.", icon="ℹ️")
        return False
    spans = [(start, end) for start, end, _ in choices]
    labels = {(start, end): label for start, end, label in choices}
    page = state.workbench()
    ranking_now = (result.target_token_span, view.method, tuple(spans))
    if st.session_state.get(state.WHAT_IF_SEGMENT) not in labels or page.what_if_ranking != ranking_now:
        st.session_state[state.WHAT_IF_SEGMENT] = spans[0]  # a new click or ranking: its strongest part
        page.what_if_ranking = ranking_now
    st.selectbox(
        "Prompt segment to delete",
        spans,
        key=state.WHAT_IF_SEGMENT,
        format_func=labels.get,
        help="Listed strongest first by the colours shown. The prompt is regenerated without it, "
        "with the same generation settings.",
    )
    return True


def _outcome(shown: dict, removed: str, prompt: str, result: SalienceResult) -> None:
    """The selection's sentence before and after, and the whole outputs with their diff."""
    found = counterpart(shown["before"], shown["after"], _selection_in(result, shown["before"]))
    what = _removed_unit(prompt, *shown["span"])
    box = st.container(key="what-if-result")
    with box:
        st.markdown(f"**{plain_markdown(found.sentence(what))}**")
        left, right = st.columns(2)
        left.caption("Now")
        left.html(_big(found.old_sentence, "what-if-old"))
        right.caption(f"Without “{plain_markdown(removed)}”")
        right.html(_big(found.new_sentence, "what-if-new", _missing(found)))
        with st.expander("The whole output, before and after"):
            _whole_outputs(shown, removed)


def _whole_outputs(shown: dict, removed: str) -> None:
    diff = output_diff(shown["before"], shown["after"], "the full prompt's output", "the output without it")
    cols = st.columns(2)
    cols[0].caption("Output with the whole prompt")
    cols[0].code(shown["before"] or " ", language=None, wrap_lines=True)
    cols[1].caption(f"Output without “{plain_markdown(removed)}”")
    cols[1].code(shown["after"] or " ", language=None, wrap_lines=True)
    st.html(diff_html(diff, test_id="what-if-diff"))
    unchanged = shown["before"] == shown["after"]
    summary = diff.summary[:1].upper() + diff.summary[1:]
    st.caption("The output did not change." if unchanged else plain_markdown(summary))


BIG_HTML = (
    '<div data-testid="{test_id}" style="font-size:1.3rem;line-height:1.45;padding:.6rem .8rem;'
    'border:1px solid #d4d4d8;border-radius:8px;white-space:pre-wrap">{text}</div>'
)


def _big(text: str | None, test_id: str, missing: str = "") -> str:
    shown = html.escape(text) if text else f'<span style="opacity:.65">{html.escape(missing)}</span>'
    return BIG_HTML.format(test_id=test_id, text=shown)


def _missing(found) -> str:
    if not found.new_output.strip():
        return "(the model writes nothing)"
    return f"(no {found.label} line)" if found.label else "(nothing in its place)"


def _selection_in(result: SalienceResult, output: str) -> tuple[int, int]:
    """The explained characters relative to ``output`` (all of it when the explained text is not
    this output, e.g. a reference target)."""
    if result.text[result.prompt_length :] != output:
        return 0, len(output)
    start, end = result.target_token_span
    if end <= start:
        return 0, len(output)
    return (
        max(0, result.offsets[start][0] - result.prompt_length),
        max(0, result.offsets[end - 1][1] - result.prompt_length),
    )


def _removed_unit(prompt: str, start: int, end: int) -> str:
    """'line' when the deleted text is a whole line of the prompt, else 'part'."""
    text = prompt[start:end]
    first = start + len(text) - len(text.lstrip())
    last = start + len(text.rstrip())
    starts_line = first == 0 or prompt[:first].endswith("\n") or prompt[:first].rstrip(" \t").endswith("\n")
    ends_line = last >= len(prompt) or prompt[last:].lstrip(" \t").startswith("\n")
    return "line" if starts_line and ends_line else "part"
