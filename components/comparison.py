"""The compare page's moving parts: pinning variants, explaining them against one target."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import streamlit as st

from components import state, workspace
from components.deletion import click_segments, compare_scores, gradient_methods
from components.model_resource import registry
from components.widgets import plain_markdown
from salience.attribution.methods import DELETION
from salience.core.errors import WorkbenchError
from salience.core.types import GenerationSettings, SalienceResult
from salience.model.engine import EngineCalls
from salience.prompts.segments import normalize
from salience.prompts.templates import RenderedPrompt, TemplateError, parse_template
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import (
    MAX_VARIANTS,
    ResolvedTarget,
    TargetChoice,
    resolve_target,
    shared_scale,
)
from salience.report.views import HeatmapView, heatmap_view


def variants() -> list[Variant]:
    return state.compare().variants


def _unique_name(name: str) -> str:
    taken = {variant.name for variant in variants()}
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name} ({number})", number + 1
    return candidate


def add_variant(variant: Variant) -> str:
    """Append a variant; returns a message for the user (also when the page is full)."""
    if len(variants()) >= MAX_VARIANTS:
        return f"Compare holds {MAX_VARIANTS} variants; remove one on the Compare page first."
    variant = dataclasses.replace(variant, name=_unique_name(variant.name))
    state.compare().variants = [*variants(), variant]
    return f"Pinned “{plain_markdown(variant.name)}” as variant {len(variants())} of {MAX_VARIANTS}."


def pin_workbench() -> None:
    """Button callback: pin the workbench's template, values and output as a variant.

    It reads the template and reference from their widgets when clicked: a text area edited just
    before the click has committed its text by then, which arguments bound at drawing time miss.
    """
    page = state.workbench()
    template = st.session_state[state.TEMPLATE]
    try:
        names = parse_template(template).variables
    except TemplateError as error:
        page.pin_message = f"Fix the template before pinning it: {error}"
        return
    rendered_now = page.generated_for[2] if page.generated_for else None
    variant = Variant(
        name=page.loaded_sample or "variant",
        template=template,
        variables={name: page.variables.get(name, "") for name in names},
    )
    if page.generation is not None and rendered_now == variant.render().text:
        variant = dataclasses.replace(variant, output=page.generation.text)
    if st.session_state[state.USE_REFERENCE] and st.session_state[state.REFERENCE_TARGET]:
        st.session_state[state.COMPARE_TARGET_MODE] = "reference"
        st.session_state[state.COMPARE_REFERENCE] = st.session_state[state.REFERENCE_TARGET]
    elif page.selection and not variants():
        words = "".join(page.selection[2:]).split()
        if words:
            st.session_state[state.COMPARE_TARGET_MODE] = "anchor"
            st.session_state[state.COMPARE_ANCHOR] = words[0].rstrip(":;,.!?")
    page.pin_message = add_variant(variant)


def remove_variant(uid: str) -> None:
    page = state.compare()
    page.variants = [v for v in variants() if v.uid != uid]
    page.present_index = 0


def replace_variant(uid: str, **changes) -> None:
    state.compare().variants = [dataclasses.replace(v, **changes) if v.uid == uid else v for v in variants()]


def clear_outputs() -> None:
    state.compare().variants = [dataclasses.replace(v, output=None) for v in variants()]


def target_choice() -> TargetChoice:
    mode = st.session_state[state.COMPARE_TARGET_MODE]
    text = {
        "anchor": st.session_state[state.COMPARE_ANCHOR],
        "reference": st.session_state[state.COMPARE_REFERENCE],
    }.get(mode, "")
    return TargetChoice(mode, text)


def on_pane_click(uid: str, text: str) -> None:
    """A click on any pane's output (drawn over ``text``) explains the part that starts with the
    clicked word, everywhere."""
    event = st.session_state[state.COMPARE_HEATMAP_PREFIX + uid].get("select")
    if not event or event.get("clear") or not text:
        return
    words = text[int(event["start"]) : int(event["end"])].split()
    if words:
        st.session_state[state.COMPARE_TARGET_MODE] = "anchor"
        st.session_state[state.COMPARE_ANCHOR] = words[0].rstrip(":;,.!?") or words[0]


@dataclass
class Pane:
    """One variant, explained: its prompt, output, target, scores and heatmap view."""

    variant: Variant
    rendered: RenderedPrompt | None = None
    target: ResolvedTarget | None = None
    result: SalienceResult | None = None
    view: HeatmapView | None = None
    message: str = ""  # why the pane has no heatmap, or a note on its target
    own_scale: bool = False  # its target is missing: coloured on its own, left out of the shared scale

    @property
    def prompt(self) -> str:
        return self.rendered.text if self.rendered else ""


def _generate_missing(model: EngineCalls, settings: GenerationSettings, precision: str) -> None:
    for variant in variants():
        if variant.output is not None:
            continue
        try:
            prompt = variant.render().text
            with st.spinner(f"Generating “{plain_markdown(variant.name)}”…"):
                *_, final = registry().stream(model, prompt, settings, precision)
        except (WorkbenchError, ValueError):
            continue  # the pane reports the error when it renders
        replace_variant(variant.uid, output=final.text)
        version = workspace.variant_version(variant.name, variant.template, variant.variables)
        workspace.remember_run(final, model.spec, precision, settings, variant.variables, version)


def explain(
    model: EngineCalls,
    settings: GenerationSettings,
    precision: str,
    choice: TargetChoice,
    method: str,
    granularity: str,
    pattern: str | None,
    aggregation: str,
) -> tuple[list[Pane], float]:
    """Generate what is missing, explain every variant against ``choice``; one shared scale."""
    _generate_missing(model, settings, precision)
    methods = gradient_methods(method)
    panes: list[Pane] = []
    for variant in variants():
        pane = Pane(variant)
        panes.append(pane)
        if _target(pane, variant, choice):
            _explain_pane(pane, model, precision, methods, method, granularity, pattern)
    for pane in panes:
        if pane.result is not None:
            pane.view = _view(pane, method, granularity, pattern, aggregation)
    scale = shared_scale([pane.view.scale for pane in panes if pane.view and not pane.own_scale])
    for pane in panes:
        if pane.view is not None and not pane.own_scale:  # re-normalise on the shared scale
            normalized, _ = normalize(pane.view.scores, scale)
            pane.view = dataclasses.replace(pane.view, normalized=normalized, scale=scale)
    return panes, scale


def _target(pane: Pane, variant, choice: TargetChoice) -> bool:
    """Renders the pane's prompt and finds what it explains; False (with the pane's message) when
    there is nothing to explain."""
    try:
        pane.rendered = variant.render()
    except TemplateError as error:
        pane.message = f"The template has an error: {error}"
        return False
    if not pane.prompt.strip():
        pane.message = "The prompt is empty."
        return False
    pane.target = resolve_target(choice, pane.prompt, variant.output)
    if pane.target is None:
        pane.message = (
            "Type a reference text to explain."
            if choice.mode == "reference"
            else "The model wrote nothing for this prompt, so there is nothing to explain."
        )
        return False
    pane.message = pane.target.note
    if choice.mode == "anchor" and choice.text.strip() and pane.target.span is None:
        pane.own_scale = True
        pane.message = (
            f"No “{choice.text.strip()}” in this output: this pane explains the whole output instead, "
            "on its own colour scale (left out of the shared scale, so do not compare its colours)."
        )
    return True


def _explain_pane(
    pane: Pane,
    model: EngineCalls,
    precision: str,
    methods: tuple[str, ...],
    method: str,
    granularity: str,
    pattern: str | None,
) -> None:
    """The pane's scores (and Deletion's, when chosen), remembered for History; errors go to its message."""
    name = plain_markdown(pane.variant.name)
    try:
        with st.spinner(f"Explaining “{name}”…"):
            segments = click_segments(
                model, pane.prompt, pane.target.target, granularity, pattern, pane.rendered
            )
            pane.result = registry().salience(
                model, pane.prompt, pane.target.target, pane.target.span, methods, precision, segments
            )
        if method == DELETION:
            with st.spinner(f"Deletion on “{name}”…"):
                pane.result = compare_scores(
                    model,
                    precision,
                    pane.target.target,
                    pane.target.span,
                    pane.result,
                    granularity,
                    pattern,
                    pane.rendered,
                )
    except WorkbenchError as error:
        pane.message = str(error)
        return
    workspace.remember_salience(
        pane.result, model.spec, precision, pane.prompt, pane.target.target, pane.target.span
    )


def _view(pane: Pane, method, granularity, pattern, aggregation) -> HeatmapView:
    result = pane.result
    return heatmap_view(
        result.text,
        result.offsets,
        result.prompt_length,
        granularity,
        method,
        result,
        pane.rendered,
        pattern,
        aggregation,
    )
