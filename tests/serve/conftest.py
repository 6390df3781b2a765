"""An engine deployment of a tiny model (2 replicas, float32) shared by this folder's tests."""

from __future__ import annotations

import shutil

import pytest
from engine_server import running_engine


@pytest.fixture(scope="session")
def engine_gguf(tmp_path_factory, tiny_gguf):
    """The tiny model (`tiny_gguf`) under a path of its own: a model spec that this process's model
    registry has not loaded (the AppTests load `tiny_gguf` here), so a test can tell that a result
    came from the engine and not from an in-process fallback."""
    path = tmp_path_factory.mktemp("engine-model") / "tiny.gguf"
    shutil.copyfile(tiny_gguf, path)
    return path


@pytest.fixture(scope="session")
def engine(engine_gguf):
    """A running two-replica engine for the tiny model (yields an `EngineProcess`)."""
    with running_engine(f"gguf:{engine_gguf}", replicas=2) as started:
        yield started


@pytest.fixture(scope="session")
def local_model(engine_gguf):
    """The same tiny model loaded in this process, float32: what the engine must equal."""
    from salience.model.loader import load_model

    model = load_model(f"gguf:{engine_gguf}")
    model.precision = "float32"
    return model


@pytest.fixture(scope="session")
def remote(engine):
    from salience.serving.remote import connect

    return connect(engine.url)
