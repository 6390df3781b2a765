"""Command line: ``python -m salience {generate,explain,prepare}``.

Every user error exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from salience.errors import InputError, WorkbenchError
from salience.methods import DEFAULT_IG_BASELINE, DEFAULT_IG_STEPS, IG_BASELINES, REGISTRY
from salience.text import unescape

EXIT_USER_ERROR = 2


def _read_text(path: str, what: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"The {what} file '{path}' does not exist.") from None
    except UnicodeDecodeError:
        raise InputError(f"The {what} file '{path}' is not UTF-8 text.") from None
    except OSError as error:
        raise InputError(f"Cannot read the {what} file '{path}': {error.strerror}.") from None


def _parse_span(value: str) -> tuple[int, int]:
    start, sep, end = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start), int(end)
    except ValueError:
        raise InputError(f"--span must look like START:END (two integers), got '{value}'.") from None


def _progress(message: str, fraction: float) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def _load(args):
    from salience.loading import load_model

    model = load_model(args.model, progress=_progress if not args.quiet else None)
    model.precision = model._check_precision(args.precision)
    return model


def _settings(args):
    from salience.types import GenerationSettings

    return GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        stop_sequences=tuple(unescape(s) for s in args.stop),
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        chat_template=args.chat,
    )


def cmd_generate(args) -> int:
    prompt = _read_text(args.prompt_file, "prompt")
    settings = _settings(args)
    model = _load(args)
    if args.json:
        result = model.generate(prompt, settings)
        print(
            json.dumps(
                {
                    "model": model.name,
                    "text": result.text,
                    "tokens": [model.tokenizer.piece(i) for i in result.token_ids],
                    "token_ids": list(result.token_ids),
                    "stop_reason": result.stop_reason,
                    "seconds": round(result.seconds, 3),
                    "tokens_per_second": round(result.tokens_per_second, 2),
                },
                ensure_ascii=False,
            )
        )
        return 0
    shown = 0
    for partial in model.stream(prompt, settings):
        sys.stdout.write(partial.text[shown:])
        sys.stdout.flush()
        shown = len(partial.text)
    sys.stdout.write("\n")
    return 0


def cmd_explain(args) -> int:
    from salience.explain import ExplainRequest, explain_request

    target = args.target if args.target is not None else _read_text(args.target_file, "target")
    options = {
        "span": _parse_span(args.span) if args.span else None,
        "methods": tuple(args.method or ()),
        "granularity": args.granularity,
        "pattern": args.regex,
        "aggregation": args.aggregate,
        "integrated_steps": args.steps,
        "integrated_baseline": args.baseline,
        "top": args.top,
    }
    if args.template_file:
        template = _read_text(args.template_file, "template")
        request = ExplainRequest.from_template(template, args.var, target, **options)
    else:
        if args.var:
            raise InputError("--var only applies with --template-file.")
        request = ExplainRequest(_read_text(args.prompt_file, "prompt"), target, **options)
    payload = explain_request(request, _load(args))
    report = payload.pop("report")
    print(json.dumps(payload, ensure_ascii=False) if args.json else report)
    return 0


def cmd_prepare(args) -> int:
    from salience.embedded import ensure_embedded_preset

    path = ensure_embedded_preset(progress=None if args.quiet else _progress)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m salience",
        description="Generate with Gemma and explain which parts of a prompt drove the output.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def model_options(sub):
        sub.add_argument(
            "--model", default="embedded", help="embedded (default), kaggle:PRESET, preset:DIR or gguf:FILE"
        )
        sub.add_argument("--precision", default="bfloat16", choices=("bfloat16", "float32"))
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.add_argument("--quiet", action="store_true", help="no progress on stderr")

    generate = commands.add_parser("generate", help="continue a prompt")
    generate.add_argument("--prompt-file", required=True, help="UTF-8 text file, or - for stdin")
    generate.add_argument("--max-new-tokens", type=int, default=64)
    generate.add_argument(
        "--stop", action="append", default=[], help="stop sequence, e.g. '\\n\\n' (repeatable)"
    )
    generate.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--chat", action="store_true", help="wrap the prompt in Gemma chat turns")
    model_options(generate)
    generate.set_defaults(handler=cmd_generate)

    explain = commands.add_parser("explain", help="salience of prompt tokens for a target")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt-file", help="UTF-8 text file, or - for stdin")
    source.add_argument("--template-file", help="a prompt template with {variables}")
    explain.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="template variable (repeatable)"
    )
    target = explain.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", help="target text that follows the prompt")
    target.add_argument("--target-file", help="file with the target text")
    explain.add_argument("--span", help="character span START:END in prompt+target (default: whole target)")
    explain.add_argument(
        "--method",
        action="append",
        choices=sorted(REGISTRY),
        help="repeatable; default grad_l2 and grad_dot_input; occlusion = Deletion (per segment: "
        "use --granularity sentences/lines/paragraphs/slots)",
    )
    explain.add_argument("--steps", type=int, default=DEFAULT_IG_STEPS, help="integrated gradients steps")
    explain.add_argument(
        "--baseline",
        default=DEFAULT_IG_BASELINE,
        choices=IG_BASELINES,
        help="integrated gradients: where the path starts for prompt tokens (default: zero embeddings)",
    )
    explain.add_argument(
        "--granularity", default="tokens", help="tokens, words, sentences, lines, paragraphs, slots, regex"
    )
    explain.add_argument("--regex", help="pattern marking segment starts (granularity regex)")
    explain.add_argument("--aggregate", default="sum", choices=("sum", "mean", "max"))
    explain.add_argument("--top", type=int, default=10, help="segments listed in the text report")
    model_options(explain)
    explain.set_defaults(handler=cmd_explain)

    prepare = commands.add_parser("prepare", help="build the embedded model cache now (idempotent)")
    prepare.add_argument("--quiet", action="store_true")
    prepare.set_defaults(handler=cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except WorkbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
