"""`LanguageModel`: three plain calls (tokenize, generate, salience) over a Gemma model."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from salience.attribution.methods import (
    DELETION,
    IG_BASELINES,
    GradientContext,
    get_method,
)
from salience.attribution.occlusion import deletion_scores, redundancy
from salience.core.errors import CancelledError, ContextLengthError, InputError
from salience.core.types import Generation, GenerationSettings, Provenance, SalienceResult, Tokenization
from salience.model.batch_generation import generate_batch
from salience.model.decoding import (
    CPU_TOKEN_LIMIT,
    MAX_NEW_TOKENS_LIMIT,
    MIN_CACHE_BUCKET,
    PRECISIONS,
    TextCalls,
    check_text,
    choose_token,
    first_stop,
    without_partial_stop,
)
from salience.model.engine import Cancelled, Progress, SalienceCalls, SalienceRequest
from salience.model.forward import GemmaForward, backbone_copy, bucket, causal_lm_at, model_family
from salience.model.lock import ModelLock
from salience.model.tokenizing import OffsetTokenizer


class LanguageModel(TextCalls, SalienceCalls):
    """A loaded Gemma model with the calls the workbench needs. Thread-safe.

    ``precision`` picks the compute dtype: ``bfloat16`` (default; about twice as fast
    on CPUs with bf16 instructions, scores rank-correlate ≥ 0.98 with float32) or
    ``float32`` (exact). The other precision's weights come the first time it is needed:
    read from where the model came from (``other_weights``, a callable taking the dtype and
    returning a causal LM in it), or else a copy of these weights cast to it.

    With ``only=True`` the model holds ``precision``'s weights and nothing else (a server
    replica that serves one precision): a backbone in another dtype is copied once and
    dropped, and a call at the other precision is refused with an `InputError`.
    """

    precisions: tuple[str, ...] = PRECISIONS  # the precisions this model computes in

    def __init__(
        self,
        causal_lm,
        name: str,
        spec: str,
        max_context: int,
        precision: str = "bfloat16",
        *,
        only: bool = False,
        other_weights: Callable[[str], Any] | None = None,
    ):
        self.name = name
        self.spec = spec
        self.notice: str | None = None  # what the user should know about this load (e.g. a rebuilt cache)
        self.model_context = max_context
        self.max_context = min(max_context, CPU_TOKEN_LIMIT)
        self.family = model_family(causal_lm)
        self.precision = self.check_precision(precision)
        if only:
            self.precisions = (self.precision,)
            # Another dtype's backbone is copied and not kept: it is garbage once the caller drops
            # it (Keras layers hold reference cycles, so only after a `gc.collect()`).
            causal_lm = causal_lm_at(causal_lm, self.precision)
        self.causal_lm = causal_lm
        self._other_weights = None if only else other_weights
        native = str(causal_lm.backbone.compute_dtype)
        self._forwards = {native: GemmaForward(causal_lm.backbone, self.family)}
        tokenizer = causal_lm.preprocessor.tokenizer
        self.tokenizer = OffsetTokenizer(tokenizer.proto, bos_id=int(tokenizer.start_token_id))
        self.stop_token_ids = {int(tokenizer.end_token_id)}
        end_of_turn = self.tokenizer.token_id("<end_of_turn>")
        if end_of_turn is not None:
            self.stop_token_ids.add(end_of_turn)
        self._lock = ModelLock()  # clicks before background Deletion batches, each in arrival order

    def check_precision(self, precision: str) -> str:
        """``precision`` if this model computes in it; else an `InputError` saying which it does."""
        if precision not in PRECISIONS:
            raise InputError(f"Unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}.")
        if precision not in self.precisions:
            served = " and ".join(self.precisions)
            raise InputError(
                f"This engine serves {served} only: the model was loaded without its {precision} "
                f"weights, to save memory. Choose {served}, or load the model with both precisions."
            )
        return precision

    def prepared(self, precision: str) -> bool:
        """Whether ``precision``'s weights are in memory already. A served precision that is not
        is read from the preset (or cast from the other) by its first call, which takes seconds.

        Example:
            >>> model.prepared("float32")  # a preset loaded in bfloat16
            False
        """
        return precision in self._forwards

    def forward_for(self, precision: str | None = None) -> GemmaForward:
        """The compiled forward passes at a precision (built on first use)."""
        precision = self.check_precision(precision or self.precision)
        with self._lock:
            if precision not in self._forwards:
                if self._other_weights is not None:  # e.g. float32 read from the preset itself
                    backbone = causal_lm_at(self._other_weights(precision), precision).backbone
                else:
                    backbone = backbone_copy(next(iter(self._forwards.values())).backbone, precision)
                self._forwards[precision] = GemmaForward(backbone, self.family)
            return self._forwards[precision]

    def task_for(self, precision: str | None = None):
        """KerasHub's own CausalLM over this model's backbone at ``precision`` (the one the
        compiled passes run), e.g. to compare with KerasHub's ``generate``; ``causal_lm`` is the
        task at the precision the model was loaded in."""
        backbone = self.forward_for(precision).backbone
        if self.causal_lm.backbone is backbone:
            return self.causal_lm
        return type(self.causal_lm)(backbone=backbone, preprocessor=self.causal_lm.preprocessor)

    # ---- generate ----------------------------------------------------------
    def generate(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Generation:
        """Decode a continuation of ``prompt``; greedy unless settings ask for sampling."""
        return deque(self.stream(prompt, settings, precision), maxlen=1)[0]

    def stream(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Iterator[Generation]:
        """Yield the growing generation after each decoded token; the last one is final."""
        settings = settings or GenerationSettings()
        check_text(prompt, "prompt")
        if not 1 <= settings.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise InputError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}.")
        ids = self.prompt_ids(prompt, settings)
        rng = np.random.default_rng(settings.seed)
        stops = tuple(s for s in settings.stop_sequences if s)
        cache_length = bucket(len(ids) + settings.max_new_tokens, MIN_CACHE_BUCKET)
        forward = self.forward_for(precision)
        started = time.perf_counter()
        with self._lock:
            logits, cache = forward.prefill(ids, cache_length)
        first_token_seconds = 0.0
        new_ids: list[int] = []
        text = ""
        stop_reason = "max_new_tokens"
        for step in range(settings.max_new_tokens):
            token = choose_token(logits.numpy(), settings, rng)
            if step == 0:
                first_token_seconds = time.perf_counter() - started
            if token in self.stop_token_ids:
                stop_reason = "end_of_text"
                break
            new_ids.append(token)
            text = self.tokenizer.decode(new_ids)
            cut = first_stop(text, stops)
            if cut is not None:
                text = text[:cut]
                stop_reason = "stop_sequence"
                break
            if step + 1 < settings.max_new_tokens:
                with self._lock:
                    logits, cache = forward.step(token, len(ids) + step, cache)
            visible = without_partial_stop(text, stops)
            yield Generation(
                prompt, visible, tuple(new_ids), "running", time.perf_counter() - started, first_token_seconds
            )
        yield Generation(
            prompt,
            text,
            tuple(new_ids),
            stop_reason,
            time.perf_counter() - started,
            first_token_seconds,
        )

    def generate_batch(
        self,
        prompts: Sequence[str],
        settings: GenerationSettings | None = None,
        precision: str | None = None,
        **options,
    ) -> list[Generation]:
        """Decode many prompts ``batch_size`` rows at a time; one `Generation` per prompt,
        in order, each as `generate` gives it alone (`EngineCalls.generate_batch`).

        Args:
            prompts, settings, precision: as `EngineCalls.generate_batch`.
            **options: its keyword options (``batch_size``, ``stop_sequences``, ``seeds``,
                ``progress``, ``cancelled``, ``on_row``), defined once in
                `salience.model.batch_generation.generate_batch`.

        Returns:
            One `Generation` per prompt, in input order.
        """
        return generate_batch(self, prompts, settings, precision, **options)

    # ---- salience ----------------------------------------------------------
    def salience_for(
        self,
        request: SalienceRequest,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> SalienceResult:
        """Score every token of prompt+target for how it drove the target span (`Engine.salience_for`).

        ``request.char_span`` is a character span in ``prompt + target``; ``token_span`` a
        token span over the returned tokens. Without either, the whole target.
        Deletion (``occlusion``) needs ``segments``: token spans to delete one at a
        time (those before the target start count); each token carries its segment's
        score. ``progress``/``cancelled`` report on and stop a long Deletion.

        Args:
            request: the prompt, target, span, methods and their settings.
            progress: called with ``(done, total)`` as Deletion deletes segments.
            cancelled: polled during Deletion; True stops it with `CancelledError`.

        Returns:
            A `SalienceResult`: one score per token for each method, in ``request.methods``' order.
        """
        chosen = _chosen_methods(request)
        tokens, first_target = self._tokens_in_context(request.prompt, request.target)
        text = request.prompt + request.target
        start, end = self._resolve_span(tokens, first_target, text, request.char_span, request.token_span)
        forward = self.forward_for(request.precision)
        began = time.perf_counter()
        scores: dict[str, np.ndarray] = {}
        diagnostics: dict = {}
        log_prob = float("nan")
        # Deletion holds the model's lock one batch at a time, so other sessions' calls interleave.
        for method in chosen:
            if method.segment_level:
                deletion = (forward, tokens, (start, end), request.segments)
                log_prob = self._deletion(method.name, *deletion, scores, diagnostics, progress, cancelled)
        log_prob = self._gradients(
            chosen, forward, tokens, first_target, (start, end), request, scores, diagnostics, log_prob
        )
        return SalienceResult(
            text=text,
            prompt_length=len(request.prompt),
            tokens=tokens.tokens,
            offsets=tokens.offsets,
            target_token_span=(start, end),
            scores={method.name: scores[method.name] for method in chosen},
            target_log_prob=log_prob,
            seconds=time.perf_counter() - began,
            diagnostics=diagnostics,
            provenance=Provenance(
                self.spec, request.precision or self.precision, _parameters(chosen, request)
            ),
        )

    def _gradients(
        self,
        chosen: list,
        forward,
        tokens: Tokenization,
        first_target: int,
        span: tuple[int, int],
        request: SalienceRequest,
        scores: dict,
        diagnostics: dict,
        log_prob: float,
    ) -> float:
        """The gradient-based methods (one shared context, under the model's lock) into ``scores``
        and ``diagnostics``; returns the target's log-probability."""
        start, end = span
        with self._lock:
            # Pad to the whole target's width: other spans of this output reuse the graph.
            width = max(end - start, len(tokens) - first_target)
            context = GradientContext(
                forward,
                list(tokens.ids),
                start,
                end,
                request.integrated_steps,
                width,
                request.integrated_baseline,
                segments=request.segments,
            )
            for method in chosen:
                if method.segment_level:
                    continue
                values = np.asarray(method.compute(context), dtype=np.float32)
                values[start:] = 0.0
                scores[method.name] = values
            return _gradient_diagnostics(context, request, scores, diagnostics, log_prob)

    def _tokens_in_context(self, prompt: str, target: str) -> tuple[Tokenization, int]:
        """``prompt + target`` tokenized, and the first target token; `ContextLengthError` past the context."""
        tokens, first_target = self.tokenize_pair(prompt, target)
        if len(tokens) > self.max_context:
            raise ContextLengthError(
                f"Prompt and target are {len(tokens)} tokens, over the limit of {self.max_context} "
                f"{self._limit_reason()}; shorten the prompt by {len(tokens) - self.max_context} tokens."
            )
        return tokens, first_target

    def _deletion(
        self,
        name: str,
        forward,
        tokens: Tokenization,
        span: tuple[int, int],
        segments,
        scores: dict,
        diagnostics: dict,
        progress: Progress | None,
        cancelled: Cancelled | None,
    ) -> float:
        """Deletion (a segment-level method) into ``scores``/``diagnostics``; returns its log-probability."""
        start, end = span
        deletion = deletion_scores(
            forward,
            tokens.ids,
            start,
            end,
            segments,
            progress=progress,
            cancelled=cancelled,
            lock=self._lock,
        )
        scores[name] = deletion.per_token(len(tokens))
        diagnostics[name] = {
            "segments": [list(span) for span in deletion.segments],
            "log_prob": deletion.log_prob,
            "seconds": round(deletion.seconds, 4),
        }
        if cancelled is not None and cancelled():
            raise CancelledError("Deletion was cancelled.")
        # Two parts that each give the answer score near zero alone: delete the top two together.
        pair = redundancy(forward, tokens.ids, start, end, deletion, lock=self._lock)
        if pair is not None:
            diagnostics[name]["pair"] = {
                "segments": [list(deletion.segments[i]) for i in pair.pair],
                "alone": [round(value, 4) for value in pair.alone],
                "together": round(pair.together, 4),
            }
        return deletion.log_prob

    @staticmethod
    def _resolve_span(
        tokens: Tokenization,
        first_target: int,
        text: str,
        char_span: tuple[int, int] | None,
        token_span: tuple[int, int] | None,
    ) -> tuple[int, int]:
        if char_span is not None and token_span is not None:
            raise InputError("Give a character span or a token span, not both.")
        if token_span is not None:
            start, end = token_span
            if not 1 <= start < end <= len(tokens):
                raise InputError(
                    f"Token span {start}:{end} is outside 1:{len(tokens)}; "
                    "the first token (<bos>) cannot be a target."
                )
            return start, end
        if char_span is None:
            return first_target, len(tokens)
        begin, finish = char_span
        if not 0 <= begin < finish <= len(text):
            raise InputError(
                f"Span {begin}:{finish} is outside the text (0:{len(text)}); pick characters inside it."
            )
        covered = [
            index
            for index, (left, right) in enumerate(tokens.offsets)
            if index >= 1 and left < finish and right > begin
        ]
        if not covered:
            raise InputError(f"Span {begin}:{finish} covers no token; pick a span with text in it.")
        return covered[0], covered[-1] + 1


def _chosen_methods(request: SalienceRequest) -> list:
    """The request's methods from the registry, after every check that needs no model."""
    check_text(request.prompt, "prompt")
    check_text(request.target, "target")
    chosen = [get_method(name) for name in request.methods]
    if request.integrated_steps < 1 or request.integrated_steps > 512:
        raise InputError("Integrated gradients steps must be between 1 and 512.")
    if request.integrated_baseline not in IG_BASELINES:
        raise InputError(
            f"Unknown baseline '{request.integrated_baseline}'; choose one of: {', '.join(IG_BASELINES)}."
        )
    if DELETION in request.methods and request.segments is None:
        raise InputError("Deletion needs segments to delete: choose a granularity.")
    return chosen


def _gradient_diagnostics(
    context: GradientContext, request: SalienceRequest, scores: dict, diagnostics: dict, log_prob: float
) -> float:
    """The gradient methods' diagnostics into ``diagnostics``; returns the target's log-probability
    (the last method's that reports one, else ``log_prob`` unchanged)."""
    if "integrated_gradients" in scores:
        integrated = context.integrated
        diagnostics["integrated_gradients"] = {
            "baseline": request.integrated_baseline,
            "steps": request.integrated_steps,
            "log_prob_input": integrated.log_prob_input,
            "log_prob_baseline": integrated.log_prob_baseline,
            "attribution_sum": float(integrated.attributions.sum()),
            "completeness_gap": integrated.completeness_gap,
        }
        log_prob = integrated.log_prob_input
    if "grad_l2" in scores or "grad_dot_input" in scores:
        log_prob = context.log_prob
    estimate = context.deletion_estimate if "deletion_estimate" in scores else None
    if estimate is not None:
        diagnostics["deletion_estimate"] = {
            "checked": [list(estimate.segments[i]) for i in estimate.confirmed],
            "scale": round(estimate.scale, 4),
            "log_prob": estimate.log_prob,
            "seconds": round(estimate.seconds, 4),
        }
        log_prob = estimate.log_prob
    elif "attention_mask" in scores or "deletion_estimate" in scores:
        log_prob = context.attention_mask.log_prob
    return log_prob


def _parameters(chosen: list, request: SalienceRequest) -> dict[str, dict]:
    """Each method's settings for the result's provenance (only integrated gradients has any)."""
    parameters: dict[str, dict] = {method.name: {} for method in chosen}
    if "integrated_gradients" in parameters:
        parameters["integrated_gradients"] = {
            "baseline": request.integrated_baseline,
            "steps": request.integrated_steps,
        }
    return parameters
