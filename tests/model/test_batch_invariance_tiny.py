"""A row's output does not depend on its batch, in every precision the app offers: batch sizes
1, 3 and 8 give token for token what the workbench's single-prompt `generate` gives it alone."""

import json

import pytest

from salience.core.errors import ContextLengthError, InputError
from salience.core.types import GenerationSettings
from salience.evaluation.runs import (
    Check,
    generate_outputs,
    parse_data,
    plan_evaluation,
    run_evaluation,
    unserved_precision,
)
from salience.model.batch_generation import BATCHED_PRECISIONS, generate_batch
from salience.model.decoding import PRECISIONS
from salience.model.language_model import LanguageModel
from salience.prompts.variant import Variant

# From 1 token to ~150: rows of wildly different lengths share a batch.
LONG = " ".join(["The quick brown fox jumps over the lazy dog, then sleeps."] * 4)
PROMPTS = [
    "a",
    "Keras is",
    LONG,
    "Recommendation: Avoid. Taste",
    "The quick brown fox jumps over the lazy dog 12345. Sentences end with periods! Or",
    "e.g. Dr. Smith paid 3.5 euros",
    LONG + " In short,",
    "Analyze a menu item in a restaurant. Taste-likes: Cheese. Taste-dislikes: eggs.",
    "Why",
]
GREEDY = GenerationSettings(max_new_tokens=12)


@pytest.fixture(params=["tiny_gemma3_lm", "tiny_gemma_lm"])
def lm(request):
    return request.getfixturevalue(request.param)


@pytest.mark.slow  # over ~5 s: left out of the fast loop
@pytest.mark.parametrize("precision", PRECISIONS)
def test_batch_sizes_give_the_workbench_output(lm, precision):
    alone = [lm.generate(prompt, GREEDY, precision=precision).token_ids for prompt in PROMPTS]
    for batch_size in (1, 3, 8):
        batched = lm.generate_batch(PROMPTS, GREEDY, precision=precision, batch_size=batch_size)
        assert [g.token_ids for g in batched] == alone, (precision, batch_size)
        assert [g.text for g in batched] == [lm.tokenizer.decode(list(ids)) for ids in alone]


def test_only_float32_is_batched(lm):
    """bfloat16 decodes every row alone (its batched sums flipped near-ties); float32 batches."""
    assert BATCHED_PRECISIONS == ("float32",)
    calls = []
    original = lm.stream

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    lm.stream = counted
    try:
        generate_batch(lm, PROMPTS[:3], GREEDY, "float32", batch_size=3)
        assert calls == []
        generate_batch(lm, PROMPTS[:3], GREEDY, "bfloat16", batch_size=3)
        assert calls == PROMPTS[:3]
    finally:
        del lm.stream


@pytest.mark.parametrize("precision", PRECISIONS)
def test_bfloat16_rows_keep_their_stops_seeds_and_cancel(tiny_gemma3_lm, precision):
    lm = tiny_gemma3_lm
    sampled = GenerationSettings(max_new_tokens=10, temperature=1.3, top_k=40, seed=5)
    seeds = [1, 2, 3]
    stops = [(" ",), (), ("e",)]
    batched = lm.generate_batch(
        PROMPTS[:3], sampled, precision=precision, batch_size=3, seeds=seeds, stop_sequences=stops
    )
    for prompt, seed, stop, got in zip(PROMPTS[:3], seeds, stops, batched, strict=True):
        own = GenerationSettings(max_new_tokens=10, temperature=1.3, top_k=40, seed=seed, stop_sequences=stop)
        expected = lm.generate(prompt, own, precision=precision)
        assert (got.token_ids, got.text, got.stop_reason) == (
            expected.token_ids,
            expected.text,
            expected.stop_reason,
        )
    finished = []
    polls = iter([False] * 4 + [True] * 100)
    cancelled = lm.generate_batch(
        PROMPTS[:3],
        GenerationSettings(max_new_tokens=10),
        precision=precision,
        batch_size=3,
        cancelled=lambda: next(polls),
        on_row=lambda index, generation: finished.append(index),
    )
    assert len(cancelled) == 3
    assert "cancelled" in [g.stop_reason for g in cancelled]
    assert all(cancelled[i].stop_reason != "cancelled" for i in finished)


def test_an_unserved_precision_is_refused_by_name(spm_proto):
    from tiny_models import tiny_gemma3

    lm = LanguageModel(tiny_gemma3(spm_proto), "one", "test:one", 256, precision="bfloat16", only=True)
    with pytest.raises(InputError, match="serves bfloat16 only"):
        lm.generate_batch(PROMPTS[:2], GREEDY, precision="float32")
    with pytest.raises(InputError, match="Unknown precision 'float16'"):
        lm.generate_batch(PROMPTS[:2], GREEDY, precision="float16")
    # An evaluation stops before its first row, not with one error cell per row.
    data = parse_data('{"text": "a"}\n{"text": "b"}', kind="jsonl")
    plan = plan_evaluation([Variant("A", "{text}")], data, [Check("contains", "zzz")])
    with pytest.raises(InputError, match="serves bfloat16 only"):
        next(run_evaluation(plan, lm, GREEDY, batch_size=2, precision="float32"))
    # The Evaluate page says so instead of resuming a float32 evaluation at bfloat16.
    assert "runs at float32, which the model in use does not serve" in unserved_precision(lm, "float32")
    assert unserved_precision(lm, "bfloat16") is None and unserved_precision(lm, None) is None


@pytest.mark.slow  # over ~5 s: left out of the fast loop
@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_row_over_the_context_limit_changes_no_other_row(tiny_gemma3_lm, precision):
    """The row is named before any decoding; in an evaluation it gets its own error and the rows
    beside it (decoded one at a time then) keep the outputs a batch gives them."""
    lm = tiny_gemma3_lm
    settings = GenerationSettings(max_new_tokens=200)
    too_long = " ".join(["word"] * 80)
    prompts = [PROMPTS[1], too_long, PROMPTS[3]]
    with pytest.raises(ContextLengthError, match="Row 2: the prompt"):
        lm.generate_batch(prompts, settings, precision=precision, batch_size=3)
    data = parse_data("\n".join(json.dumps({"text": p}) for p in prompts), kind="jsonl")
    plan = plan_evaluation([Variant("A", "{text}")], data, [Check("contains", "zzz")])
    cells = list(run_evaluation(plan, lm, settings, batch_size=3, precision=precision))
    assert cells[1].error and "Row 2" in cells[1].error
    fine = generate_outputs(lm, [PROMPTS[1], PROMPTS[3]], settings, 3, precision=precision)
    assert [cells[0].output, cells[2].output] == [g.text for g in fine]
