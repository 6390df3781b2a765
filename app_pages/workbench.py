"""Workbench: edit a template, generate, click the output, see what in the prompt drove it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import deletion, state, workspace
from components.bars import segment_bars_html
from components.comparison import pin_workbench
from components.heatmap import heatmap
from components.model_resource import LOADING, registry
from components.sidebar import loading_notice, model_sidebar, no_model_text
from components.widgets import (
    ENGINEER_DETAILS,
    STOP_REASONS,
    generation_settings,
    plain_markdown,
    salience_controls,
    template_editor,
)
from components.workspace import autosaved
from salience.attribution.methods import get_method
from salience.core.errors import WorkbenchError
from salience.model.engine import EngineCalls
from salience.prompts.variant_comparison import MAX_VARIANTS
from salience.report.views import chart_rows, find_selection, heatmap_view, legend_words, readout, slot_table

# Side by side when both halves get ~23rem; stacked (editor, then output) on narrower screens such
# as 1024 px with the sidebar open, instead of squeezing labels and select boxes.
COLUMNS_CSS = """<style>
.st-key-workbench-columns [data-testid="stHorizontalBlock"]:not([data-testid="stColumn"] *) { flex-wrap: wrap; }
.st-key-workbench-columns [data-testid="stColumn"]:not([data-testid="stColumn"] *) { min-width: min(100%, 23rem); }
</style>"""
EXPLAIN_HINT = (
    "Click any part of the output to explain it (shift-click extends, click the background to clear)."
)


def _on_select(prompt_length: int, text: str) -> None:
    """Store a click on the heatmap (drawn over ``text``, the prompt and the explained text) as a
    selection relative to the explained text."""
    event = st.session_state[state.WORKBENCH_CONTROLS.heatmap].get("select")
    if not event:
        return
    page = state.workbench()
    if event.get("clear"):
        page.selection = None
        return
    start, end = int(event["start"]), int(event["end"])
    page.selection = (start - prompt_length, end - prompt_length, text[start:end])


def _generate(model: EngineCalls, prompt: str, settings, precision: str, placeholder) -> None:
    final = None
    try:
        for final in registry().stream(model, prompt, settings, precision):
            placeholder.code(final.text + " ▌", language=None, wrap_lines=True)
    except WorkbenchError as error:
        placeholder.empty()
        st.error(str(error), icon="⚠️")
        return
    placeholder.empty()
    page = state.workbench()
    page.generation = final
    page.generated_for = (model.spec, precision, prompt, settings)
    values = page.variables
    workspace.remember_run(final, model.spec, precision, settings, dict(values), workspace.template_version())


def _generation_caption(generation) -> tuple[str, str]:
    """A plain line for everyone, and the technical numbers for its help tooltip."""
    plain = f"Written in {generation.seconds:.1f} s · {STOP_REASONS.get(generation.stop_reason, '')}"
    technical = (
        f"{len(generation.token_ids)} tokens at {generation.tokens_per_second:.1f} tokens/s; "
        f"first token after {generation.first_token_seconds:.2f} s; stop reason: {generation.stop_reason}."
    )
    return plain, technical


@autosaved
def page() -> None:
    model = model_sidebar(notice_in_main=True)
    st.title("Prompt workbench")
    st.caption(
        "Edit the prompt, generate, then click part of the output to see which parts of the prompt drove it."
    )
    starting = loading_notice()  # "Loading the model (about N s)…" while it starts; never waits
    if model is None and starting.phase != LOADING:
        st.info(no_model_text())
    st.html(COLUMNS_CSS)
    editor, viewer = st.container(key="workbench-columns").columns([2, 3], gap="large")
    with editor:
        rendered = template_editor()
        settings = generation_settings()
        _reference_target()
        generate_clicked = _actions(model, rendered, starting)
        output_area = st.container()  # the output streams here, in view beside the button
        generate_clicked = _pending_generate(model, generate_clicked, starting, output_area)
    with viewer:
        if rendered is None:
            st.info("Fix the template on the left to see the prompt here.")
            return
        if model is None:
            if starting.phase == LOADING:
                st.info("The output and its explanation appear here once the model is ready.")
            return
        _view(model, rendered, settings, generate_clicked, output_area)


def _reference_target() -> None:
    """The optional reference text and the box that explains it instead of the output."""
    st.text_area(
        "Reference target (optional)",
        key=state.REFERENCE_TARGET,
        persist_state="session",
        height=80,
        help="Text you expect after the prompt. Tick the box to explain it instead of the model's output.",
    )
    st.checkbox(
        "Explain the reference target instead of the output",
        key=state.USE_REFERENCE,
        persist_state="session",
    )


def _actions(model, rendered, starting) -> bool:
    """Generate, Send to compare and Auto re-run in one row, then the pin's toast and the link to
    Compare; returns whether Generate was clicked."""
    row = st.container(horizontal=True, wrap=True, vertical_alignment="center")  # wraps, never truncates
    generate_clicked = row.button(
        "Generate",
        type="primary",
        disabled=rendered is None or (model is None and starting.phase != LOADING),
        width="content",
    )
    row.button(
        "📌 Send to compare",
        on_click=pin_workbench,
        disabled=rendered is None,
        width="content",
        help="Pin this prompt (and its output) as a variant on the Compare page.",
    )
    row.toggle(
        "Auto re-run",
        key=state.AUTO_RERUN,
        persist_state="session",
        help="Regenerate and recompute salience whenever the prompt changes.",
    )
    page = state.workbench()
    if page.pin_message:
        st.toast(page.pin_message)
        page.pin_message = None
    pinned = len(state.compare().variants)
    if pinned:  # stays in view, so a pin that did not take is visible at once
        st.page_link(
            "app_pages/compare.py",
            label=f"Open Compare ({pinned} of {MAX_VARIANTS} variants pinned)",
            icon="⚖️",
        )
    return generate_clicked


def _pending_generate(model, clicked: bool, starting, output_area) -> bool:
    """A Generate clicked while the model loads runs once it is ready; until then it says so."""
    page = state.workbench()
    if model is None:
        if clicked:
            page.generate_pending = True
        if page.generate_pending:
            output_area.info(f"Generate runs as soon as the model is ready ({starting.eta}).", icon="⏳")
        return False
    if page.generate_pending:
        page.generate_pending = False
        return True
    return clicked


def _view(model: EngineCalls, rendered, settings, generate_clicked: bool, output_area) -> None:
    precision = st.session_state[state.PRECISION]
    prompt = rendered.text
    shown = _output(model, prompt, settings, precision, generate_clicked, output_area)
    if shown is None:
        return
    target, stale = shown
    method, granularity, pattern, aggregation, intensity = salience_controls()
    granularity, pattern, span = _selected_span(
        model, rendered, target, method, granularity, pattern, aggregation
    )
    explained = target[span[0] - len(prompt) : span[1] - len(prompt)] if span else target
    methods = deletion.gradient_methods(method)
    deletion.cancel_stale(model, precision, prompt, target, span)  # a stale run lets go of the model
    try:
        with st.spinner(f"Explaining “{plain_markdown(explained.strip()[:60])}”…"):
            segments = deletion.click_segments(model, prompt, target, granularity, pattern, rendered)
            result = registry().salience(model, prompt, target, span, methods, precision, segments)
    except WorkbenchError as error:
        st.error(str(error), icon="⚠️")
        return
    workspace.remember_salience(result, model.spec, precision, prompt, target, span)
    follow = deletion.resolve(
        model, precision, prompt, target, span, result, method, granularity, pattern, rendered
    )
    result, method = follow.result, follow.method  # the first colours until a chosen Deletion is ready
    view = heatmap_view(
        result.text, result.offsets, len(prompt), granularity, method, result, rendered, pattern, aggregation
    )
    label = "the whole output" if span is None else f"“{explained.strip()}”"
    status = f"Explaining: {label} · {get_method(method).label} · {granularity}"
    heatmap(
        view.cells(len(prompt)),
        method=method,
        signed=view.signed,
        scale=view.scale,
        intensity=intensity,
        selection=span,
        status=status if span else f"{status} — {EXPLAIN_HINT}",
        stale=stale,
        key=state.WORKBENCH_CONTROLS.heatmap,
        on_select=_on_select,
        on_select_args=(len(prompt), prompt + target),
    )
    st.markdown(f"**Reading:** {plain_markdown(readout(view, result, rendered))}")
    deletion.agreement(follow, aggregation, rendered)
    deletion.what_if(model, precision, prompt, settings, view, result, rendered)
    _analysis(view, result, rendered, method)


def _output(model, prompt: str, settings, precision: str, generate_clicked: bool, output_area):
    """Generate when asked (or when the prompt changed and auto-rerun is on) and say what the
    output is; returns (the text to explain, whether it is stale) or None when there is none."""
    inputs_key = (model.spec, precision, prompt, settings)
    page = state.workbench()
    current = page.generation
    up_to_date = page.generated_for == inputs_key
    placeholder = output_area.empty()
    if generate_clicked or (not up_to_date and current is not None and st.session_state[state.AUTO_RERUN]):
        deletion.cancel_stale(model, precision, prompt)  # a run for an older prompt lets go of the model
        with output_area, st.spinner("Generating…"):
            _generate(model, prompt, settings, precision, placeholder)
        current = page.generation
        up_to_date = page.generated_for == inputs_key
    use_reference = st.session_state[state.USE_REFERENCE] and st.session_state[state.REFERENCE_TARGET]
    target = st.session_state[state.REFERENCE_TARGET] if use_reference else (current.text if current else "")
    if current is not None and not use_reference:
        plain, technical = _generation_caption(current)
        st.caption(("" if up_to_date else "⚠ Output is from an earlier prompt · ") + plain, help=technical)
    if not target:
        if current is not None and not use_reference:
            st.warning(
                "The model wrote nothing. Try more new tokens, another stop sequence, or edit the prompt."
            )
        else:
            st.info("Press **Generate** to continue the prompt, or give a reference target to explain.")
        return None
    if not up_to_date and not use_reference:
        st.warning("The prompt changed since this output was generated. Press **Generate** to refresh it.")
    return target, not up_to_date and not use_reference


def _selected_span(model, rendered, target: str, method, granularity, pattern, aggregation):
    """The clicked part of the output widened to whole segments (remembered widened, so switching
    granularity back never shrinks it); a bad pattern falls back to tokens.
    Returns (granularity, pattern, character span in prompt + target or None)."""
    prompt = rendered.text
    text = prompt + target
    offsets = _offsets(model, prompt, target)

    def segmented(granularity: str, pattern: str | None):
        return heatmap_view(
            text,
            offsets,
            len(prompt),
            granularity,
            method,
            rendered=rendered,
            pattern=pattern,
            aggregation=aggregation,
        )

    try:
        base = segmented(granularity, pattern)
    except WorkbenchError as error:
        st.error(f"{error} Showing tokens instead.", icon="⚠️")
        granularity, pattern = "tokens", None
        base = segmented(granularity, pattern)
    page = state.workbench()
    selection = page.selection
    if not selection:
        return granularity, pattern, None
    start, end, *chosen = selection
    span = find_selection(base.segments, text, len(prompt), (start, end), "".join(chosen))
    if span:
        page.selection = (
            span[0] - len(prompt),
            span[1] - len(prompt),
            text[span[0] : span[1]],
        )
    return granularity, pattern, span


def _offsets(model: EngineCalls, prompt: str, target: str):
    return model.tokenize_pair(prompt, target)[0].offsets


def _analysis(view, result, rendered, method: str) -> None:
    spec = get_method(method)
    rows = chart_rows(view, result, rendered, limit=10)
    st.markdown(f"**Top prompt segments** · {spec.title}")
    if rows:
        st.html(segment_bars_html(rows, legend_words(method, view.scale)))
    st.markdown("**By template part**")
    parts = sorted(slot_table(result, rendered, method), key=lambda row: -row.share)  # strongest first
    table = pd.DataFrame(
        [
            {
                "part": row.label or row.name,
                "kind": "your value" if row.kind == "variable" else "fixed text",
                "share": row.share,
            }
            for row in parts
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "part": st.column_config.TextColumn(width="medium"),
            "kind": st.column_config.TextColumn(width="small"),
            "share": st.column_config.ProgressColumn(
                "share of the colour", min_value=0.0, max_value=1.0, format="percent", width="medium"
            ),
        },
    )
    st.caption(
        f"Each part of the template, strongest first, by the same {spec.label} colours as the prompt: "
        "how much of all the colour in the prompt falls in it."
    )
    with st.expander(ENGINEER_DETAILS):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "part": row.label or row.name,
                        "total": row.total,
                        "per token": row.mean,
                        "tokens": row.tokens,
                    }
                    for row in parts
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "total": st.column_config.NumberColumn(format="%.3f"),
                "per token": st.column_config.NumberColumn(format="%.3f"),
            },
        )
        st.caption("Share and total ignore the sign of the scores; per token divides by the part's length.")


page()
