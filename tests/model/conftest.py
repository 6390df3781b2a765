"""Fixtures of the model tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory, spm_proto) -> str:
    """A random 2-layer Gemma 3 (seed 5) as a GGUF model spec, for the command-line tests."""
    from tiny_models import tiny_gemma3, write_gguf

    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_gguf(tiny_gemma3(spm_proto, seed=5), spm_proto, path)
    return f"gguf:{path}"
