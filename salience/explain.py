"""Turn a salience result into segments, a per-slot roll-up and a readable report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from salience.errors import InputError
from salience.methods import DEFAULT_METHODS, DELETION, get_method, segment_aggregation
from salience.rollup import rollup
from salience.segments import aggregate, make_segments
from salience.templates import RenderedPrompt, parse_template, render
from salience.types import SalienceResult


def segment_payload(
    result: SalienceResult,
    granularity: str = "tokens",
    pattern: str | None = None,
    aggregation: str = "sum",
    rendered: RenderedPrompt | None = None,
) -> list[dict]:
    """Segments of prompt+target, each with its text, span and one score per method."""
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
    """Per-slot roll-up for every method in the result."""
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
    """A short plain-text summary: target, then the strongest prompt segments per method."""
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


def explain_request(args, read_text, parse_span, load) -> dict:
    """Run ``explain`` for parsed CLI arguments; returns the JSON payload (with a text report)."""
    rendered = None
    if args.template_file:
        template = parse_template(read_text(args.template_file, "template"))
        rendered = render(template, parse_assignments(args.var))
        prompt = rendered.text
    else:
        if args.var:
            raise InputError("--var only applies with --template-file.")
        prompt = read_text(args.prompt_file, "prompt")
    target = args.target if args.target is not None else read_text(args.target_file, "target")
    span = parse_span(args.span) if args.span else None
    methods = tuple(dict.fromkeys(args.method or DEFAULT_METHODS))
    if args.granularity == "slots" and rendered is None:
        raise InputError("The 'slots' granularity needs a template (--template-file).")
    model = load(args)
    segments = None
    if DELETION in methods:
        tokens, _ = model.tokenize_pair(prompt, target)
        segments = [
            (seg.token_start, seg.token_end)
            for seg in make_segments(
                prompt + target,
                tokens.offsets,
                args.granularity,
                prompt_length=len(prompt),
                slots=rendered.slots if rendered else (),
                pattern=args.regex,
            )
        ]
    result = model.salience(
        prompt,
        target,
        char_span=span,
        methods=methods,
        integrated_steps=args.steps,
        segments=segments,
        integrated_baseline=args.baseline,
    )
    payload = {
        "model": model.name,
        "precision": model.precision,
        "methods": list(methods),
        "granularity": args.granularity,
        "aggregation": args.aggregate,
        **result.to_json(),
        "segments": segment_payload(result, args.granularity, args.regex, args.aggregate, rendered),
    }
    if rendered is not None:
        payload["rollup"] = rollup_payload(result, rendered)
    payload["report"] = text_report(payload, args.top)
    if not all(np.isfinite(v).all() for v in result.scores.values()):
        raise InputError("The model returned non-finite scores; try --precision float32.")
    return payload
