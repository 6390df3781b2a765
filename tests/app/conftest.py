"""AppTest fixtures: the real app on the tiny GGUF model (`tiny_gguf`, tests/conftest.py)."""

from __future__ import annotations

import pytest

from components.model_resource import MODEL_ENV, registry

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def app(tiny_gguf, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    registry().wait_warm(f"gguf:{tiny_gguf}", timeout=300)  # the app loads it in the background
    test = AppTest.from_file(APP, default_timeout=180)
    test.run()
    assert not test.exception, test.exception
    return test


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Permalinks (and any user data) go to a fresh directory per test."""
    from salience.model.embedded import CACHE_ENV
    from workspace.snapshots import DATA_ENV

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # start-up timings are remembered there
    return tmp_path / "data"
