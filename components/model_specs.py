"""Which model the app uses: the engine it is pointed at, else the in-process model.

The app's default model spec is the engine the app is pointed at (``--engine URL`` or
``$GEMMA_WORKBENCH_ENGINE``), else ``$WORKBENCH_MODEL`` (default ``embedded``); tests point the
latter at a tiny GGUF file that they write themselves.
"""

from __future__ import annotations

import argparse
import os

from salience.serving.remote import ENGINE_ENV, engine_url, is_engine_spec

MODEL_ENV = "WORKBENCH_MODEL"


def in_process_spec() -> str:
    """The model this process loads itself: ``$WORKBENCH_MODEL``, else the embedded one."""
    return os.environ.get(MODEL_ENV, "embedded")


def engine_spec() -> str | None:
    """The engine the app is pointed at (``--engine`` / ``$GEMMA_WORKBENCH_ENGINE``), or None."""
    return engine_url()


def default_spec() -> str:
    """The app's default model: the engine when one is set, else the in-process model."""
    return engine_spec() or in_process_spec()


def is_remote(spec: str | None) -> bool:
    """A spec served by an engine (an http(s) address, or whatever the engine setting says:
    a malformed setting must fail as an engine address, never load a model here)."""
    return is_engine_spec(spec) or (spec is not None and spec == engine_url())


def engine_from_args(argv: list[str]) -> str | None:
    """Apply ``--engine URL`` from the script's arguments (``streamlit run serve.py -- --engine
    URL``) to this process, as ``$GEMMA_WORKBENCH_ENGINE``; returns the engine in effect."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--engine")
    known, _ = parser.parse_known_args(argv)
    if known.engine:
        os.environ[ENGINE_ENV] = known.engine.strip()
    return engine_url()
