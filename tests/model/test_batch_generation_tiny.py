"""Batched generation on tiny models: token for token what one-at-a-time decoding gives."""

import pytest
from tiny_models import tiny_gemma3

from salience.core.errors import ContextLengthError, InputError
from salience.core.types import GenerationSettings
from salience.model.batch_generation import CANCELLED, batch_decoder
from salience.model.language_model import LanguageModel

# Different lengths (1 to ~40 tokens): longer than the tiny models' 8-token sliding window.
PROMPTS = [
    "Recommendation: Avoid. Taste",
    "Keras is",
    "The quick brown fox jumps over the lazy dog 12345. Sentences end with periods! Or",
    "a",
    "Analyze a menu item in a restaurant. Taste-likes: Cheese. Taste-dislikes: eggs.",
    "e.g. Dr. Smith paid 3.5 euros",
]
GREEDY = GenerationSettings(max_new_tokens=14)
SAMPLED = GenerationSettings(max_new_tokens=14, temperature=1.3, top_k=40, top_p=0.95, seed=11)


@pytest.fixture(scope="module")
def tiny_gemma3_window4_lm(spm_proto):
    """Gemma 3 with a 4-token sliding window and three layers (local, local, ...)."""
    return LanguageModel(
        tiny_gemma3(spm_proto, seed=3, num_layers=3, window=4), "w4", "test:w4", 256, precision="float32"
    )


@pytest.fixture(scope="module")
def tiny_gemma2_lm(spm_proto):
    from tiny_models import tiny_gemma

    return LanguageModel(tiny_gemma(spm_proto, soft_cap=30.0), "g2", "test:g2", 256, precision="float32")


MODELS = ["tiny_gemma3_lm", "tiny_gemma_lm", "tiny_gemma3_window4_lm", "tiny_gemma2_lm"]


@pytest.fixture(params=MODELS)
def lm(request):
    return request.getfixturevalue(request.param)


def _alone(lm, prompts, settings):
    return [lm.generate(prompt, settings, precision="float32") for prompt in prompts]


def _same(batched, alone):
    for row, (got, expected) in enumerate(zip(batched, alone, strict=True)):
        assert got.prompt == expected.prompt, row
        assert got.token_ids == expected.token_ids, row
        assert got.text == expected.text, row
        assert got.stop_reason == expected.stop_reason, row


@pytest.mark.parametrize("settings", [GREEDY, SAMPLED], ids=["greedy", "seeded"])
@pytest.mark.parametrize("batch_size", [3, 8])
def test_batch_equals_one_at_a_time(lm, settings, batch_size):
    batched = lm.generate_batch(PROMPTS, settings, precision="float32", batch_size=batch_size)
    _same(batched, _alone(lm, PROMPTS, settings))
    assert all(len(g.token_ids) for g in batched)


TEMPLATE = "Analyze a menu item in a restaurant. Taste-likes: Cheese. Taste-dislikes: {}. Recommendation:"
TEMPLATED = [TEMPLATE.format(v) for v in ("eggs", "Python", "3.5 euros for café au lait", "x")]


@pytest.mark.parametrize("share_prefix", [True, False], ids=["shared-prefix", "left-padded"])
@pytest.mark.parametrize("settings", [GREEDY, SAMPLED], ids=["greedy", "seeded"])
def test_rows_of_one_template_share_its_prefix(lm, settings, share_prefix):
    """A template's common start (longer than the sliding window) runs once for the batch."""
    from salience.model.batch_generation import generate_batch

    prompts = [*TEMPLATED, TEMPLATED[0]]  # a duplicate row: its whole prompt is shared but the last token
    batched = generate_batch(lm, prompts, settings, "float32", batch_size=8, share_prefix=share_prefix)
    _same(batched, _alone(lm, prompts, settings))


def test_per_row_stop_sequences_and_rows_finishing_early(lm):
    full = _alone(lm, PROMPTS, GREEDY)
    # Row 0 stops on a piece of its own output, row 2 on another; row 1 on text it never writes.
    stops = [(), ("zzzz-never",), (), (), (), ()]
    for row in (0, 2):
        text = full[row].text
        assert len(text) >= 6, "the tiny model wrote too little to cut"
        stops[row] = (text[3:6],)
    batched = lm.generate_batch(PROMPTS, GREEDY, precision="float32", batch_size=6, stop_sequences=stops)
    alone = [
        lm.generate(p, GenerationSettings(max_new_tokens=14, stop_sequences=s), precision="float32")
        for p, s in zip(PROMPTS, stops)
    ]
    _same(batched, alone)
    for row in (0, 2):
        assert batched[row].stop_reason == "stop_sequence"
        assert len(batched[row].token_ids) < len(full[row].token_ids)
        assert full[row].text.startswith(batched[row].text)


def test_finished_rows_leave_the_batch(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    full = _alone(lm, PROMPTS[:4], GREEDY)
    stops = [(full[0].text[1:3],), (), (full[2].text[4:7],), ()]
    decoder = batch_decoder(lm.forward_for("float32"))
    sizes = []
    original = decoder.step

    def spy(tokens, *args):
        sizes.append(len(tokens))
        return original(tokens, *args)

    decoder.step = spy
    try:
        batched = lm.generate_batch(
            PROMPTS[:4], GREEDY, precision="float32", batch_size=4, stop_sequences=stops
        )
    finally:
        del decoder.step
    assert [g.stop_reason for g in batched[::2]] == ["stop_sequence", "stop_sequence"]
    assert sizes[0] == 4 and sizes[-1] <= 2
    assert sizes == sorted(sizes, reverse=True)
    # Each row is fed back only while it runs: its tokens, less the last one it chose
    # (an end of text is chosen but never kept).
    fed = [len(g.token_ids) - (g.stop_reason != "end_of_text") for g in batched]
    assert sum(sizes) == sum(fed) < 4 * (GREEDY.max_new_tokens - 1)


def test_seeded_row_does_not_depend_on_its_batch(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    seeds = [5, 6, 7, 8, 9, 10]
    together = lm.generate_batch(PROMPTS, SAMPLED, precision="float32", batch_size=6, seeds=seeds)
    pairs = lm.generate_batch(PROMPTS, SAMPLED, precision="float32", batch_size=2, seeds=seeds)
    shuffled = lm.generate_batch(
        PROMPTS[::-1], SAMPLED, precision="float32", batch_size=4, seeds=seeds[::-1]
    )[::-1]
    for a, b, c in zip(together, pairs, shuffled, strict=True):
        assert a.token_ids == b.token_ids == c.token_ids
    alone = lm.generate(
        PROMPTS[3], GenerationSettings(max_new_tokens=14, temperature=1.3, top_k=40, top_p=0.95, seed=8)
    )
    assert together[3].token_ids == alone.token_ids
    # Different seeds give different samples (the seeds are really used).
    assert len({g.token_ids for g in lm.generate_batch([PROMPTS[0]] * 4, SAMPLED, seeds=[1, 2, 3, 4])}) > 1


def test_callbacks_report_each_row_once(tiny_gemma_lm):
    finished, progress = {}, []
    batched = tiny_gemma_lm.generate_batch(
        PROMPTS,
        GREEDY,
        batch_size=4,
        on_row=lambda index, generation: finished.setdefault(index, generation),
        progress=lambda done, total: progress.append((done, total)),
    )
    assert sorted(finished) == list(range(len(PROMPTS)))
    assert all(finished[i] == batched[i] for i in finished)
    assert progress == [(n, len(PROMPTS)) for n in range(1, len(PROMPTS) + 1)]


def test_cancel_keeps_finished_rows(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    full = _alone(lm, PROMPTS[:5], GREEDY)
    stops = [(full[0].text[1:3],)] + [()] * 4  # row 0 finishes after a couple of tokens
    finished = {}
    polls = []

    def cancelled():
        polls.append(1)
        return len(polls) > 4

    batched = lm.generate_batch(
        PROMPTS[:5],
        GREEDY,
        batch_size=2,
        stop_sequences=stops,
        cancelled=cancelled,
        on_row=lambda index, generation: finished.setdefault(index, generation),
    )
    assert len(batched) == 5
    reasons = [g.stop_reason for g in batched]
    assert CANCELLED in reasons
    assert set(finished) == {i for i, r in enumerate(reasons) if r != CANCELLED}
    for index, generation in enumerate(batched):
        # Cancelled rows keep what they had written: a prefix of the full output.
        assert full[index].token_ids[: len(generation.token_ids)] == generation.token_ids


def test_chat_template_and_single_row(tiny_gemma3_lm):
    settings = GenerationSettings(max_new_tokens=6, chat_template=True)
    (one,) = tiny_gemma3_lm.generate_batch(["Hi there"], settings)
    assert one.token_ids == tiny_gemma3_lm.generate("Hi there", settings).token_ids


def test_bad_input_names_the_row(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    with pytest.raises(InputError, match="No prompts"):
        lm.generate_batch([])
    with pytest.raises(InputError, match="Row 2: The prompt is empty"):
        lm.generate_batch(["fine", "", "also fine"])
    with pytest.raises(InputError, match="Row 1: the prompt is not text"):
        lm.generate_batch([None])
    with pytest.raises(ContextLengthError, match=r"Row 3: the prompt has \d+ tokens.*Shorten the prompt by"):
        lm.generate_batch(["a", "b", "word " * 200], GenerationSettings(max_new_tokens=100))
    with pytest.raises(InputError, match="Batch size"):
        lm.generate_batch(["a"], batch_size=0)
    with pytest.raises(InputError, match="Max new tokens"):
        lm.generate_batch(["a"], GenerationSettings(max_new_tokens=0))
    with pytest.raises(InputError, match="one per prompt"):
        lm.generate_batch(["a", "b"], stop_sequences=[("x",)])
