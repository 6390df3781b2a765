"""An engine deployment of a tiny model (2 replicas, float32) shared by this folder's tests."""

from __future__ import annotations

import pytest
from engine_server import running_engine


@pytest.fixture(scope="session")
def engine(tiny_gguf):
    """A running two-replica engine for the tiny model (yields an `EngineProcess`)."""
    with running_engine(f"gguf:{tiny_gguf}", replicas=2) as started:
        yield started


@pytest.fixture(scope="session")
def local_model(tiny_gguf):
    """The same tiny model loaded in this process, float32: what the engine must equal."""
    from salience.model.loader import load_model

    model = load_model(f"gguf:{tiny_gguf}")
    model.precision = "float32"
    return model


@pytest.fixture(scope="session")
def remote(engine):
    from salience.serving.remote import connect

    return connect(engine.url)
