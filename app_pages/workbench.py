"""Workbench: edit a template, generate, click the output, see what in the prompt drove it."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from components import state, workspace
from components.comparison import pin_workbench
from components.heatmap import heatmap
from components.model_resource import registry
from components.sidebar import model_sidebar
from components.widgets import generation_settings, salience_controls, template_editor
from components.workspace import autosaved
from salience.errors import WorkbenchError
from salience.methods import DEFAULT_METHODS, get_method
from salience.model import LanguageModel
from salience.views import find_selection, heatmap_view, readout, slot_table, top_segments

EXPLAIN_HINT = (
    "Click any part of the output to explain it (shift-click extends, click the background to clear)."
)


def _on_select() -> None:
    """Store a click on the heatmap as a selection relative to the explained text."""
    event = st.session_state[state.HEATMAP].get("select")
    if not event:
        return
    if event.get("clear"):
        st.session_state[state.SELECTION] = None
        return
    offset = st.session_state.get(state.PROMPT_LENGTH, 0)
    start, end = int(event["start"]), int(event["end"])
    chosen = st.session_state.get(state.EXPLAINED_TEXT, "")[start:end]
    st.session_state[state.SELECTION] = (start - offset, end - offset, chosen)


def _generate(model: LanguageModel, prompt: str, settings, precision: str, placeholder) -> None:
    final = None
    try:
        for final in registry().stream(model, prompt, settings, precision):
            placeholder.code(final.text + " ▌", language=None, wrap_lines=True)
    except WorkbenchError as error:
        placeholder.empty()
        st.error(str(error), icon="⚠️")
        return
    placeholder.empty()
    st.session_state[state.GENERATION] = final
    st.session_state[state.GENERATED_FOR] = (model.spec, precision, prompt, settings)
    values = st.session_state[state.VARIABLES]
    workspace.remember_run(final, model.spec, precision, settings, dict(values), workspace.template_version())


def _generation_caption(generation) -> str:
    reasons = {
        "stop_sequence": "hit a stop sequence",
        "end_of_text": "model ended",
        "max_new_tokens": "token limit",
    }
    return (
        f"{len(generation.token_ids)} tokens in {generation.seconds:.1f}s "
        f"({generation.tokens_per_second:.1f} tokens/s) · {reasons.get(generation.stop_reason, '')}"
    )


@autosaved
def page() -> None:
    model = model_sidebar()
    st.title("Prompt workbench")
    st.caption(
        "Edit the prompt, generate, then click part of the output to see which parts of the prompt drove it."
    )
    if model is None:
        st.info("No model is loaded. Pick one in the sidebar; the embedded Gemma 3 270M works offline.")
    editor, viewer = st.columns([2, 3], gap="large")
    with editor:
        rendered = template_editor()
        settings = generation_settings()
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
        cols = st.columns([1, 1, 1])
        generate_clicked = cols[0].button(
            "Generate", type="primary", disabled=model is None or rendered is None, width="stretch"
        )
        cols[1].button(
            "📌 Send to compare",
            on_click=pin_workbench,
            disabled=rendered is None,
            width="stretch",
            help="Pin this prompt (and its output) as a variant on the Compare page.",
        )
        if st.session_state[state.PIN_MESSAGE]:
            st.toast(st.session_state[state.PIN_MESSAGE])
            st.session_state[state.PIN_MESSAGE] = None
            st.page_link("app_pages/compare.py", label="Open Compare", icon="⚖️")
        cols[2].toggle(
            "Auto re-run",
            key=state.AUTO_RERUN,
            persist_state="session",
            help="Regenerate and recompute salience whenever the prompt changes.",
        )
    with viewer:
        if model is None or rendered is None:
            st.info("Fix the template on the left to see the prompt here.")
            return
        _view(model, rendered, settings, generate_clicked)


def _view(model: LanguageModel, rendered, settings, generate_clicked: bool) -> None:
    precision = st.session_state[state.PRECISION]
    prompt = rendered.text
    inputs_key = (model.spec, precision, prompt, settings)
    current = st.session_state[state.GENERATION]
    up_to_date = st.session_state[state.GENERATED_FOR] == inputs_key
    placeholder = st.empty()
    if generate_clicked or (not up_to_date and current is not None and st.session_state[state.AUTO_RERUN]):
        with st.spinner("Generating…"):
            _generate(model, prompt, settings, precision, placeholder)
        current = st.session_state[state.GENERATION]
        up_to_date = st.session_state[state.GENERATED_FOR] == inputs_key
    use_reference = st.session_state[state.USE_REFERENCE] and st.session_state[state.REFERENCE_TARGET]
    target = st.session_state[state.REFERENCE_TARGET] if use_reference else (current.text if current else "")
    if current is not None and not use_reference:
        st.caption(
            ("" if up_to_date else "⚠ Output is from an earlier prompt · ") + _generation_caption(current)
        )
    if not target:
        if current is not None and not use_reference:
            st.warning(
                "The model wrote nothing. Try more new tokens, another stop sequence, or edit the prompt."
            )
        else:
            st.info("Press **Generate** to continue the prompt, or give a reference target to explain.")
        return
    if not up_to_date and not use_reference:
        st.warning("The prompt changed since this output was generated. Press **Generate** to refresh it.")

    method, granularity, pattern, aggregation, intensity = salience_controls()
    st.session_state[state.PROMPT_LENGTH] = len(prompt)
    st.session_state[state.EXPLAINED_TEXT] = prompt + target
    offsets = _offsets(model, prompt, target)

    def segmented(granularity: str, pattern: str | None):
        return heatmap_view(
            prompt + target,
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
    selection = st.session_state[state.SELECTION]
    span = None
    if selection:
        start, end, *chosen = selection
        span = find_selection(base.segments, prompt + target, len(prompt), (start, end), "".join(chosen))
    explained = target[span[0] - len(prompt) : span[1] - len(prompt)] if span else target
    methods = DEFAULT_METHODS if method in DEFAULT_METHODS else (method,)
    try:
        with st.spinner(f"Recomputing salience for “{explained.strip()[:60]}”…"):
            result = registry().salience(model, prompt, target, span, methods, precision)
    except WorkbenchError as error:
        st.error(str(error), icon="⚠️")
        return
    workspace.remember_salience(result, model.spec, precision, prompt, target, span)
    view = heatmap_view(
        result.text, result.offsets, len(prompt), granularity, method, result, rendered, pattern, aggregation
    )
    label = "the whole output" if span is None else f"“{explained.strip()}”"
    status = f"Explaining: {label} · {get_method(method).label} · {granularity}"
    heatmap(
        view.cells(len(prompt)),
        signed=view.signed,
        scale=view.scale,
        intensity=intensity,
        selection=span,
        status=status if span else f"{status} — {EXPLAIN_HINT}",
        stale=not up_to_date and not use_reference,
        key=state.HEATMAP,
        on_select=_on_select,
    )
    st.markdown(f"**Reading:** {readout(view, result, rendered)}")
    _analysis(view, result, rendered, method)


def _offsets(model: LanguageModel, prompt: str, target: str):
    return model.tokenize_pair(prompt, target)[0].offsets


def _analysis(view, result, rendered, method: str) -> None:
    chart_col, table_col = st.columns(2)
    rows = top_segments(view, limit=10)
    with chart_col:
        st.markdown("**Top prompt segments**")
        if rows:
            frame = pd.DataFrame(rows)
            frame["segment"] = [text if len(text) < 60 else text[:57] + "…" for text in frame["segment"]]
            if view.signed:  # the heatmap's colours: teal toward, orange away
                colour = alt.condition("datum.score > 0", alt.value("#009688"), alt.value("#e66100"))
            else:
                colour = alt.value("#6d28d9")
            chart = (
                alt.Chart(frame)
                .mark_bar()
                .encode(
                    x=alt.X("score:Q", title=get_method(method).label),
                    y=alt.Y("segment:N", sort=None, title=None),
                    color=colour,
                    tooltip=["segment", alt.Tooltip("score:Q", format=".4f")],
                )
                .properties(height=28 * len(rows) + 20)
            )
            st.altair_chart(chart, width="stretch")
    with table_col:
        st.markdown("**By template part**")
        table = pd.DataFrame(
            [
                {
                    "part": row.name,
                    "kind": row.kind,
                    "total": row.total,
                    "share": row.share,
                    "per token": row.mean,
                    "tokens": row.tokens,
                }
                for row in slot_table(result, rendered, method)
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "share": st.column_config.ProgressColumn(
                    "share", min_value=0.0, max_value=1.0, format="percent"
                ),
                "total": st.column_config.NumberColumn(format="%.4f"),
                "per token": st.column_config.NumberColumn(format="%.4f"),
            },
        )
        st.caption(
            "Share = the part's |total| over all parts; 'per token' keeps long parts from winning by length."
        )


page()
