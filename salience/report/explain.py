"""Turn a salience result into segments, a per-slot roll-up and a readable report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from salience.attribution.methods import (
    DEFAULT_IG_BASELINE,
    DEFAULT_IG_STEPS,
    DEFAULT_METHOD,
    DELETION,
    get_method,
    segment_aggregation,
)
from salience.core.errors import InputError
from salience.core.types import SalienceResult
from salience.prompts.rollup import rollup
from salience.prompts.segments import aggregate, make_segments
from salience.prompts.templates import RenderedPrompt, parse_template, render

if TYPE_CHECKING:
    from salience.model.engine import EngineCalls


def segment_payload(
    result: SalienceResult,
    granularity: str = "tokens",
    pattern: str | None = None,
    aggregation: str = "sum",
    rendered: RenderedPrompt | None = None,
) -> list[dict]:
    """Segments of prompt+target, each with its text, span and one score per method.

    Args:
        result: the `SalienceResult` to cut up.
        granularity: tokens, words, sentences, lines, paragraphs, slots or regex.
        pattern: the regex marking segment starts (granularity "regex").
        aggregation: how a segment's token scores combine: sum, mean or max.
        rendered: the rendered template ("slots" needs it).

    Returns:
        One dict per segment: text, start, end, token_start, token_end, in_target and a score
        per method.

    Example:
    >>> rows = segment_payload(result, "sentences")  # doctest: +SKIP
    >>> max(rows, key=lambda row: row["grad_l2"])["text"]  # doctest: +SKIP
    """
    if granularity == "slots" and rendered is None:
        raise InputError("The 'slots' granularity needs a template (--template-file).")
    segments = make_segments(
        result.text,
        result.offsets,
        granularity,
        prompt_length=result.prompt_length,
        slots=rendered.slots if rendered else (),
        pattern=pattern,
    )
    per_method = {
        name: aggregate(values, segments, segment_aggregation(name, aggregation))
        for name, values in result.scores.items()
    }
    return [
        {
            "text": seg.text,
            "start": seg.start,
            "end": seg.end,
            "token_start": seg.token_start,
            "token_end": seg.token_end,
            "in_target": seg.in_target,
            **{name: float(values[i]) for name, values in per_method.items()},
        }
        for i, seg in enumerate(segments)
    ]


def rollup_payload(result: SalienceResult, rendered: RenderedPrompt) -> dict[str, list[dict]]:
    """Per-slot roll-up for every method in the result.

    Args:
        result: the `SalienceResult` of a rendered template.
        rendered: that template, rendered (its slots).

    Returns:
        For each method, one dict per slot (name, total, share, …).

    Example:
    >>> rollup_payload(result, rendered)["grad_l2"][0]["name"]  # doctest: +SKIP
    """
    return {
        name: [
            row.to_json()
            for row in rollup(
                rendered.slots, result.text, result.offsets, result.summable(name), result.prompt_length
            )
        ]
        for name in result.scores
    }


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings to a dict; ``\\n`` in values becomes a newline."""
    values: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--var must look like NAME=VALUE, got '{item}'.")
        values[name] = value.replace("\\n", "\n")
    return values


def text_report(payload: dict, top: int = 10) -> str:
    """A short plain-text summary: target, then the strongest prompt segments per method.

    Args:
        payload: what `explain_request` returns.
        top: segments listed per method.

    Returns:
        The text ``python -m salience explain`` prints without ``--json``.

    Example:
    >>> print(text_report(payload, top=3))  # doctest: +SKIP
    """
    lines = [f"Model: {payload['model']}", f"Explaining: {payload['target_text']!r}"]
    for name in payload["methods"]:
        method = get_method(name)
        rows = [s for s in payload["segments"] if not s["in_target"] and s["text"].strip()]
        rows.sort(key=lambda s: -abs(s[name]))
        lines.append(f"\n{method.label} — top {min(top, len(rows))} {payload['granularity']}:")
        for seg in rows[:top]:
            lines.append(f"  {seg[name]:+9.4f}  {seg['text'].strip()[:70]!r}")
        if "rollup" in payload:
            lines.append("  by template slot (total, share):")
            for row in sorted(payload["rollup"][name], key=lambda r: -r["share"]):
                lines.append(f"    {row['name']:<24} {row['total']:+9.4f} {row['share']:6.1%}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: a prompt (or a rendered template), the target text and the options.

    Built from plain values, so the CLI, tests and other callers share it; checks that
    need no model run on construction, before any model is loaded."""

    prompt: str
    target: str
    rendered: RenderedPrompt | None = None
    span: tuple[int, int] | None = None  # characters in prompt + target; None = the whole target
    methods: tuple[str, ...] = (DEFAULT_METHOD,)
    granularity: str = "sentences"
    pattern: str | None = None
    aggregation: str = "sum"
    integrated_steps: int = DEFAULT_IG_STEPS
    integrated_baseline: str = DEFAULT_IG_BASELINE
    top: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods or (DEFAULT_METHOD,))))
        if self.granularity == "slots" and self.rendered is None:
            raise InputError("The 'slots' granularity needs a template (--template-file).")

    @classmethod
    def from_template(
        cls, template: str, assignments: Sequence[str], target: str, **options
    ) -> ExplainRequest:
        """A request for a template filled with ``NAME=VALUE`` assignments.

        Args:
            template: the template text with its ``{variables}``.
            assignments: ``NAME=VALUE`` strings (``\\n`` in a value is a newline).
            target: the text to explain.
            **options: any other field of `ExplainRequest` (span, methods, granularity, …).

        Returns:
            An `ExplainRequest` for the rendered prompt, which keeps its slots for the roll-up.

        Example:
        >>> request = ExplainRequest.from_template("Likes: {likes}.", ["likes=cheese"], " Avoid.", granularity="slots")
        >>> request.prompt
        'Likes: cheese.'
        """
        rendered = render(parse_template(template), parse_assignments(assignments))
        return cls(rendered.text, target, rendered=rendered, **options)


def explain_request(request: ExplainRequest, model: EngineCalls) -> dict:
    """Run ``explain`` on a loaded model; returns the JSON payload (with a text report).

    Args:
        request: the prompt (or rendered template), target, span, methods and granularity.
        model: a `LanguageModel` or the engine's `RemoteModel` (any `EngineCalls`).

    Returns:
        The payload ``python -m salience explain --json`` prints: tokens, offsets, scores per
        method, segments with their scores, the per-slot roll-up, diagnostics and a text report.

    Example:
        >>> payload = explain_request(ExplainRequest("Taste-likes: Cheese.", " Avoid."), model)  # doctest: +SKIP
        >>> payload["methods"]  # doctest: +SKIP
        ['deletion_estimate']
    """
    prompt, target, rendered = request.prompt, request.target, request.rendered
    segments = None
    if any(get_method(name).aggregation for name in request.methods):  # Deletion and its estimate
        tokens, _ = model.tokenize_pair(prompt, target)
        segments = [
            (seg.token_start, seg.token_end)
            for seg in make_segments(
                prompt + target,
                tokens.offsets,
                request.granularity,
                prompt_length=len(prompt),
                slots=rendered.slots if rendered else (),
                pattern=request.pattern,
            )
        ]
    result = model.salience(
        prompt,
        target,
        char_span=request.span,
        methods=request.methods,
        integrated_steps=request.integrated_steps,
        segments=segments,
        integrated_baseline=request.integrated_baseline,
    )
    if DELETION in request.methods:
        result = result.with_parameters(DELETION, granularity=request.granularity, pattern=request.pattern)
    payload = {
        "model": model.name,
        "precision": model.precision,
        "methods": list(request.methods),
        "granularity": request.granularity,
        "aggregation": request.aggregation,
        **result.to_json(),
        "segments": segment_payload(
            result, request.granularity, request.pattern, request.aggregation, rendered
        ),
    }
    if rendered is not None:
        payload["rollup"] = rollup_payload(result, rendered)
    payload["report"] = text_report(payload, request.top)
    if not all(np.isfinite(v).all() for v in result.scores.values()):
        raise InputError("The model returned non-finite scores; try --precision float32.")
    return payload
