"""Deletion beside the first colours: a background run, the agreement line, "What if I delete this?".

After a click the first colours (the Deletion estimate, `DEFAULT_METHOD`) are drawn at once;
Deletion (one model pass per prompt segment) follows as a check on a bounded pool of worker
threads owned by `DeletionRunner`, a process-wide object like the model registry. Its model
calls are background work (`salience.model.lock.background_work`): a click waiting for the
model goes before them, and several sessions' Deletions take turns batch by batch. The page polls it with ``st.fragment(run_every=…)``
only while a run is under way, so the page never waits on it. Each browser session
owns at most one run: asking for other inputs (a new selection, target or prompt)
cancels the old run between two of its batches, so a click never waits on a stale
Deletion. Finished results are cached by the same kind of key as
``ModelRegistry.salience`` plus the token spans that were deleted.
"""

from __future__ import annotations

import dataclasses
import html
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import streamlit as st

from components import state, workspace
from components.diff_view import diff_html
from components.model_resource import registry
from components.session_work import page_id, session_alive, session_id, stop_check
from components.widgets import ENGINEER_DETAILS, plain_markdown
from salience.attribution.agreement import (
    SEGMENT_GRANULARITIES,
    agreement_line,
    compare_top,
    deletion_targets,
    redundancy_sentence,
    token_spans,
    unit_names,
    without_segment,
)
from salience.attribution.methods import DEFAULT_METHOD, DELETION, get_method
from salience.attribution.occlusion import MAX_DELETION_SEGMENTS, Redundancy
from salience.core.errors import CancelledError, InputError, WorkbenchError
from salience.core.text import excerpt, plain_duration
from salience.core.types import GenerationSettings, SalienceResult
from salience.model.lock import background_work
from salience.prompts.describe import describe_segments
from salience.prompts.segments import Segment
from salience.prompts.templates import RenderedPrompt
from salience.prompts.variant_comparison import output_diff
from salience.report.views import heatmap_view, ranking
from salience.report.whatif import counterpart

KEPT_RESULTS = 128
# At most this many sessions' Deletions run at once (taking turns on the model batch by batch);
# more wait for a worker. Each session has at most one run, so one session cannot fill the pool.
DELETION_WORKERS = 4
POLL_SECONDS = 0.5
FALLBACK_GRANULARITY = "sentences"
COMPARED_WITH = DEFAULT_METHOD  # the first colours, shown while a chosen Deletion computes


# ---- the background runner ---------------------------------------------------------------
@dataclass
class DeletionJob:
    """One Deletion run: its inputs' key, progress and the future of its `SalienceResult`.

    It belongs to the browser session that asked for it (``session``) and to the page that
    session was on (``page``): it stops once that session ends, or when it is cancelled (a new
    click, another page), from any state including still queued."""

    key: tuple
    session: str | None = None
    page: str | None = None
    future: Future = field(default_factory=Future)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    began: float = field(default_factory=time.perf_counter)

    def cancelled(self) -> bool:
        """True once nobody wants the answer: cancelled, or its session has ended."""
        return self.cancel.is_set() or not session_alive(self.session)

    @property
    def error(self) -> str | None:
        """The message of a run that failed (not one that was cancelled)."""
        if not self.future.done() or self.future.cancelled():
            return None
        error = self.future.exception()
        if error is None or isinstance(error, CancelledError):
            return None
        return str(error) if isinstance(error, WorkbenchError) else f"Deletion failed: {error}"


class DeletionRunner:
    """A bounded pool of worker threads for Deletion runs, at most one run per owner (browser
    session), and a cache of finished results."""

    def __init__(self, workers: int = DELETION_WORKERS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deletion")
        self._lock = threading.Lock()
        self._jobs: dict[str, DeletionJob] = {}
        self._results: OrderedDict[tuple, SalienceResult] = OrderedDict()

    def cached(self, key: tuple) -> SalienceResult | None:
        with self._lock:
            return self._results.get(key)

    def job(self, owner: str) -> DeletionJob | None:
        with self._lock:
            return self._jobs.get(owner)

    def cancel_elsewhere(self, owner: str, page: str | None) -> None:
        """Cancel the owner's unfinished runs (its own and its panes', ``owner::…``) that were
        started on another page than ``page``: a page that is left stops its work."""
        with self._lock:
            jobs = [job for name, job in self._jobs.items() if name.split("::")[0] == owner]
        for job in jobs:
            if not job.future.done() and job.page != page:
                job.cancel.set()

    def cancel_unless(self, owner: str, keep: Callable[[tuple], bool]) -> None:
        """Cancel the owner's unfinished run unless ``keep(its key)``: called before a click's
        gradients, so a stale Deletion lets go of the model after its current batch."""
        with self._lock:
            job = self._jobs.get(owner)
        if job is not None and not job.future.done() and not keep(job.key):
            job.cancel.set()

    def request(
        self, owner: str, key: tuple, compute: Callable[..., SalienceResult]
    ) -> SalienceResult | DeletionJob:
        """The cached result for ``key``, or the owner's run for it (started, replacing any other).

        ``compute(progress, cancelled)`` runs on the worker thread.
        """
        hit = self.cached(key)
        with self._lock:
            self._forget_ended()
            current = self._jobs.get(owner)
            if hit is not None:
                if current is not None and current.key != key:
                    current.cancel.set()
                return hit
            if current is not None and current.key == key and not current.cancel.is_set():
                return current
            if current is not None:
                current.cancel.set()
            job = DeletionJob(key, session_id(), page_id())
            self._jobs[owner] = job
        self._executor.submit(self._run, job, compute)
        return job

    def _run(self, job: DeletionJob, compute: Callable[..., SalienceResult]) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            if job.cancelled():
                raise CancelledError("Deletion was cancelled before it started.")
            with background_work():  # a click waiting for the model goes first
                result = compute(progress, job.cancelled)
        except BaseException as error:  # noqa: BLE001 - handed to the page through the future
            job.future.set_exception(error)
            return
        self.remember(job.key, result)
        job.future.set_result(result)

    def _forget_ended(self) -> None:
        """Drop the finished runs of sessions that have ended (called with the lock held)."""
        for name in [
            n for n, job in self._jobs.items() if job.future.done() and not session_alive(job.session)
        ]:
            del self._jobs[name]

    def remember(self, key: tuple, result: SalienceResult) -> SalienceResult:
        with self._lock:
            self._results[key] = result
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)
        return result


_RUNNER: DeletionRunner | None = None
_RUNNER_LOCK = threading.Lock()


def runner() -> DeletionRunner:
    """The process-wide runner shared by every browser session."""
    global _RUNNER
    with _RUNNER_LOCK:
        if _RUNNER is None:
            _RUNNER = DeletionRunner()
        return _RUNNER


def _owner() -> str:
    if not st.session_state.get(state.DELETION_OWNER):
        st.session_state[state.DELETION_OWNER] = uuid.uuid4().hex
    return st.session_state[state.DELETION_OWNER]


def stop_other_pages() -> None:
    """Call once the page of this script run is known: this session's Deletion runs started on
    another page stop (a page that is left keeps no work running)."""
    owner = st.session_state.get(state.DELETION_OWNER)
    if owner:
        runner().cancel_elsewhere(owner, page_id())


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
    runner().cancel_unless(_owner(), _same_inputs(model, precision, prompt, target, span))


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


def _request(
    model, precision: str, prompt: str, target: str, span, spans, owner: str | None = None
) -> SalienceResult | DeletionJob:
    def compute(progress, cancelled) -> SalienceResult:
        return _deletion(model, precision, prompt, target, span, spans, progress, cancelled)

    key = _key(model, precision, prompt, target, span, spans)
    return runner().request(owner or _owner(), key, compute)


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


def _first_and_check(result: SalienceResult, plan_: Plan, rendered: RenderedPrompt | None):
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


def _top_moved(result: SalienceResult, plan_: Plan, rendered: RenderedPrompt | None) -> bool:
    """Whether Deletion's strongest prompt segment differs from the first colours' (same segments)."""
    found = _first_and_check(result, plan_, rendered)
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
        outcome = _request(model, precision, prompt, target, span, spans)
    if isinstance(outcome, SalienceResult):
        both = merged(result, outcome, chosen_plan)
        workspace.remember_salience(both, model.spec, precision, prompt, target, span)  # History keeps it
        if (
            method == DEFAULT_METHOD
            and DEFAULT_METHOD in both.scores
            and _top_moved(both, chosen_plan, rendered)
        ):
            return Follow(both, DELETION, chosen_plan, outcome, method, switched=True)
        return Follow(both, method, chosen_plan, outcome, method)
    shown = COMPARED_WITH if method == DELETION else method
    return Follow(result, shown, chosen_plan, outcome, method)


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
            st.warning(plan_.message, icon="⚠️")
            if plan_.over_limit:
                st.button(
                    "Use sentences",
                    key=state.child_key(key, "sentences"),
                    on_click=_set,
                    args=(keys.granularity, FALLBACK_GRANULARITY),
                    help="Switch the granularity to sentences, where Deletion runs.",
                )
            return
        outcome = follow.outcome
        if isinstance(outcome, DeletionJob):
            if outcome.error:
                st.error(outcome.error, icon="⚠️")
                return
            if outcome.future.done():  # cancelled: this run has no answer; the next rerun asks again
                st.caption("Deletion stopped: the selection changed.")
                return
            _poll(outcome, many, follow.chosen == DELETION)
            return
        deletion_result = outcome
        compared = follow.method if follow.method != DELETION else COMPARED_WITH
        if compared not in follow.result.scores:
            return
        texts_view = heatmap_view(
            follow.result.text,
            follow.result.offsets,
            follow.result.prompt_length,
            plan_.granularity,
            compared,
            follow.result,
            rendered,
            plan_.pattern,
            aggregation,
        )
        deletion_view = heatmap_view(
            follow.result.text,
            follow.result.offsets,
            follow.result.prompt_length,
            plan_.granularity,
            DELETION,
            follow.result,
            rendered,
            plan_.pattern,
        )
        candidates = plan_.targets  # the page's one ranking: every prompt segment, copies included
        found = compare_top(texts_view.scores, deletion_view.scores, candidates)
        seconds = deletion_result.diagnostics.get(DELETION, {}).get("seconds")
        if found is None:
            st.info(
                f"The prompt has only one {one} to delete: there is nothing to compare. "
                "Choose a finer granularity to compare parts of it.",
                icon="ℹ️",
            )
            return
        texts = {i: plan_.segments[i].text for i in plan_.targets}
        places = describe_segments(
            plan_.segments,
            follow.result.text,
            follow.result.prompt_length,
            rendered.slots if rendered else (),
        )
        line = agreement_line(
            found, texts, plan_.granularity, get_method(compared).label, dict(enumerate(places))
        )
        icon = "✅" if found.agree else "⚖️"
        st.markdown(f"{icon} **Deletion check:** {plain_markdown(line)}")
        redundancy_note(follow, rendered)
        st.caption(
            f"Deletion removed each of the {len(candidates)} prompt {many} in turn and measured how much "
            f"less likely the selection became; the top {found.k} of each method are compared by position."
        )
        _check_details(
            "Ranked by size of score (|score|), so the check never claims a direction", found, seconds
        )
        if follow.chosen != DELETION:
            st.button(
                "Show Deletion colours",
                key=state.child_key(key, "show"),
                on_click=_set,
                args=(keys.method, DELETION),
                type="primary",
                help=get_method(DELETION).description,
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
    found = _first_and_check(result, plan_, rendered)
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
    choices = _choices(view, result, rendered)
    if not choices:
        st.info("The prompt has no segment to delete.", icon="ℹ️")
        return
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
            diff = output_diff(
                shown["before"], shown["after"], "the full prompt's output", "the output without it"
            )
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
        owner = f"{_owner()}::{pane.variant.uid}"
        outcome = _request(model, precision, prompt, pane.target.target, pane.target.span, spans, owner)
    shown = COMPARED_WITH if method == DELETION else method
    both = merged(result, outcome, chosen_plan) if isinstance(outcome, SalienceResult) else result
    # A pane never switches on its own (the panes share one method and scale); it says so.
    moved = (
        method == DEFAULT_METHOD
        and isinstance(outcome, SalienceResult)
        and DEFAULT_METHOD in both.scores
        and _top_moved(both, chosen_plan, pane.rendered)
    )
    follow = Follow(both, shown, chosen_plan, outcome, method, switched=moved)
    agreement(
        follow,
        aggregation,
        pane.rendered,
        state.COMPARE_CONTROLS,
        state.child_key(state.DELETION_PANE, pane.variant.uid),
    )


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
