"""Open the model a command runs on: the engine over HTTP, or a model loaded in this process.

Shared by every command (`salience.cli.commands`, `salience.cli.evaluate_command`). Imports no
TensorFlow until a model is loaded here.
"""

from __future__ import annotations

import sys


def progress_line(message: str, fraction: float) -> None:
    """A load's progress as one line on stderr: ``[ 40%] message``."""
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def engine_from_args(args) -> str | None:
    """The engine URL from --engine or $GEMMA_WORKBENCH_ENGINE (None: run the model here)."""
    from salience.serving.remote import check_url, engine_url

    url = getattr(args, "engine", None) or engine_url()
    return check_url(url) if url else None


def open_model(args):
    """The model the command runs on: the engine's client when --engine or
    $GEMMA_WORKBENCH_ENGINE names one (no TensorFlow in this process), else the model of
    --model loaded here; either at --precision.

    Args:
        args: the parsed command line (``engine``, ``model``, ``precision``, ``quiet``).

    Returns:
        A `RemoteModel` or a `LanguageModel`; both answer the `Engine` calls.

    Example:
        >>> model = open_model(build_parser().parse_args(["generate", "--prompt-file", "p.txt"]))  # doctest: +SKIP
    """
    url = engine_from_args(args)
    if url is not None:  # the model runs on the engine: no TensorFlow in this process
        from salience.serving.remote import connect

        model = connect(url, progress=progress_line if not args.quiet else None)
        model.precision = model.check_precision(args.precision)
        return model
    from salience.model.loader import import_tensorflow_quietly, load_model

    import_tensorflow_quietly()  # its C++ start-up notices would come before any error line

    model = load_model(args.model, progress=progress_line if not args.quiet else None)
    model.precision = model.check_precision(args.precision)
    if model.notice:  # e.g. a damaged cache that was rebuilt: said even with --quiet
        print(f"note: {model.notice}", file=sys.stderr, flush=True)
    return model
