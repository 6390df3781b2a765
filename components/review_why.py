"""“Why does it say that?” on the reviewer's page: once the answer is saved (so it cannot sway
the judgement), either reply can be explained with the workbench's click-to-explain heatmap, its
default method and its plain reading."""

from __future__ import annotations

import streamlit as st

from components import deletion, state
from components.heatmap import heatmap
from components.model_resource import LOADING, registry
from components.sidebar import loading_notice
from components.widgets import plain_markdown
from salience.attribution import methods
from salience.core.errors import WorkbenchError
from salience.evaluation.review_stats import ReviewItem
from salience.prompts.templates import parse_template, render
from salience.report.views import find_selection, heatmap_view, readout
from workspace.reviews import StoredReview

HINT = "Click any part of the reply to see what in the request led to it."


def _on_select(key: str, prompt_length: int, text: str) -> None:
    event = (st.session_state.get(key) or {}).get("select")
    chosen = state.review().why
    if not event or event.get("clear"):
        chosen.pop(key, None)
        return
    start, end = int(event["start"]), int(event["end"])
    chosen[key] = (start - prompt_length, end - prompt_length, text[start:end])


def explain(review: StoredReview, item: ReviewItem, left: int) -> None:
    """The "Why does it say that?" choice of reply, and its explanation."""
    side = st.pills(
        "Why does it say that?",
        ["A", "B"],
        format_func=lambda s: f"Explain reply {s}",
        key=state.child_key(state.REVIEW_WHY, item.id),
        help="Your answer is saved first, so the explanation cannot change it.",
    )
    if side is None:
        return
    variant = left if side == "A" else 1 - left
    template = str(review.variants[variant].get("template") or "")
    output = item.outputs[variant]
    if not template or not output.strip():
        st.info("This reply cannot be explained: the request it answered was not kept.", icon="ℹ️")
        return
    status = loading_notice()  # while the model starts: a live notice, and a rerun once it is ready
    model = registry().model(status.spec) if status.usable else None
    if model is None:
        if status.phase != LOADING:
            st.info("The explanation is not available right now; try again in a minute.", icon="⏳")
        return
    try:
        rendered = render(parse_template(template), dict(item.values[variant]))
    except WorkbenchError:
        st.info("This reply cannot be explained: its request could not be rebuilt.", icon="ℹ️")
        return
    _draw(model, rendered, output, state.child_key(state.REVIEW_WHY_HEATMAP, f"{item.id}:{side}"))


def _draw(model, rendered, target: str, key: str) -> None:
    precision = st.session_state[state.PRECISION]
    prompt = rendered.text
    method = methods.DEFAULT_METHOD  # the page's default, whatever it is
    granularity = state.DEFAULTS[state.WORKBENCH_CONTROLS.granularity]
    text = prompt + target
    span = None
    chosen = state.review().why.get(key)
    try:
        with st.spinner("Working out what led to this reply…"):
            offsets = model.tokenize_pair(prompt, target)[0].offsets
            if chosen:
                base = heatmap_view(text, offsets, len(prompt), granularity, method, rendered=rendered)
                span = find_selection(base.segments, text, len(prompt), (chosen[0], chosen[1]), chosen[2])
            segments = deletion.click_segments(model, prompt, target, granularity, None, rendered)
            result = registry().salience(
                model, prompt, target, span, deletion.gradient_methods(method), precision, segments
            )
            follow = deletion.resolve(
                model, precision, prompt, target, span, result, method, granularity, None, rendered
            )
    except WorkbenchError as error:
        st.error(str(error), icon="⚠️")
        return
    result, method = follow.result, follow.method
    view = heatmap_view(result.text, result.offsets, len(prompt), granularity, method, result, rendered)
    explained = "the whole reply" if span is None else f"“{text[span[0] : span[1]].strip()}”"
    heatmap(
        view.cells(len(prompt)),
        method=method,
        signed=view.signed,
        scale=view.scale,
        intensity=1.0,
        selection=span,
        status=f"Explaining {explained}" + ("" if span else f" — {HINT}"),
        stale=False,
        key=key,
        on_select=_on_select,
        on_select_args=(key, len(prompt), text),
    )
    st.markdown(f"**Reading:** {plain_markdown(readout(view, result, rendered))}")
