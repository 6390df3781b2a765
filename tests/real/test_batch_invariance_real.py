"""The real embedded Gemma 3 270M: a row's greedy output is the workbench's (`generate`) at batch
sizes 1, 3 and 8, in the default precision (bfloat16) and in float32. In bfloat16 batches used
to change these rows' outputs (docs/PERFORMANCE.md, "Outputs that do not depend on the batch")."""

import pytest

from salience.core.types import GenerationSettings
from salience.prompts.samples import find_sample
from salience.prompts.templates import render

SETTINGS = GenerationSettings(max_new_tokens=16)


def _prompts() -> list[str]:
    # Rows of 6, 39 and 119 tokens; batched bfloat16 changed the first two samples' outputs
    # (gsm8k-fewshot's at every batch size, from its 12th token: a tie between two words).
    names = ["gsm8k-fewshot", "constitution-ideas"]
    samples = [find_sample(name) for name in names]
    return [render(s.template, dict(s.variables)).text for s in samples] + ["The capital of France is"]


@pytest.mark.parametrize("precision", [None, "float32"], ids=["default", "float32"])
def test_batch_sizes_give_the_workbench_output(real_model, precision):
    prompts = _prompts()
    alone = [real_model.generate(p, SETTINGS, precision=precision).token_ids for p in prompts]
    for batch_size in (1, 3, 8):
        batched = real_model.generate_batch(prompts, SETTINGS, precision=precision, batch_size=batch_size)
        assert [g.token_ids for g in batched] == alone, batch_size
