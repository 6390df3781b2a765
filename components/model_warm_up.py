"""The warm-up after a model loads: trace the graphs the first Generate and the first click
need, on a sample, in the loader's thread (the model is then "ready"), then the rest (Deletion
at any length, Integrated Gradients) in the background; it gives way as soon as a visitor's own
request reaches the model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from components.model_shutdown import STOPPING, exit_hook_first
from components.model_status import ModelStart
from salience.attribution.agreement import deletion_targets, token_spans
from salience.attribution.methods import DEFAULT_METHOD, DELETION
from salience.core.errors import WorkbenchError
from salience.core.types import Generation, GenerationSettings
from salience.prompts.samples import find_sample
from salience.prompts.segments import make_segments

WARM_UP_SAMPLE = "fewshot-mistake"
WARM_UP_SETTINGS = GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",))
WARM_UP_PRECISION = "bfloat16"
FIRST_STEPS = ("bf16 copy", "decode graphs", "salience graph")  # then "ready"
LATER_STEPS = ("deletion graphs", "integrated gradients graph")  # after, unless a visitor came first
WARM_UP_STEPS = FIRST_STEPS + LATER_STEPS
log = logging.getLogger(__name__)


class VisitorsFirst(Exception):
    """Ends a warm-up early: visitors' own requests are tracing the same graphs."""


def warm_up(models, start: ModelStart, model) -> None:
    """Trace every graph the first Generate and the first click (gradients, then Deletion in
    the background) need, on the default sample, through ``models`` (the `ModelRegistry`,
    which caches its answer and explanation); then say the model is ready (`mark_ready`) and
    trace the rest: Deletion's graphs at other lengths (the first click's check traced most of
    them) and Integrated Gradients', the method fewer people switch to. The salience graph is
    traced for the sample's sequence bucket; decoding and Deletion graphs take any length."""
    from salience.model.loader import skip_random_init

    exit_hook_first()  # TensorFlow has registered its own exit handlers by now

    try:
        _steps(models, start, model, skip_random_init)
    except VisitorsFirst:
        log.info("warm-up of %s ended early: a visitor's requests are compiling the graphs", start.spec)
    except WorkbenchError as error:  # e.g. a model whose context is too small
        log.info("warm-up skipped: %s", error)
    except Exception:  # never let a warm-up failure take the loaded model down
        if STOPPING.is_set():  # the interpreter is exiting under it: not a failure
            log.info("warm-up of %s ended: the server is stopping", start.spec)
        else:
            log.exception("warm-up of %s failed", start.spec)


def mark_ready(start: ModelStart) -> None:
    """The model is ready for visitors (what is left of the warm-up runs in the background);
    the first call counts, with the warm-up's seconds until then."""
    if not start.ready.done():
        if start.loaded_at:
            start.timings["warm"] = time.perf_counter() - start.loaded_at
        start.ready.set_result(None)


def _steps(models, start: ModelStart, model, skip_random_init) -> None:
    """The warm-up's steps in order, each timed; stops (`VisitorsFirst`) once a visitor asks."""

    def step(name: str, message: str, work: Callable[[], object]) -> object:
        if start.visitor_work.is_set() or STOPPING.is_set():
            raise VisitorsFirst
        start.message = message
        began = time.perf_counter()
        result = work()
        start.timings[name] = time.perf_counter() - began  # only steps that succeeded
        return result

    prompt = find_sample(WARM_UP_SAMPLE).render().text

    def bfloat16_copy() -> None:
        with skip_random_init():
            model.forward_for(WARM_UP_PRECISION)

    step("bf16 copy", "Preparing the bfloat16 weights", bfloat16_copy)

    def decode() -> Generation:
        final = None
        for partial in models.stream(model, prompt, WARM_UP_SETTINGS, WARM_UP_PRECISION):
            if start.visitor_work.is_set() or STOPPING.is_set():  # between tokens
                raise VisitorsFirst
            final = partial
        return final

    final = step("decode graphs", "Compiling the decoder (first Generate)", decode)
    if not final.text:
        return

    def first_click() -> None:
        tokens, _ = model.tokenize_pair(prompt, final.text)
        segments = make_segments(prompt + final.text, tokens.offsets, "sentences", len(prompt))
        spans = token_spans(segments, deletion_targets(segments, len(prompt)))
        models.salience(model, prompt, final.text, None, (DEFAULT_METHOD,), WARM_UP_PRECISION, spans)

    step("salience graph", "Compiling the salience graph (first click)", first_click)
    mark_ready(start)
    step(
        "deletion graphs",
        "Compiling Deletion (runs after each click)",
        lambda: model.salience(
            prompt, final.text, methods=(DELETION,), segments=[(1, 2)], precision=WARM_UP_PRECISION
        ),
    )
    step(
        "integrated gradients graph",
        "Compiling Integrated Gradients",
        lambda: model.salience(
            prompt,
            final.text,
            methods=("integrated_gradients",),
            integrated_steps=1,  # the same batched graph as any step count; runs once
            precision=WARM_UP_PRECISION,
        ),
    )
