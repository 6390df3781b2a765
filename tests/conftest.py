"""Shared fixtures: tiny models for fast tests, the real embedded model for a few."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import salience  # noqa: E402,F401  (configures the Keras backend first)


@pytest.fixture(scope="session")
def spm_proto() -> bytes:
    from tiny_models import train_sentencepiece

    return train_sentencepiece()


@pytest.fixture(scope="session")
def tiny_gemma3_lm(spm_proto):
    """A `LanguageModel` over a random 2-layer Gemma 3 (float32 by default)."""
    from tiny_models import tiny_gemma3

    from salience.model import LanguageModel

    return LanguageModel(tiny_gemma3(spm_proto), "tiny-gemma3", "test:tiny-gemma3", 256, precision="float32")


@pytest.fixture(scope="session")
def tiny_gemma_lm(spm_proto):
    from tiny_models import tiny_gemma

    from salience.model import LanguageModel

    return LanguageModel(tiny_gemma(spm_proto), "tiny-gemma", "test:tiny-gemma", 256, precision="float32")


@pytest.fixture(scope="session")
def real_model():
    """The embedded Gemma 3 270M (built into the cache on first use)."""
    from salience.loading import load_model

    return load_model("embedded")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/real/" in str(item.fspath):
            item.add_marker(pytest.mark.real_model)
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
