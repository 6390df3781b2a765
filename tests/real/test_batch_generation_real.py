"""The real embedded Gemma 3 270M: batched generation equals one at a time in float32."""

import pytest

from salience.core.types import GenerationSettings
from salience.prompts.samples import find_sample
from salience.prompts.templates import render

ITEMS = ["Quiche Lorraine", "Chocolate fondant", "Chicken satay with peanut sauce"]
# Rows finish at different steps: a blank line, the word "Recommendation", or the budget.
STOPS = [("\n\n",), ("Recommendation",), (), ()]


@pytest.mark.parametrize("mixed", [False, True], ids=["one-template", "with-a-short-prompt"])
def test_batch_equals_one_at_a_time_float32(real_model, mixed):
    sample = find_sample("fewshot-mistake")
    prompts = [render(sample.template, {**sample.variables, "menu_item": item}).text for item in ITEMS]
    # One template: its ~190-token start is prefilled once for the batch. Mixed: "Keras is a"
    # shares only <bos>, so the menu rows are left-padded far past it.
    prompts.append("Keras is a" if mixed else prompts[0].replace("Cheese", "Spicy food"))
    settings = GenerationSettings(max_new_tokens=24)
    batched = real_model.generate_batch(
        prompts, settings, precision="float32", batch_size=4, stop_sequences=STOPS
    )
    for prompt, stop, got in zip(prompts, STOPS, batched, strict=True):
        alone = real_model.generate(
            prompt, GenerationSettings(max_new_tokens=24, stop_sequences=stop), precision="float32"
        )
        assert got.token_ids == alone.token_ids
        assert got.text == alone.text
        assert got.stop_reason == alone.stop_reason
    assert len({len(g.token_ids) for g in batched}) > 1
