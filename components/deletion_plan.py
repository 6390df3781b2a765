"""What Deletion removes for a view (`Plan`), starting or finding its run (`resolve`), and the
result merged with the first colours (`merged`); `compare_scores` computes it at once for Compare.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from components import workspace
from components.deletion_jobs import DeletionJob, runner, session_owner
from components.session_work import stop_check
from salience.attribution.agreement import (
    SEGMENT_GRANULARITIES,
    compare_top,
    deletion_targets,
    token_spans,
    unit_names,
)
from salience.attribution.methods import DEFAULT_METHOD, DELETION
from salience.attribution.occlusion import MAX_DELETION_SEGMENTS
from salience.core.errors import InputError
from salience.core.types import SalienceResult
from salience.prompts.segments import Segment
from salience.prompts.templates import RenderedPrompt
from salience.report.views import heatmap_view

FALLBACK_GRANULARITY = "sentences"
COMPARED_WITH = DEFAULT_METHOD  # the first colours, shown while a chosen Deletion computes


# ---- what to delete ----------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Which segments Deletion removes for the current view, or why it cannot run."""

    granularity: str
    pattern: str | None
    segments: list[Segment]
    targets: list[int]  # indices into segments
    message: str = ""  # why Deletion does not run (empty when it does)
    over_limit: bool = False

    @property
    def runs(self) -> bool:
        return not self.message


def gradient_methods(method: str) -> tuple[str, ...]:
    """What the instant pass computes for a chosen method (Deletion shows the first colours first)."""
    return (COMPARED_WITH,) if method == DELETION else (method,)


def click_segments(
    model, prompt: str, target: str, granularity: str, pattern: str | None, rendered: RenderedPrompt | None
) -> tuple[tuple[int, int], ...]:
    """Token spans of the view's prompt segments (what the Deletion estimate scores and checks)."""
    tokens, _ = model.tokenize_pair(prompt, target)
    segments = heatmap_view(
        prompt + target, tokens.offsets, len(prompt), granularity, COMPARED_WITH, None, rendered, pattern
    ).segments
    return tuple(token_spans(segments, deletion_targets(segments, len(prompt))))


def _segments(result: SalienceResult, granularity: str, rendered, pattern) -> list[Segment]:
    return heatmap_view(
        result.text, result.offsets, result.prompt_length, granularity, COMPARED_WITH, None, rendered, pattern
    ).segments


def plan(
    result: SalienceResult,
    granularity: str,
    pattern: str | None,
    rendered: RenderedPrompt | None,
    fallback: bool,
) -> Plan:
    """Deletion at the view's granularity; for words or tokens over the limit, sentences when
    ``fallback`` (the agreement line) or a message asking for a coarser granularity."""
    segments = _segments(result, granularity, rendered, pattern)
    targets = deletion_targets(segments, result.prompt_length)
    one, many = unit_names(granularity)
    if len(targets) > MAX_DELETION_SEGMENTS:
        if fallback and granularity not in SEGMENT_GRANULARITIES:
            return plan(result, FALLBACK_GRANULARITY, None, rendered, fallback=False)
        return Plan(
            granularity,
            pattern,
            segments,
            targets,
            f"Deletion runs one pass per segment: the prompt has {len(targets)} {many}, over the limit "
            f"of {MAX_DELETION_SEGMENTS}. Choose a coarser granularity (sentences, lines, paragraphs or "
            "template parts).",
            over_limit=True,
        )
    if not targets:
        return Plan(granularity, pattern, segments, targets, "The prompt has no text to delete.")
    return Plan(granularity, pattern, segments, targets)


def _key(model, precision: str, prompt: str, target: str, span, spans) -> tuple:
    return ("deletion", model.spec, precision, prompt, target, span, tuple(spans))


def _same_inputs(model, precision: str, prompt: str, target: str | None, span) -> Callable[[tuple], bool]:
    if target is None:
        return lambda key: key[1:4] == (model.spec, precision, prompt)
    return lambda key: key[1:6] == (model.spec, precision, prompt, target, span)


def cancel_stale(model, precision: str, prompt: str, target: str | None = None, span=None) -> None:
    """Call before a click's gradients (or a generation, without ``target``): stops this session's
    Deletion run for other inputs, so the model is free after the run's current batch."""
    runner().cancel_unless(session_owner(), _same_inputs(model, precision, prompt, target, span))


def _deletion(
    model, precision: str, prompt: str, target: str, span, spans, progress=None, cancelled=None
) -> SalienceResult:
    """Deletion of each token span in ``spans`` (one model call; stops once ``cancelled()``)."""
    return model.salience(
        prompt,
        target,
        char_span=span,
        methods=(DELETION,),
        precision=precision,
        segments=spans,
        progress=progress,
        cancelled=cancelled,
    )


def request(
    model, precision: str, prompt: str, target: str, span, spans, owner: str | None = None
) -> SalienceResult | DeletionJob:
    def compute(progress, cancelled) -> SalienceResult:
        return _deletion(model, precision, prompt, target, span, spans, progress, cancelled)

    key = _key(model, precision, prompt, target, span, spans)
    return runner().request(owner or session_owner(), key, compute)


def merged(result: SalienceResult, deletion: SalienceResult, plan_: Plan) -> SalienceResult:
    """The gradient result with Deletion's scores, diagnostics and parameters (granularity) added."""
    both = dataclasses.replace(
        result,
        scores={**result.scores, **deletion.scores},
        diagnostics={**result.diagnostics, **deletion.diagnostics},
        provenance=result.provenance.merged(deletion.provenance),
    )
    return both.with_parameters(DELETION, granularity=plan_.granularity, pattern=plan_.pattern)


# ---- the workbench -----------------------------------------------------------------------
@dataclass
class Follow:
    """What the workbench shows for Deletion: the result to colour by and the method it holds."""

    result: SalienceResult
    method: str  # the method the page shows (the first colours while a chosen Deletion computes)
    plan: Plan
    outcome: SalienceResult | DeletionJob | None  # None when Deletion does not run
    chosen: str  # the method picked
    switched: bool = False  # the check put another part first: the page shows Deletion instead

    @property
    def quiet(self) -> bool:
        """The default colours speak only when the check disagrees (or fails)."""
        return self.chosen == DEFAULT_METHOD


def first_and_check(result: SalienceResult, plan_: Plan, rendered: RenderedPrompt | None):
    """`compare_top` of the first colours and Deletion over the plan's segments (or None)."""
    scores = [
        heatmap_view(
            result.text,
            result.offsets,
            result.prompt_length,
            plan_.granularity,
            method,
            result,
            rendered,
            plan_.pattern,
        ).scores
        for method in (DEFAULT_METHOD, DELETION)
    ]
    return compare_top(scores[0], scores[1], plan_.targets)


def top_moved(result: SalienceResult, plan_: Plan, rendered: RenderedPrompt | None) -> bool:
    """Whether Deletion's strongest prompt segment differs from the first colours' (same segments)."""
    found = first_and_check(result, plan_, rendered)
    return found is not None and not found.top_match


def resolve(
    model,
    precision: str,
    prompt: str,
    target: str,
    span,
    result: SalienceResult,
    method: str,
    granularity: str,
    pattern: str | None,
    rendered: RenderedPrompt | None,
) -> Follow:
    """Start (or find) Deletion for the current view; returns the result and method to draw.

    With the default colours, Deletion checks them at the view's own granularity only (never
    sentences standing in for words); if it puts another part first, the page switches to it."""
    chosen_plan = plan(
        result, granularity, pattern, rendered, fallback=method not in (DELETION, DEFAULT_METHOD)
    )
    outcome = None
    if chosen_plan.runs:
        spans = token_spans(chosen_plan.segments, chosen_plan.targets)
        outcome = request(model, precision, prompt, target, span, spans)
    if isinstance(outcome, SalienceResult):
        both = merged(result, outcome, chosen_plan)
        workspace.remember_salience(both, model.spec, precision, prompt, target, span)  # History keeps it
        if (
            method == DEFAULT_METHOD
            and DEFAULT_METHOD in both.scores
            and top_moved(both, chosen_plan, rendered)
        ):
            return Follow(both, DELETION, chosen_plan, outcome, method, switched=True)
        return Follow(both, method, chosen_plan, outcome, method)
    shown = COMPARED_WITH if method == DELETION else method
    return Follow(result, shown, chosen_plan, outcome, method)


def compare_scores(
    model,
    precision: str,
    target: str,
    span,
    result: SalienceResult,
    granularity: str,
    pattern: str | None,
    rendered: RenderedPrompt | None,
) -> SalienceResult:
    """Deletion scores for a compare pane, computed now (the compare page waits for every pane)."""
    prompt = result.text[: result.prompt_length]
    chosen_plan = plan(result, granularity, pattern, rendered, fallback=False)
    if not chosen_plan.runs:
        raise InputError(chosen_plan.message)
    spans = token_spans(chosen_plan.segments, chosen_plan.targets)
    key = _key(model, precision, prompt, target, span, spans)
    hit = runner().cached(key)
    if hit is None:
        hit = _deletion(model, precision, prompt, target, span, spans, cancelled=stop_check())
        runner().remember(key, hit)
    return merged(result, hit, chosen_plan)
