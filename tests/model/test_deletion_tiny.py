"""Deletion (occlusion) on tiny models: the fast shared-prefix path equals deleting for real."""

import numpy as np
import pytest

from salience.attribution.occlusion import (
    MAX_DELETION_SEGMENTS,
    Redundancy,
    deletable_segments,
    delete_pair,
    deletion_scores,
    redundancy,
)
from salience.core.errors import CancelledError, InputError
from salience.prompts.segments import make_segments

PROMPT = (
    "Tom lives in Paris. Anna keeps a red bicycle. The code word is seven.\n"
    "Question: where does Tom live?\nAnswer:"
)
TARGET = " Paris. He likes it there."
MODELS = ["tiny_gemma3_lm", "tiny_gemma_lm"]


@pytest.fixture(params=MODELS)
def lm(request):
    return request.getfixturevalue(request.param)


def _really_deleted(lm, ids, start, end, span):
    """log p(target) after removing the span's tokens, by a plain gradient pass (another graph)."""
    a, b = span
    kept = ids[:a] + ids[b:]
    shift = b - a
    log_prob, _, _ = lm.forward_for("float32").gradients(kept, start - shift, end - shift)
    return log_prob


def _sentences(lm, prompt=PROMPT, target=TARGET):
    tokens, first = lm.tokenize_pair(prompt, target)
    segments = make_segments(prompt + target, tokens.offsets, "sentences", prompt_length=len(prompt))
    return tokens, first, [(s.token_start, s.token_end) for s in segments]


@pytest.mark.parametrize("share_prefix", [True, False])
def test_deletion_equals_removing_each_segment(lm, share_prefix):
    tokens, first, spans = _sentences(lm)
    ids = list(tokens.ids)
    end = len(ids)
    result = deletion_scores(lm.forward_for("float32"), ids, first, end, spans, share_prefix=share_prefix)
    base, _, _ = lm.forward_for("float32").gradients(ids, first, end)
    assert result.log_prob == pytest.approx(base, abs=1e-4)
    assert result.segments == tuple(deletable_segments(spans, first))
    assert len(result.segments) >= 4 and all(a >= 1 and b <= first for a, b in result.segments)
    for span, score in zip(result.segments, result.scores):
        assert score == pytest.approx(base - _really_deleted(lm, ids, first, end, span), abs=2e-4)


def test_sliding_window_and_long_suffixes(tiny_gemma3_lm):
    """The tiny Gemma 3 has a sliding window of 8 tokens: variants far longer than it still match."""
    lm = tiny_gemma3_lm
    prompt = " ".join(f"Item {i} is number {i * 7}." for i in range(12)) + "\nAnswer:"
    tokens, first, spans = _sentences(lm, prompt, " Item 3.")
    ids = list(tokens.ids)
    forward = lm.forward_for("float32")
    result = deletion_scores(forward, ids, first, len(ids), spans)
    naive = deletion_scores(forward, ids, first, len(ids), spans, share_prefix=False)
    np.testing.assert_allclose(result.scores, naive.scores, atol=2e-4)


def test_model_salience_carries_segment_scores_on_every_token(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    tokens, first, spans = _sentences(lm)
    seen = []
    result = lm.salience(
        PROMPT,
        TARGET,
        methods=("occlusion", "grad_l2"),
        segments=spans,
        progress=lambda d, t: seen.append((d, t)),
    )
    values = result.scores["occlusion"]
    info = result.diagnostics["occlusion"]
    assert seen and seen[-1][0] == seen[-1][1]
    for (a, b), score in zip(info["segments"], np.asarray(values)[[a for a, _ in info["segments"]]]):
        assert np.all(values[a:b] == score)
    assert values[0] == 0 and np.all(values[first:] == 0)
    assert info["log_prob"] == pytest.approx(result.target_log_prob, abs=1e-3)


def test_bad_input_gets_messages(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    with pytest.raises(InputError, match="granularity"):
        lm.salience(PROMPT, TARGET, methods=("occlusion",))
    tokens, first = lm.tokenize_pair(PROMPT, TARGET)
    words = [(i, i + 1) for i in range(1, first)]
    long_prompt = "a " * (MAX_DELETION_SEGMENTS + 10)
    long_first = lm.tokenize_pair(long_prompt, TARGET)[1]
    assert long_first > MAX_DELETION_SEGMENTS + 1
    many = [(i, i + 1) for i in range(1, long_first)]
    with pytest.raises(InputError, match="coarser granularity"):
        lm.salience(long_prompt, TARGET, methods=("occlusion",), segments=many)
    # One segment, the whole prompt, and whitespace-only segments still give numbers.
    whole = lm.salience(PROMPT, TARGET, methods=("occlusion",), segments=[(1, first)])
    assert len(whole.diagnostics["occlusion"]["segments"]) == 1
    assert np.isfinite(whole.scores["occlusion"]).all()
    spaced = lm.salience("A cat.   \n\n  B dog.", " Yes", methods=("occlusion",), segments=words[:3])
    assert np.isfinite(spaced.scores["occlusion"]).all()
    # Cancelled between batches.
    with pytest.raises(CancelledError):
        lm.salience(PROMPT, TARGET, methods=("occlusion",), segments=words[:10], cancelled=lambda: True)


def test_target_inside_the_prompt_deletes_only_what_comes_before(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    tokens, first, spans = _sentences(lm)
    text = PROMPT + TARGET
    at = text.index("Anna")
    result = lm.salience(PROMPT, TARGET, char_span=(at, at + 4), methods=("occlusion",), segments=spans)
    start = result.target_token_span[0]
    assert all(b <= start for _, b in result.diagnostics["occlusion"]["segments"])
    assert np.all(result.scores["occlusion"][start:] == 0)


def test_template_part_totals_do_not_grow_with_token_count(tiny_gemma3_lm):
    """A slot's Deletion total is the sum of its segments' scores (exact at the slots granularity)."""
    from salience.prompts.templates import parse_template, render
    from salience.report.views import slot_table

    lm = tiny_gemma3_lm
    rendered = render(
        parse_template("Facts: {facts}\nQuestion: {question}\nAnswer:"),
        {
            "facts": "Tom lives in Paris. Anna keeps a very long and winding red bicycle story.",
            "question": "Where does Tom live?",
        },
    )
    tokens, first = lm.tokenize_pair(rendered.text, " Paris.")
    segments = make_segments(
        rendered.text + " Paris.",
        tokens.offsets,
        "slots",
        prompt_length=len(rendered.text),
        slots=rendered.slots,
    )
    spans = [(s.token_start, s.token_end) for s in segments]
    result = lm.salience(rendered.text, " Paris.", methods=("occlusion",), segments=spans)
    deleted = dict(zip(map(tuple, result.diagnostics["occlusion"]["segments"]), range(1000)))
    table = {row.name: row.total for row in slot_table(result, rendered, "occlusion")}
    for seg in segments:
        span = (max(seg.token_start, 1), seg.token_end)
        if span in deleted and seg.text.strip() and not seg.in_target:
            score = float(result.scores["occlusion"][seg.token_start + (seg.token_start == 0)])
            matching = [total for total in table.values() if abs(total - score) < 1e-5]
            assert matching, (seg.text, score, table)
    assert (
        abs(sum(result.summable("occlusion")) - sum(result.scores["occlusion"][[a for a, _ in deleted]]))
        < 1e-4
    )


def test_deleting_a_pair_equals_removing_both(lm):
    tokens, first, spans = _sentences(lm)
    ids, end = list(tokens.ids), len(tokens)
    forward = lm.forward_for("float32")
    spans = deletable_segments(spans, first)
    (a, b), (c, d) = spans[0], spans[2]  # two parts with another between them
    kept = ids[:a] + ids[b:c] + ids[d:]
    removed = (b - a) + (d - c)
    expected, _, _ = forward.gradients(kept, first - removed, end - removed)
    assert delete_pair(forward, ids, first, end, (c, d), (a, b)) == pytest.approx(expected, abs=2e-4)


def test_redundancy_deletes_the_top_two_together_leaving_out_the_cue(tiny_gemma3_lm):
    tokens, first, spans = _sentences(tiny_gemma3_lm)
    ids, end = list(tokens.ids), len(tokens)
    forward = tiny_gemma3_lm.forward_for("float32")
    deletion = deletion_scores(forward, ids, first, end, spans)
    found = redundancy(forward, ids, first, end, deletion)
    cue = next(i for i, (s, e) in enumerate(deletion.segments) if s <= first - 1 < e)
    assert cue not in found.pair
    others = sorted((i for i in range(len(deletion.segments)) if i != cue), key=lambda i: -deletion.scores[i])
    assert set(found.pair) == set(others[:2])
    together = delete_pair(forward, ids, first, end, *(deletion.segments[i] for i in found.pair))
    assert found.together == pytest.approx(deletion.log_prob - together, abs=1e-5)
    result = tiny_gemma3_lm.salience(PROMPT, TARGET, methods=("occlusion",), segments=spans)
    assert result.diagnostics["occlusion"]["pair"]["together"] == pytest.approx(found.together, abs=1e-3)


def test_a_pair_is_redundant_when_together_far_outweighs_alone():
    assert Redundancy((0, 1), (0.05, 0.1), together=3.0).redundant  # each alone: nearly nothing
    assert not Redundancy((0, 1), (2.0, 1.5), together=4.0).redundant  # additive: not redundancy
    assert not Redundancy((0, 1), (0.0, 0.0), together=0.5).redundant  # too small to say
