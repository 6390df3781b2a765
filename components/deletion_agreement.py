"""The agreement line under the reading: Deletion's progress, its check of the first colours,
the two-parts-back-each-other-up note, and the same line for a compare pane.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

import streamlit as st

from components import state
from components.deletion_jobs import DeletionJob, session_owner
from components.deletion_plan import (
    COMPARED_WITH,
    FALLBACK_GRANULARITY,
    Follow,
    Plan,
    first_and_check,
    merged,
    plan,
    request,
    top_moved,
)
from components.widgets import ENGINEER_DETAILS, plain_markdown
from salience.attribution.agreement import (
    agreement_line,
    compare_top,
    redundancy_sentence,
    token_spans,
    unit_names,
)
from salience.attribution.methods import DEFAULT_METHOD, DELETION, get_method
from salience.attribution.occlusion import Redundancy
from salience.core.text import excerpt, plain_duration
from salience.core.types import SalienceResult
from salience.prompts.describe import describe_segments
from salience.prompts.templates import RenderedPrompt
from salience.report.views import heatmap_view

POLL_SECONDS = 0.5


def _set(key: str, value: str) -> None:
    st.session_state[key] = value


SPINNER_HTML = """<style>@keyframes gw-spin {{ to {{ transform: rotate(360deg); }} }}</style>\
<div data-testid="deletion-progress" style="display:flex;gap:.5rem;align-items:center;font-size:.9rem">\
<span style="width:.9rem;height:.9rem;border:2px solid #99a;border-top-color:transparent;border-radius:50%;\
display:inline-block;animation:gw-spin .8s linear infinite"></span><span>{text}</span></div>"""


def progress_text(job: DeletionJob, unit: str, deletion_shown: bool) -> str:
    """'Deletion is checking these colours in the background: 5 of 22 sentences done · 3 s'."""
    seconds = plain_duration(time.perf_counter() - job.began)
    what = (
        "Computing the Deletion colours (the first colours are shown until they are ready)"
        if deletion_shown
        else "Deletion is checking these colours in the background"
    )
    if job.total > 1:
        counted = f"{max(job.done - 1, 0)} of {job.total - 1} {unit} done"
    elif job.total:
        counted = "measuring the selection with the whole prompt"
    else:
        counted = "waiting for the model (another check or generation is using it)"
    return f"{what}: {counted} · {seconds} so far · a new click cancels it"


@st.fragment(run_every=POLL_SECONDS)
def _poll(job: DeletionJob, unit: str, deletion_shown: bool) -> None:
    if job.future.done():
        st.rerun(scope="app")
    text = progress_text(job, unit, deletion_shown)
    if job.done > 1 and job.total > 1:  # a bar once segments are done; before that a spinner that moves
        st.progress((job.done - 1) / (job.total - 1), text=text)
    else:
        st.html(SPINNER_HTML.format(text=html.escape(text)))


def agreement(
    follow: Follow,
    aggregation: str,
    rendered: RenderedPrompt | None,
    keys: state.ControlKeys = state.WORKBENCH_CONTROLS,
    key: str = state.DELETION_AGREEMENT,
) -> None:
    """The agreement line under the reading (or progress while Deletion runs, or why it does not).

    Its buttons set the method control of ``keys`` (to Deletion) and its granularity (to sentences).
    """
    box = st.container(key=key)
    with box:
        plan_ = follow.plan
        one, many = unit_names(plan_.granularity)
        if follow.quiet:
            _quiet_check(follow, many, rendered)
            return
        if not plan_.runs:
            _not_run(plan_, keys, key)
            return
        outcome = follow.outcome
        if isinstance(outcome, DeletionJob):
            _under_way(outcome, many, follow.chosen == DELETION)
            return
        _checked(follow, outcome, aggregation, rendered, keys, key)


def _not_run(plan_: Plan, keys: state.ControlKeys, key: str) -> None:
    """Why Deletion does not run, with a button to sentences when the prompt has too many parts."""
    st.warning(plan_.message, icon="⚠️")
    if plan_.over_limit:
        st.button(
            "Use sentences",
            key=state.child_key(key, "sentences"),
            on_click=_set,
            args=(keys.granularity, FALLBACK_GRANULARITY),
            help="Switch the granularity to sentences, where Deletion runs.",
        )


def _under_way(job: DeletionJob, many: str, deletion_shown: bool) -> None:
    """A run's error, its cancellation, or its progress."""
    if job.error:
        st.error(job.error, icon="⚠️")
        return
    if job.future.done():  # cancelled: this run has no answer; the next rerun asks again
        st.caption("Deletion stopped: the selection changed.")
        return
    _poll(job, many, deletion_shown)


def _compared_scores(follow: Follow, compared: str, aggregation: str, rendered: RenderedPrompt | None):
    """The plan's segment scores of the compared method and of Deletion, as the reading shows them."""
    result, plan_ = follow.result, follow.plan
    texts_view = heatmap_view(
        result.text,
        result.offsets,
        result.prompt_length,
        plan_.granularity,
        compared,
        result,
        rendered,
        plan_.pattern,
        aggregation,
    )
    deletion_view = heatmap_view(
        result.text,
        result.offsets,
        result.prompt_length,
        plan_.granularity,
        DELETION,
        result,
        rendered,
        plan_.pattern,
    )
    return texts_view.scores, deletion_view.scores


def _checked(
    follow: Follow,
    deletion_result: SalienceResult,
    aggregation: str,
    rendered: RenderedPrompt | None,
    keys: state.ControlKeys,
    key: str,
) -> None:
    """The finished check: whether Deletion agrees with the colours shown, and how it was made."""
    plan_ = follow.plan
    one, many = unit_names(plan_.granularity)
    compared = follow.method if follow.method != DELETION else COMPARED_WITH
    if compared not in follow.result.scores:
        return
    candidates = plan_.targets  # the page's one ranking: every prompt segment, copies included
    found = compare_top(*_compared_scores(follow, compared, aggregation, rendered), candidates)
    seconds = deletion_result.diagnostics.get(DELETION, {}).get("seconds")
    if found is None:
        st.info(
            f"The prompt has only one {one} to delete: there is nothing to compare. "
            "Choose a finer granularity to compare parts of it.",
            icon="ℹ️",
        )
        return
    st.markdown(
        f"{'✅' if found.agree else '⚖️'} **Deletion check:** {plain_markdown(_line(follow, found, compared, rendered))}"
    )
    redundancy_note(follow, rendered)
    st.caption(
        f"Deletion removed each of the {len(candidates)} prompt {many} in turn and measured how much "
        f"less likely the selection became; the top {found.k} of each method are compared by position."
    )
    _check_details("Ranked by size of score (|score|), so the check never claims a direction", found, seconds)
    if follow.chosen != DELETION:
        st.button(
            "Show Deletion colours",
            key=state.child_key(key, "show"),
            on_click=_set,
            args=(keys.method, DELETION),
            type="primary",
            help=get_method(DELETION).description,
        )


def _line(follow: Follow, found, compared: str, rendered: RenderedPrompt | None) -> str:
    """The agreement sentence: which parts each method puts first, named by text and place."""
    plan_ = follow.plan
    texts = {i: plan_.segments[i].text for i in plan_.targets}
    places = describe_segments(
        plan_.segments,
        follow.result.text,
        follow.result.prompt_length,
        rendered.slots if rendered else (),
    )
    return agreement_line(
        found, texts, plan_.granularity, get_method(compared).label, dict(enumerate(places))
    )


def redundancy_note(follow: Follow, rendered: RenderedPrompt | None) -> None:
    """One line when the check found two parts that back each other up (together they matter far
    more than each alone)."""
    result, plan_ = follow.result, follow.plan
    pair = result.diagnostics.get(DELETION, {}).get("pair")
    if not pair:
        return
    redundancy = Redundancy((0, 1), tuple(pair["alone"]), pair["together"])
    spans = [(seg.token_start, seg.token_end) for seg in plan_.segments]
    found = [spans.index(tuple(span)) for span in pair["segments"] if tuple(span) in spans]
    if not redundancy.redundant or len(found) != 2:
        return
    named = _namer(plan_, result, rendered)
    line = redundancy_sentence(named(found[0]), named(found[1]), max(redundancy.alone), redundancy.together)
    st.markdown(f"🔁 **Two parts back each other up.** {plain_markdown(line)}")


def _quiet_check(follow: Follow, many: str, rendered: RenderedPrompt | None) -> None:
    """The default colours' check: progress while it runs, then one line only if it moved the
    strongest part (the page already shows Deletion then); nothing when it agrees."""
    outcome = follow.outcome
    if isinstance(outcome, DeletionJob):
        if outcome.error:
            st.error(outcome.error, icon="⚠️")
        elif not outcome.future.done():
            _poll(outcome, many, False)
        return
    if outcome is not None:
        redundancy_note(follow, rendered)
    if not follow.switched:
        return
    plan_, result = follow.plan, follow.result
    found = first_and_check(result, plan_, rendered)
    named = _namer(plan_, result, rendered)
    line = (
        f"Deleting each of the {len(plan_.targets)} prompt {many} in turn shows that "
        f"{named(found.deletion_top[0])} matters most, not {named(found.gradient_top[0])} as first "
        "estimated. "
        + (
            "The colours, the reading and the chart now show this check."
            if follow.method == DELETION
            else "Choose Deletion under Advanced to colour by it."
        )
    )
    st.markdown(f"🔄 **A closer check moved the strongest part.** {plain_markdown(line)}")
    seconds = result.diagnostics.get(DELETION, {}).get("seconds")
    _check_details("First colours: the Deletion estimate; check: Deletion of every segment", found, seconds)


def _check_details(what: str, found, seconds) -> None:
    """The check's numbers for engineers: rank correlation and how long Deletion took."""
    with st.expander(ENGINEER_DETAILS):
        st.caption(
            what
            + (
                f"; Spearman rank correlation {found.correlation:+.2f}"
                if found.correlation is not None
                else ""
            )
            + (f"; Deletion took {seconds:.1f} s" if isinstance(seconds, int | float) else "")
            + "."
        )


def _namer(plan_: Plan, result: SalienceResult, rendered: RenderedPrompt | None) -> Callable[[int], str]:
    """Names a plan's segment for a sentence: its text and where it sits in the prompt."""
    places = describe_segments(
        plan_.segments, result.text, result.prompt_length, rendered.slots if rendered else ()
    )

    def named(index: int) -> str:
        where = places[index]
        return f"“{excerpt(plan_.segments[index].text, 60)}”" + (f" ({where})" if where else "")

    return named


def pane_agreement(
    model, precision: str, pane, method: str, granularity: str, pattern: str | None, aggregation: str
) -> None:
    """The agreement line for one compare pane (its own background run, keyed by the pane)."""
    result = pane.result
    if result is None or pane.target is None:
        return
    prompt = result.text[: result.prompt_length]
    chosen_plan = plan(result, granularity, pattern, pane.rendered, fallback=method != DEFAULT_METHOD)
    outcome = None
    if chosen_plan.runs:
        spans = token_spans(chosen_plan.segments, chosen_plan.targets)
        owner = f"{session_owner()}::{pane.variant.uid}"
        outcome = request(model, precision, prompt, pane.target.target, pane.target.span, spans, owner)
    shown = COMPARED_WITH if method == DELETION else method
    both = merged(result, outcome, chosen_plan) if isinstance(outcome, SalienceResult) else result
    # A pane never switches on its own (the panes share one method and scale); it says so.
    moved = (
        method == DEFAULT_METHOD
        and isinstance(outcome, SalienceResult)
        and DEFAULT_METHOD in both.scores
        and top_moved(both, chosen_plan, pane.rendered)
    )
    follow = Follow(both, shown, chosen_plan, outcome, method, switched=moved)
    agreement(
        follow,
        aggregation,
        pane.rendered,
        state.COMPARE_CONTROLS,
        state.child_key(state.DELETION_PANE, pane.variant.uid),
    )
