"""The engine interface: the calls the app, the CLI and the engine deployment make on a model,
named once.

Two classes answer them: `LanguageModel` (the model in this process, `salience.model`) and
`RemoteModel` (the engine's HTTP client, `salience.serving.remote`). Code that only calls a
model takes an `EngineCalls`; which one it gets is decided where the model is opened.

A salience question is a `SalienceRequest`: its nine fields are the one definition of what a
salience call takes. ``model.salience(prompt, target, methods=..., segments=...)`` (the keyword
form the pages and the CLI use) builds one and runs ``model.salience_for(request)``.

Pure Python: no TensorFlow here, so the pages and the engine's client may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from salience.attribution.methods import DEFAULT_IG_BASELINE, DEFAULT_IG_STEPS, DEFAULT_METHODS
from salience.core.types import Generation, GenerationSettings, SalienceResult, Tokenization

Progress = Callable[[int, int], None]  # (done, total)
Cancelled = Callable[[], bool]  # polled; True stops the work


@dataclass(frozen=True)
class SalienceRequest:
    """One salience question: how each token of ``prompt + target`` drove a span of the target.

    Args:
        prompt: the prompt text (not empty, valid Unicode).
        target: the continuation to explain, appended to the prompt as generation appends it.
        char_span: a character span ``(start, end)`` in ``prompt + target`` to explain; or
        token_span: a token span over the result's tokens. Neither: the whole target.
        methods: names from `salience.attribution.methods.REGISTRY`, scored in this order.
        integrated_steps: Integrated Gradients' steps (1 to 512).
        precision: "bfloat16" or "float32"; None: the model's own.
        segments: token spans that the segment methods (Deletion, the Deletion estimate) score
            one at a time; Deletion needs them.
        integrated_baseline: the Integrated Gradients baseline (one of ``IG_BASELINES``).

    Example:
        >>> SalienceRequest("Taste-likes: Cheese.", " Avoid.", methods=("grad_l2",)).methods
        ('grad_l2',)
    """

    prompt: str
    target: str
    char_span: tuple[int, int] | None = None
    token_span: tuple[int, int] | None = None
    methods: Sequence[str] = DEFAULT_METHODS
    integrated_steps: int = DEFAULT_IG_STEPS
    precision: str | None = None
    segments: Sequence[tuple[int, int]] | None = None
    integrated_baseline: str = DEFAULT_IG_BASELINE

    def to_json(self) -> dict:
        """The request as the engine's ``/salience`` route reads it (`salience.serving.wire`)."""
        return {
            "prompt": self.prompt,
            "target": self.target,
            "char_span": list(self.char_span) if self.char_span is not None else None,
            "token_span": list(self.token_span) if self.token_span is not None else None,
            "methods": list(self.methods),
            "integrated_steps": self.integrated_steps,
            "precision": self.precision,
            "segments": [list(span) for span in self.segments] if self.segments is not None else None,
            "integrated_baseline": self.integrated_baseline,
        }

    @classmethod
    def from_json(cls, data: dict, precision: str | None = None) -> SalienceRequest:
        """The request the engine received (`to_json`'s form; missing fields take their
        defaults), at ``precision`` (the engine checks the request's own first)."""
        segments = data.get("segments")
        return cls(
            str(data.get("prompt", "")),
            str(data.get("target", "")),
            char_span=_span(data.get("char_span")),
            token_span=_span(data.get("token_span")),
            methods=tuple(data.get("methods") or DEFAULT_METHODS),
            integrated_steps=int(data.get("integrated_steps") or DEFAULT_IG_STEPS),
            precision=precision,
            segments=[(int(a), int(b)) for a, b in segments] if segments is not None else None,
            integrated_baseline=str(data.get("integrated_baseline") or DEFAULT_IG_BASELINE),
        )


def _span(value) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))


class SalienceCalls:
    """The keyword form of a salience call, shared by both engines: they implement
    `salience_for`, this builds its `SalienceRequest`."""

    def salience_for(
        self,
        request: SalienceRequest,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> SalienceResult:
        raise NotImplementedError

    def salience(
        self,
        prompt: str,
        target: str,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        **options,
    ) -> SalienceResult:
        """Score every token of ``prompt + target`` for how it drove the target (or a span of it).

        Args:
            prompt: the prompt text.
            target: the continuation to explain.
            progress: called with ``(done, total)`` as Deletion deletes segments.
            cancelled: polled during Deletion; True stops it with `CancelledError`.
            **options: any other field of `SalienceRequest` by name (``char_span``,
                ``token_span``, ``methods``, ``integrated_steps``, ``precision``, ``segments``,
                ``integrated_baseline``).

        Returns:
            A `SalienceResult`: tokens, offsets, one score per token for each method, the
            target's log-probability, diagnostics and provenance.

        Example:
            >>> result = model.salience(prompt, " Avoid it.", methods=("grad_l2",))  # doctest: +SKIP
            >>> result.scores["grad_l2"].shape == (len(result.tokens),)  # doctest: +SKIP
            True
        """
        request = SalienceRequest(prompt, target, **options)
        return self.salience_for(request, progress=progress, cancelled=cancelled)


@runtime_checkable
class EngineCalls(Protocol):
    """The calls made on a model, in this process (`LanguageModel`) or on the engine
    (`RemoteModel`). Both answer alike: same inputs, same results, same errors
    (`salience.core.errors`).

    Attributes:
        spec: the model spec it was opened with (e.g. ``gemma3_instruct_270m`` or ``gguf:PATH``).
        precision: the precision calls use when they name none.
        precisions: the precisions it computes in.
        max_context: the most tokens a prompt plus its new tokens may have.
    """

    spec: str
    precision: str
    precisions: tuple[str, ...]
    max_context: int

    def check_precision(self, precision: str) -> str:
        """``precision`` if the model computes in it; else an `InputError` naming those it does.

        Args:
            precision: "bfloat16" or "float32".

        Returns:
            ``precision`` unchanged.

        Example:
        >>> model.check_precision("float32")  # doctest: +SKIP
        'float32'
        """
        ...

    def tokenize(self, text: str, add_bos: bool = True) -> Tokenization:
        """Tokens of ``text`` with character offsets (``<bos>`` first by default).

        Args:
            text: the text to tokenize.
            add_bos: put ``<bos>`` first.

        Returns:
            A `Tokenization`: token ids, pieces and each token's character span in ``text``.

        Example:
        >>> model.tokenize("Hello world").tokens[0]  # doctest: +SKIP
        '<bos>'
        """
        ...

    def tokenize_pair(self, prompt: str, target: str) -> tuple[Tokenization, int]:
        """Tokens of ``<bos> prompt`` then ``target``, and the index of the first target token.

        Args:
            prompt: the prompt text.
            target: the text that follows it.

        Returns:
            The `Tokenization` of both and the first target token's index.

        Example:
        >>> tokens, first_target = model.tokenize_pair("Capital of France:", " Paris")  # doctest: +SKIP
        """
        ...

    def generate(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Generation:
        """Decode a continuation of ``prompt`` (greedy unless ``settings`` ask for sampling).

        Args:
            prompt: the prompt text.
            settings: max new tokens, stop sequences, sampling, chat template.
            precision: "bfloat16" or "float32"; None: the model's own.

        Returns:
            The final `Generation` (text, token ids, stop reason, timings).

        Example:
        >>> model.generate("Capital of France:", GenerationSettings(max_new_tokens=4)).stop_reason  # doctest: +SKIP
        """
        ...

    def stream(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Iterator[Generation]:
        """`generate`, yielding the growing generation after each token; the last is final.

        Args:
            prompt, settings, precision: as for `generate`.

        Returns:
            An iterator of `Generation`; the last one has the stop reason.

        Example:
        >>> for partial in model.stream("Capital of France:"):  # doctest: +SKIP
        ...     print(partial.text)
        """
        ...

    def generate_batch(
        self,
        prompts: Sequence[str],
        settings: GenerationSettings | None = None,
        precision: str | None = None,
        *,
        batch_size: int = 8,
        stop_sequences: Sequence[Sequence[str]] | None = None,
        seeds: Sequence[int | None] | None = None,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        on_row: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        """Decode many prompts ``batch_size`` rows at a time.

        Args:
            prompts: the prompts, one row each.
            settings, precision: as for `generate`.
            batch_size: rows decoded together.
            stop_sequences, seeds: per row, replacing ``settings``' own.
            progress: called with ``(done, total)`` after each finished row.
            cancelled: polled between steps; unfinished rows come back with stop reason
                ``"cancelled"``.
            on_row: called with ``(index, generation)`` as each row finishes.

        Returns:
            One `Generation` per prompt, in input order, each as `generate` gives it alone.

        Example:
            >>> rows = model.generate_batch(["Soup:", "Salad:"], batch_size=2)  # doctest: +SKIP
            >>> [row.stop_reason for row in rows]  # doctest: +SKIP
        """
        ...

    def salience(
        self,
        prompt: str,
        target: str,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        **options,
    ) -> SalienceResult:
        """The keyword form of `salience_for` (see `SalienceCalls.salience`).

        Args:
            prompt: the prompt text.
            target: the continuation to explain.
            progress, cancelled: as for `salience_for`.
            **options: any other field of `SalienceRequest` by name.

        Returns:
            A `SalienceResult`.

        Example:
        >>> model.salience(prompt, " Avoid it.", methods=("grad_l2",))  # doctest: +SKIP
        """
        ...

    def salience_for(
        self,
        request: SalienceRequest,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> SalienceResult:
        """Answer one `SalienceRequest`.

        Args:
            request: the prompt, target, span, methods and their settings.
            progress: called with ``(done, total)`` as Deletion deletes segments.
            cancelled: polled during Deletion; True stops it with `CancelledError`.

        Returns:
            A `SalienceResult` for ``request``.

        Example:
            >>> request = SalienceRequest("Taste-likes: Cheese.", " Avoid.", methods=("grad_l2",))
            >>> result = model.salience_for(request)  # doctest: +SKIP
        """
        ...
