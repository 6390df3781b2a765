"""The embedded Gemma 3 270M behind the engine deployment (one replica, bfloat16 only) answers
exactly as the same model in-process."""

from __future__ import annotations

import numpy as np
import pytest
from engine_server import running_engine

from salience.core.types import GenerationSettings
from salience.prompts.samples import find_sample
from salience.serving.remote import connect

SETTINGS = GenerationSettings(max_new_tokens=16, stop_sequences=("\n\n",))


@pytest.fixture(scope="module")
def embedded_engine():
    with running_engine("embedded", replicas=1, precision="bfloat16", timeout=600) as engine:
        yield engine


def test_the_embedded_model_behind_the_engine_equals_in_process(embedded_engine, real_model):
    remote = connect(embedded_engine.url)
    assert remote.spec == real_model.spec and remote.precisions == ("bfloat16",)
    prompt = find_sample("fewshot-mistake").render().text
    generation = remote.generate(prompt, SETTINGS)
    local = real_model.generate(prompt, SETTINGS, precision="bfloat16")
    assert (generation.text, generation.token_ids) == (local.text, local.token_ids)
    assert generation.text.strip()
    result = remote.salience(prompt, generation.text)
    expected = real_model.salience(prompt, generation.text, precision="bfloat16")
    assert result.tokens == expected.tokens and result.target_token_span == expected.target_token_span
    for method in expected.scores:
        np.testing.assert_array_equal(result.scores[method], expected.scores[method], err_msg=method)
    assert result.target_log_prob == expected.target_log_prob
