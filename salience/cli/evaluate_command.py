"""``python -m salience evaluate``: run template variants over a table of inputs with checks.

Exit status: 0 when the run completes (whatever the pass rate), 1 when ``--fail-under`` is given
and a variant's pass rate is below it, 2 for a mistake in the input (one line on stderr).
Everything is validated before the model loads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from salience.core.errors import InputError

EXIT_BELOW_THRESHOLD = 1


def _variant(spec: str, index: int):
    """``FILE`` (named after the file) or ``sample:NAME`` (a shipped sample with its values as
    defaults for variables the data has no column for)."""
    from salience.prompts.variant import Variant

    if spec.startswith("sample:"):
        from salience.prompts.samples import find_sample

        sample = find_sample(spec.removeprefix("sample:"))
        return Variant(sample.name, sample.template, dict(sample.variables))
    path = Path(spec)
    try:
        template = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"The template file '{spec}' does not exist.") from None
    except UnicodeDecodeError:
        raise InputError(f"The template file '{spec}' is not UTF-8 text; save it as UTF-8.") from None
    except OSError as error:
        raise InputError(f"Cannot read the template file '{spec}': {error.strerror}.") from None
    return Variant(path.stem or f"variant {index}", template)


def _unique_names(variants):
    from dataclasses import replace

    seen: dict[str, int] = {}
    named = []
    for variant in variants:
        seen[variant.name] = seen.get(variant.name, 0) + 1
        named.append(
            variant
            if seen[variant.name] == 1
            else replace(variant, name=f"{variant.name} ({seen[variant.name]})")
        )
    return named


def cmd_evaluate(args) -> int:
    """``python -m salience evaluate``: run template variants over a table of inputs with checks,
    printing a text report (or one JSON object) and each row's progress on stderr.

    Args:
        args: the parsed ``evaluate`` namespace (``--template-file`` variants, ``--data``,
            ``--check``, ``--fail-under`` and the model options).

    Returns:
        The exit status: 0, or ``EXIT_BELOW_THRESHOLD`` when a variant's pass rate is under
        ``--fail-under``; a user error raises ``InputError`` (status 2 in ``main``).

    Example:
    ```
    python -m salience evaluate --template-file a.txt --template-file b.txt --data rows.csv \\
        --check contains:Paris --fail-under 0.8
    ```
    """
    from salience.evaluation.runs import report_json, text_report

    _check_numbers(args)
    plan = _plan(args)
    results = _run(args, plan)
    print(
        json.dumps(report_json(plan, results), ensure_ascii=False)
        if args.json
        else text_report(plan, results)
    )
    return _threshold_status(args, plan, results)


def _check_numbers(args) -> None:
    """The numeric options argparse leaves unbounded, checked before any file is read."""
    if args.fail_under is not None and not 0.0 <= args.fail_under <= 1.0:
        raise InputError(f"--fail-under is a pass rate between 0 and 1, got {args.fail_under}.")
    if not 1 <= args.batch_size <= 64:
        raise InputError(f"--batch-size must be between 1 and 64, got {args.batch_size}.")
    if not 1 <= args.max_new_tokens <= 1024:
        raise InputError(f"--max-new-tokens must be between 1 and 1024, got {args.max_new_tokens}.")


def _plan(args):
    """The evaluation plan from the variants, the data and the checks; its warnings and notes on stderr."""
    from salience.evaluation.runs import load_data, parse_check, plan_evaluation

    variants = _unique_names([_variant(spec, i) for i, spec in enumerate(args.template_file, start=1)])
    checks = [parse_check(spec) for spec in args.check]
    plan = plan_evaluation(variants, load_data(args.data), checks, args.expected_column)
    if not args.quiet:
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for note in plan.notes:
            print(f"note: {note}", file=sys.stderr)
    return plan


def _run(args, plan) -> list:
    """Every cell of ``plan`` run on the model, each one's pass or FAIL on stderr as it finishes."""
    from salience.core.text import unescape
    from salience.core.types import GenerationSettings
    from salience.evaluation.runs import run_evaluation
    from salience.prompts.variant_comparison import TargetChoice

    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, stop_sequences=tuple(unescape(s) for s in args.stop)
    )
    target = TargetChoice("anchor", args.why) if args.why else None
    from salience.cli.open_model import open_model

    model = open_model(args)
    results = []
    runs = run_evaluation(
        plan, model, settings, batch_size=args.batch_size, target=target, precision=args.precision
    )
    for cell in runs:
        results.append(cell)
        if not args.quiet:
            print(
                f"[{len(results):>4}/{plan.size}] row {cell.row + 1} {plan.variants[cell.variant].name}: "
                f"{'pass' if cell.passed else 'FAIL'}",
                file=sys.stderr,
                flush=True,
            )
    return results


def _threshold_status(args, plan, results) -> int:
    """0, or ``EXIT_BELOW_THRESHOLD`` (naming the variants on stderr) when one passes under --fail-under."""
    from salience.evaluation.runs import summarize

    if args.fail_under is not None:
        below = [s for s in summarize(plan, results) if s.rate < args.fail_under]
        if below:
            names = ", ".join(f"{s.name} ({s.rate:.0%})" for s in below)
            print(f"below --fail-under {args.fail_under:g}: {names}", file=sys.stderr)
            return EXIT_BELOW_THRESHOLD
    return 0


def add_parser(commands, model_options) -> None:
    """Register the ``evaluate`` subcommand on the CLI's subparsers."""
    evaluate = commands.add_parser(
        "evaluate", help="run template variants over a table of inputs with checks"
    )
    evaluate.add_argument(
        "--template-file",
        action="append",
        required=True,
        metavar="FILE|sample:NAME",
        help="a template with {variables} (repeat for up to 4 variants); sample:NAME uses a shipped sample",
    )
    evaluate.add_argument("--data", required=True, help="CSV (header line) or JSONL rows of variable values")
    evaluate.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="KIND:VALUE",
        help="contains:, not-contains:, starts-with:, equals:, regex:, max-words:N, json "
        "(KIND/i:VALUE ignores case); repeatable",
    )
    evaluate.add_argument("--expected-column", help="column with each row's expected value (adds that check)")
    evaluate.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="rows decoded together (default 8); a row's output is the same at any batch size. "
        "Only float32 runs rows in batches: at bfloat16 (the default --precision) they are "
        "decoded one at a time, since batched bfloat16 changed outputs; --precision float32 "
        "evaluates about twice as fast here",
    )
    evaluate.add_argument("--max-new-tokens", type=int, default=48)
    evaluate.add_argument(
        "--stop", action="append", default=[], help="stop sequence, e.g. '\\n\\n' (repeatable)"
    )
    evaluate.add_argument(
        "--fail-under", type=float, metavar="RATE", help="exit 1 if a variant's pass rate is below"
    )
    evaluate.add_argument(
        "--why",
        metavar="WORD",
        help="also score each template part's share of salience for the output line starting with WORD",
    )
    model_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)
