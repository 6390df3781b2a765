"""The real embedded Gemma 3 270M loaded at one precision gives what the default model gives at it."""

import gc

import numpy as np
import pytest

from salience.core.errors import InputError
from salience.core.types import GenerationSettings
from salience.model.loader import load_model
from salience.prompts.samples import find_sample

METHODS = ("grad_l2", "grad_dot_input")


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_one_precision_equals_the_default_model(real_model, precision):
    prompt = find_sample("fewshot-mistake").render().text
    settings = GenerationSettings(max_new_tokens=32)
    expected = real_model.generate(prompt, settings, precision=precision)
    expected_scores = real_model.salience(prompt, expected.text, methods=METHODS, precision=precision)

    model = load_model("embedded", precision=precision, only=True)
    try:
        assert model.precisions == (precision,)
        assert {str(weight.dtype) for weight in model.causal_lm.weights} == {precision}
        got = model.generate(prompt, settings)
        assert got.token_ids == expected.token_ids and got.text == expected.text
        scores = model.salience(prompt, got.text, methods=METHODS)
        assert scores.target_log_prob == expected_scores.target_log_prob
        for method in METHODS:
            np.testing.assert_array_equal(scores.scores[method], expected_scores.scores[method])
        other = "float32" if precision == "bfloat16" else "bfloat16"
        with pytest.raises(InputError, match=f"serves {precision} only"):
            model.salience(prompt, got.text, methods=METHODS, precision=other)
    finally:
        del model
        gc.collect()
