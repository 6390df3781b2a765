"""The real embedded Gemma 3 270M: batched generation equals one at a time in float32."""

from salience.samples import find_sample
from salience.templates import render
from salience.types import GenerationSettings


def test_batch_equals_one_at_a_time_float32(real_model):
    sample = find_sample("fewshot-mistake")
    items = ["Quiche Lorraine", "Chocolate fondant", "Chicken satay with peanut sauce"]
    prompts = [render(sample.template, {**sample.variables, "menu_item": item}).text for item in items]
    prompts.append("Keras is a")  # far shorter: lots of left padding
    settings = GenerationSettings(max_new_tokens=24)
    stops = [("\n\n",), ("Recommendation",), (), ()]  # rows finish at different steps
    batched = real_model.generate_batch(
        prompts, settings, precision="float32", batch_size=4, stop_sequences=stops
    )
    for prompt, stop, got in zip(prompts, stops, batched, strict=True):
        alone = real_model.generate(
            prompt, GenerationSettings(max_new_tokens=24, stop_sequences=stop), precision="float32"
        )
        assert got.token_ids == alone.token_ids
        assert got.text == alone.text
        assert got.stop_reason == alone.stop_reason
    assert batched[1].stop_reason == "stop_sequence"
    assert len({len(g.token_ids) for g in batched}) > 1
