"""Command line: ``python -m salience {generate,explain,prepare,evaluate,serve}``.

Every user error exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from salience.attribution.methods import (
    DEFAULT_IG_BASELINE,
    DEFAULT_IG_STEPS,
    DEFAULT_METHOD,
    IG_BASELINES,
    REGISTRY,
)
from salience.cli.open_model import open_model, progress_line
from salience.core.errors import InputError, WorkbenchError
from salience.core.text import unescape
from salience.prompts.segments import GRANULARITIES

EXIT_USER_ERROR = 2
MAX_NEW_TOKENS = (
    4096  # salience.model.language_model.MAX_NEW_TOKENS_LIMIT (that module loads the model stack)
)
MAX_IG_STEPS = 512
# Options naming files (a file name may hold any bytes); every other text option must be valid Unicode.
PATH_OPTIONS = ("prompt_file", "template_file", "target_file", "data", "model")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: ...`` and exit status 2, like every other user error."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def _number(kind: Callable, what: str, low: float | None = None, high: float | None = None, open_low=False):
    """An argparse type: a finite ``kind`` number in [low, high] (or (low, high] with ``open_low``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{what} must be a finite number, got '{text}'")
        if low is not None and (value <= low if open_low else value < low):
            bound = f"above {low:g}" if open_low else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got '{text}'")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{what} must be at most {high:g}, got '{text}'")
        return value

    return parse


def _not_unicode(text: str) -> str:
    """Why ``text`` is not valid Unicode ('' when it is): a lone surrogate, which is what Python
    makes of bytes that are not UTF-8 in an argument or on standard input."""
    found = _SURROGATE.search(text)
    if found is None:
        return ""
    return (
        f"character {found.start() + 1} is {ascii(found.group())[1:-1]}, a lone surrogate (bytes that are "
        "not UTF-8, or a half of a character)"
    )


def _check_text_options(args: argparse.Namespace) -> None:
    """Every text option is valid Unicode, checked before anything loads (file names may hold any bytes)."""
    for name, value in vars(args).items():
        if name in PATH_OPTIONS:
            continue
        for text in value if isinstance(value, list) else [value]:
            problem = _not_unicode(text) if isinstance(text, str) else ""
            if problem:
                raise InputError(f"--{name.replace('_', '-')} is not valid text: {problem}; pass UTF-8 text.")


def _read_text(path: str, what: str) -> str:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"The {what} file '{path}' does not exist.") from None
    except UnicodeDecodeError:
        raise InputError(f"The {what} file '{path}' is not UTF-8 text.") from None
    except OSError as error:
        raise InputError(f"Cannot read the {what} file '{path}': {error.strerror}.") from None
    problem = _not_unicode(text)
    if problem:  # standard input decoded with surrogateescape
        raise InputError(f"The {what} on standard input is not UTF-8 text: {problem}.")
    return text


def _parse_span(value: str) -> tuple[int, int]:
    start, sep, end = value.partition(":")
    try:
        if not sep:
            raise ValueError
        begin, finish = int(start), int(end)
    except ValueError:
        raise InputError(f"--span must look like START:END (two integers), got '{value}'.") from None
    if begin < 0 or finish < 0:
        raise InputError(f"--span {value} has a negative position; characters count from 0.")
    if finish < begin:
        raise InputError(f"--span {value} is reversed: START comes first (did you mean {finish}:{begin}?).")
    if finish == begin:
        raise InputError(f"--span {value} is empty: END must be after START.")
    return begin, finish


def _check_span(span: tuple[int, int], prompt: str, target: str) -> None:
    """A span must lie in the target (characters len(prompt) .. len(prompt + target))."""
    begin, finish = span
    first, last = len(prompt), len(prompt) + len(target)
    if finish > last:
        raise InputError(
            f"--span {begin}:{finish} is outside the text (0:{last}); the target is {first}:{last}."
        )
    if begin < first:
        raise InputError(
            f"--span {begin}:{finish} starts inside the prompt (0:{first}); salience explains a part of "
            f"the target, which is {first}:{last}."
        )


def _check_prompt(text: str, what: str) -> None:
    if not text:
        raise InputError(f"The {what} is empty: type some text first.")


def _settings(args):
    from salience.core.types import GenerationSettings

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
    """``python -m salience generate``: continue a prompt, streamed to stdout (or one JSON object).

    Args:
        args: the parsed ``generate`` namespace (``--prompt-file``, the generation settings and
            the model options).

    Returns:
        The exit status, 0; a user error raises ``InputError`` (status 2 in ``main``).

    Example:
    ```
    python -m salience generate --prompt-file prompt.txt --max-new-tokens 32 --json
    ```
    """
    prompt = _read_text(args.prompt_file, "prompt")
    _check_prompt(prompt, "prompt")
    settings = _settings(args)
    model = open_model(args)
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
    """``python -m salience explain``: which parts of the prompt drove a target, as a text
    report or one JSON object (the payload of ``salience.report.explain.explain_request``).

    Args:
        args: the parsed ``explain`` namespace (prompt or template, target, span, methods,
            granularity and the model options).

    Returns:
        The exit status, 0; a user error raises ``InputError`` (status 2 in ``main``).

    Example:
    ```
    python -m salience explain --prompt-file prompt.txt --target " Paris." --granularity words
    ```
    """
    from salience.report.explain import ExplainRequest, explain_request

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
    _check_request(request)
    payload = explain_request(request, open_model(args))
    report = payload.pop("report")
    print(json.dumps(payload, ensure_ascii=False) if args.json else report)
    return 0


def _check_request(request) -> None:
    """Every check that needs no model, so a typo never waits for the model to load."""
    from salience.prompts.segments import segment_starts

    _check_prompt(request.prompt, "prompt")
    _check_prompt(request.target, "target")
    if request.span is not None:
        _check_span(request.span, request.prompt, request.target)
    if request.granularity not in ("tokens", "slots"):
        segment_starts(request.prompt + request.target, request.granularity, pattern=request.pattern)


def cmd_prepare(args) -> int:
    """``python -m salience prepare``: build the embedded model cache and print its folder.

    Args:
        args: the parsed ``prepare`` namespace (``--quiet`` hides the progress lines).

    Returns:
        The exit status, 0.

    Example:
    ```
    python -m salience prepare --quiet
    ```
    """
    from salience.model.embedded import ensure_embedded_preset

    path = ensure_embedded_preset(progress=None if args.quiet else progress_line)
    print(path)
    return 0


def cmd_serve(args) -> int:
    """``python -m salience serve``: run the engine on Ray Serve until Ctrl+C.

    Args:
        args: the parsed ``serve`` namespace (model, Ray resources, HTTP address, access and limits).

    Returns:
        The exit status of ``salience.serving.deployment.serve_forever``.

    Example:
    ```
    python -m salience serve --replicas 2 --port 8300 --token-file tokens.txt
    ```
    """
    from salience.serving.access import Limits
    from salience.serving.deployment import ServeOptions, serve_forever

    limits = Limits(
        max_prompt_chars=args.max_prompt_chars,
        max_new_tokens=args.max_new_tokens,
        max_batch_rows=args.max_batch_rows,
        max_integrated_steps=args.max_steps,
        max_segments=args.max_segments,
        max_concurrent=args.max_concurrent,
        request_seconds=args.request_seconds,
    )
    options = ServeOptions(
        spec=args.model,
        precision=args.precision,
        replicas=args.replicas,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        address=args.address,
        host=args.host,
        port=args.port,
        token_file=args.token_file,
        limits=limits,
    )
    return serve_forever(options, report=lambda line: print(line, flush=True))


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m salience`` argument parser: one subcommand per ``cmd_*`` function.

    Returns:
        An ``argparse.ArgumentParser`` whose parsed namespace carries ``handler``, the
        ``cmd_*`` function to call with it.

    Example:
    >>> args = build_parser().parse_args(["prepare", "--quiet"])
    >>> args.handler is cmd_prepare
    True
    """
    parser = _Parser(
        prog="python -m salience",
        description="Generate with Gemma and explain which parts of a prompt drove the output.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_generate(commands)
    _add_explain(commands)
    _add_prepare(commands)
    _add_serve(commands)

    from salience.cli.evaluate_command import add_parser as add_evaluate

    add_evaluate(commands, _model_options)
    return parser


def _model_options(sub: argparse.ArgumentParser) -> None:
    """The options every model-running subcommand shares: which model, where it runs, how it reports."""
    sub.add_argument(
        "--model", default="embedded", help="embedded (default), kaggle:PRESET, preset:DIR or gguf:FILE"
    )
    sub.add_argument("--precision", default="bfloat16", choices=("bfloat16", "float32"))
    sub.add_argument(
        "--engine",
        metavar="URL",
        help="run the model on an engine deployment (python -m salience serve) instead of here; "
        "default: $GEMMA_WORKBENCH_ENGINE",
    )
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _add_generate(commands) -> None:
    """``generate``: the prompt file and the generation settings."""
    generate = commands.add_parser("generate", help="continue a prompt")
    generate.add_argument("--prompt-file", required=True, help="UTF-8 text file, or - for stdin")
    generate.add_argument(
        "--max-new-tokens", type=_number(int, "--max-new-tokens", 1, MAX_NEW_TOKENS), default=64
    )
    generate.add_argument(
        "--stop", action="append", default=[], help="stop sequence, e.g. '\\n\\n' (repeatable)"
    )
    generate.add_argument(
        "--temperature", type=_number(float, "--temperature", 0.0), default=0.0, help="0 = greedy (default)"
    )
    generate.add_argument("--top-k", type=_number(int, "--top-k", 1), help="sample from the k likeliest")
    generate.add_argument(
        "--top-p", type=_number(float, "--top-p", 0.0, 1.0, open_low=True), help="nucleus, in (0, 1]"
    )
    generate.add_argument("--seed", type=_number(int, "--seed", 0, 2**63 - 1))
    generate.add_argument("--chat", action="store_true", help="wrap the prompt in Gemma chat turns")
    _model_options(generate)
    generate.set_defaults(handler=cmd_generate)


def _add_explain(commands) -> None:
    """``explain``: where the prompt and target come from, then the salience options."""
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
    _add_method_options(explain)
    explain.add_argument(
        "--granularity",
        default="sentences",
        choices=GRANULARITIES,
        help="the segments that are scored and listed (default: sentences, as on the page)",
    )
    explain.add_argument("--regex", help="pattern marking segment starts (granularity regex)")
    explain.add_argument("--aggregate", default="sum", choices=("sum", "mean", "max"))
    explain.add_argument(
        "--top", type=_number(int, "--top", 1), default=10, help="segments listed in the text report"
    )
    _model_options(explain)
    explain.set_defaults(handler=cmd_explain)


def _add_method_options(explain: argparse.ArgumentParser) -> None:
    """``explain``'s salience methods and the integrated-gradients settings."""
    explain.add_argument(
        "--method",
        action="append",
        choices=sorted(REGISTRY),
        help=f"repeatable; default {DEFAULT_METHOD} (the page's first colours: Deletion estimated for every "
        "segment of --granularity, the key ones deleted for real); occlusion = Deletion (per segment: "
        "use --granularity sentences/lines/paragraphs/slots)",
    )
    explain.add_argument(
        "--steps",
        type=_number(int, "--steps", 1, MAX_IG_STEPS),
        default=DEFAULT_IG_STEPS,
        help="integrated gradients steps",
    )
    explain.add_argument(
        "--baseline",
        default=DEFAULT_IG_BASELINE,
        choices=IG_BASELINES,
        help="integrated gradients: where the path starts for prompt tokens (default: zero embeddings)",
    )


def _add_prepare(commands) -> None:
    """``prepare``: build the embedded model cache."""
    prepare = commands.add_parser("prepare", help="build the embedded model cache now (idempotent)")
    prepare.add_argument("--quiet", action="store_true")
    prepare.set_defaults(handler=cmd_prepare)


def _add_serve(commands) -> None:
    """``serve``: the model, the Ray resources, the HTTP address, then access and limits."""
    serve = commands.add_parser(
        "serve",
        help="run the engine as a Ray Serve deployment that apps and CLIs share (--engine URL)",
        description="Deploy the engine (tokenize, generation, batched generation, every salience method) "
        "on Ray Serve with an HTTP interface. Without --address it starts a local Ray instance on "
        "127.0.0.1; with one it joins that cluster. Ctrl+C stops it.",
    )
    serve.add_argument(
        "--model", default="embedded", help="embedded (default), kaggle:PRESET, preset:DIR or gguf:FILE"
    )
    serve.add_argument(
        "--precision", default="bfloat16", choices=("bfloat16", "float32"), help="the one precision it serves"
    )
    serve.add_argument(
        "--replicas", type=_number(int, "--replicas", 1, 64), default=1, help="copies of the model"
    )
    serve.add_argument(
        "--num-cpus", type=_number(float, "--num-cpus", 0.0), default=1.0, help="CPUs each replica reserves"
    )
    serve.add_argument(
        "--num-gpus", type=_number(float, "--num-gpus", 0.0), default=0.0, help="GPUs each replica reserves"
    )
    serve.add_argument("--address", help="join this Ray cluster (HOST:PORT from 'ray start --head', or auto)")
    serve.add_argument("--host", default="127.0.0.1", help="address the HTTP interface listens on")
    serve.add_argument("--port", type=_number(int, "--port", 1, 65535), default=8300)
    _add_access_options(serve)
    serve.set_defaults(handler=cmd_serve)


def _add_access_options(serve: argparse.ArgumentParser) -> None:
    """``serve``'s token and per-request limits (`salience.serving.access`)."""
    from salience.serving.access import Limits

    default = Limits()
    access = serve.add_argument_group(
        "access",
        "Lock the engine with $GEMMA_WORKBENCH_ENGINE_TOKEN or --token-file (then every request but "
        "/healthz needs 'Authorization: Bearer TOKEN'); the limits hold for every request.",
    )
    access.add_argument(
        "--token-file",
        help="accept the tokens in this file, one a line (one per client); wins over the variable",
    )
    limits = (
        (
            "--max-prompt-chars",
            int,
            default.max_prompt_chars,
            "characters in one prompt (or prompt + target)",
        ),
        ("--max-new-tokens", int, default.max_new_tokens, "max_new_tokens one request may ask for"),
        ("--max-batch-rows", int, default.max_batch_rows, "rows in one batched-generation request"),
        ("--max-steps", int, default.max_integrated_steps, "Integrated Gradients steps in one request"),
        ("--max-segments", int, default.max_segments, "Deletion segments in one request"),
        ("--max-concurrent", int, default.max_concurrent, "requests at once per token, on each replica"),
        ("--request-seconds", float, default.request_seconds, "time limit of one request, in seconds"),
    )
    for flag, kind, value, text in limits:
        access.add_argument(
            flag,
            type=_number(kind, flag, 0, open_low=True),
            default=value,
            help=f"{text} (default {value:g})",
        )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: the arguments after ``python -m salience`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0, or 2 after a one-line error on stderr for any user error.

    Example:
    >>> main(["prepare", "--quiet"])  # doctest: +SKIP
    0
    """
    args = build_parser().parse_args(argv)
    try:
        _check_text_options(args)
        return args.handler(args)
    except WorkbenchError as error:  # (a file name's undecodable bytes shown as escapes, e.g. \udcff)
        print(f"error: {error}".encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
