"""The attention-mask gradient and the Deletion estimate on tiny Gemma 1 and Gemma 3 models."""

import numpy as np
import pytest
import tensorflow as tf

from salience.attribution.estimate import cue_index, deletion_estimate, exact_deletion
from salience.attribution.occlusion import deletable_segments, deletion_scores
from salience.prompts.segments import make_segments

MODELS = ["tiny_gemma3_lm", "tiny_gemma_lm"]
PROMPT = (
    "Tom lives in Paris. Anna keeps a red bicycle. The code word is seven.\n"
    "Question: where does Tom live?\nAnswer:"
)
TARGET = " Paris. He likes it there."


@pytest.fixture(params=MODELS)
def lm(request):
    return request.getfixturevalue(request.param)


def _case(lm, prompt=PROMPT, target=TARGET):
    tokens, first = lm.tokenize_pair(prompt, target)
    segments = make_segments(prompt + target, tokens.offsets, "sentences", prompt_length=len(prompt))
    spans = deletable_segments([(s.token_start, s.token_end) for s in segments], first)
    return list(tokens.ids), first, spans


def _biased_log_prob(forward, ids, first, key_bias=None, pair_bias=None):
    """log p(target) with attention logits shifted (eager, no padding)."""
    embeddings = forward.embed(tf.constant([ids], tf.int32))
    hidden, _ = forward.masked_hidden(
        embeddings,
        key_bias=None if key_bias is None else tf.constant(key_bias[None], tf.float32),
        pair_bias=None if pair_bias is None else tf.constant(pair_bias, tf.float32),
    )
    rows = tf.constant([np.arange(first - 1, len(ids) - 1)], tf.int32)
    target = tf.constant([ids[first:]], tf.int32)
    return float(forward._picked_log_probs(hidden, rows, target, tf.ones_like(target, tf.float32))[0])


def test_shapes_and_log_prob_match_the_plain_forward(lm):
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    result = forward.attention_mask_gradients(ids, first, len(ids), segments=spans)
    base, _, _ = forward.gradients(ids, first, len(ids))
    assert result.log_prob == pytest.approx(base, abs=1e-4)
    assert result.per_token.shape == (len(ids),)
    assert result.per_segment.shape == (len(spans),)
    assert np.isfinite(result.per_token).all() and np.isfinite(result.per_segment).all()
    assert len(result.cache) == forward.num_layers


def test_longer_than_the_sliding_window(tiny_gemma3_lm):
    """The tiny Gemma 3 has a sliding window of 8 tokens: the masked forward applies it as the layers do."""
    prompt = " ".join(f"Item {i} is number {i * 7}." for i in range(8)) + "\nAnswer:"
    ids, first, _ = _case(tiny_gemma3_lm, prompt, " Item 3.")
    forward = tiny_gemma3_lm.forward_for("float32")
    base, _, _ = forward.gradients(ids, first, len(ids))
    assert forward.attention_mask_gradients(ids, first, len(ids)).log_prob == pytest.approx(base, abs=1e-4)


def test_per_token_is_the_derivative_of_masking_each_position(lm):
    """per_token[j] = d log p / d log m_j: shift every layer's logits to key j by ±ε."""
    ids, first, _ = _case(lm)
    forward = lm.forward_for("float32")
    result = forward.attention_mask_gradients(ids, first, len(ids))
    epsilon = 1e-2
    for j in (1, 5, first - 1):
        bias = np.zeros(len(ids), np.float32)
        bias[j] = epsilon
        up = _biased_log_prob(forward, ids, first, key_bias=bias)
        down = _biased_log_prob(forward, ids, first, key_bias=-bias)
        assert result.per_token[j] == pytest.approx((up - down) / (2 * epsilon), rel=2e-2, abs=2e-4)


def test_per_segment_leaves_out_the_segments_own_rows(lm):
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    result = forward.attention_mask_gradients(ids, first, len(ids), segments=spans)
    epsilon = 1e-2
    for index in (len(spans) - 2, len(spans) - 1):  # within the tiny Gemma 3's reach of the target
        start, end = spans[index]
        pair = np.zeros((len(ids), len(ids)), np.float32)
        pair[:, start:end] = epsilon
        pair[start:end, :] = 0.0
        up = _biased_log_prob(forward, ids, first, pair_bias=pair)
        down = _biased_log_prob(forward, ids, first, pair_bias=-pair)
        assert result.per_segment[index] == pytest.approx((up - down) / (2 * epsilon), rel=2e-2, abs=2e-4)


def test_first_order_matches_masking_a_little(lm):
    """Scaling the attention to a segment by (1 − δ) moves log p by −δ · Σ per_token, to first order:
    the sign and scale of what masking it out starts to do."""
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    result = forward.attention_mask_gradients(ids, first, len(ids))
    base = _biased_log_prob(forward, ids, first)
    delta = 0.05
    for start, end in spans:
        bias = np.zeros(len(ids), np.float32)
        bias[start:end] = np.log1p(-delta)
        change = _biased_log_prob(forward, ids, first, key_bias=bias) - base
        predicted = -delta * result.per_token[start:end].sum()
        assert change == pytest.approx(predicted, rel=0.15, abs=5e-4)


def test_masked_deletion_equals_a_huge_negative_bias(lm):
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    masked = forward.masked_deletion(ids, first, len(ids), spans)
    base = _biased_log_prob(forward, ids, first)
    for (start, end), score in zip(spans, masked):
        bias = np.zeros(len(ids), np.float32)
        bias[start:end] = -1e9
        assert score == pytest.approx(base - _biased_log_prob(forward, ids, first, key_bias=bias), abs=2e-4)


def test_estimate_checks_the_cue_and_its_top_exactly(lm):
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    estimate = deletion_estimate(forward, ids, first, len(ids), spans, confirmed=1)
    oracle = deletion_scores(forward, ids, first, len(ids), spans)
    cue = cue_index(spans, first)
    assert cue == len(spans) - 1  # "Answer:" holds the row that predicts the target
    assert cue in estimate.confirmed and len(estimate.confirmed) == 2
    top = int(np.argmax(np.where(np.arange(len(spans)) == cue, -np.inf, estimate.estimate)))
    assert top in estimate.confirmed
    for index in estimate.confirmed:
        assert estimate.scores[index] == pytest.approx(oracle.scores[index], abs=2e-4)
    others = [i for i in range(len(spans)) if i not in estimate.confirmed]
    np.testing.assert_allclose(estimate.scores[others], estimate.estimate[others] * estimate.scale, rtol=1e-5)
    assert estimate.scale > 0


def test_checks_stay_within_the_budget_cue_first(lm, monkeypatch):
    """The cue is checked first, then the highest estimates in order, while their cost (tokens
    through the model) fits half the backward pass, or the floor for a short prompt."""
    import salience.attribution.estimate as estimate_module

    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    target = len(ids) - first
    cue = cue_index(spans, first)
    monkeypatch.setattr(estimate_module, "CHECK_FLOOR", 10**6)  # room for every check
    everything = deletion_estimate(forward, ids, first, len(ids), spans, confirmed=3)
    order = [int(i) for i in np.argsort(-everything.estimate, kind="stable") if i != cue]
    assert everything.confirmed == (cue, *order[:3])
    monkeypatch.setattr(estimate_module, "CHECK_FLOOR", 0)
    none = deletion_estimate(forward, ids, first, len(ids), spans, budget=0.0)
    assert none.confirmed == () and none.scale == 1.0
    np.testing.assert_allclose(none.scores, none.estimate, rtol=1e-6)
    cue_cost = estimate_module.check_cost(forward, target, 1 + len(ids) - spans[cue][1])
    just_the_cue = cue_cost / estimate_module.pass_cost(forward, len(ids), target)
    only = deletion_estimate(forward, ids, first, len(ids), spans, budget=just_the_cue * 1.0001)
    assert only.confirmed == (cue,)


def test_the_pass_log_prob_is_the_baseline(lm):
    """Checks measure against the backward pass's own log p(target) (no extra row)."""
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    gradients = forward.attention_mask_gradients(ids, first, len(ids))
    cache = gradients.cache if forward.shares_prefixes else None
    with_row = exact_deletion(forward, ids, first, len(ids), spans, cache)
    from_pass = exact_deletion(forward, ids, first, len(ids), spans, cache, baseline=gradients.log_prob)
    np.testing.assert_allclose(from_pass, with_row, atol=2e-4)


def test_exact_deletion_reusing_the_pass_cache_equals_deleting(lm):
    ids, first, spans = _case(lm)
    forward = lm.forward_for("float32")
    cache = forward.attention_mask_gradients(ids, first, len(ids)).cache if forward.shares_prefixes else None
    exact = exact_deletion(forward, ids, first, len(ids), spans, cache)
    oracle = deletion_scores(forward, ids, first, len(ids), spans)
    np.testing.assert_allclose(exact, oracle.scores, atol=2e-4)


@pytest.mark.parametrize("method", ["attention_mask", "deletion_estimate"])
def test_through_salience_tokens_after_the_target_get_zero(lm, method):
    tokens, first = lm.tokenize_pair(PROMPT, TARGET)
    segments = make_segments(PROMPT + TARGET, tokens.offsets, "sentences", prompt_length=len(PROMPT))
    spans = [(s.token_start, s.token_end) for s in segments]
    # The second half of the target: the first half of it is context, scored but never deleted.
    start = first + 2
    result = lm.salience(PROMPT, TARGET, token_span=(start, len(tokens)), methods=(method,), segments=spans)
    values = result.scores[method]
    assert values.shape == (len(tokens),)
    assert np.isfinite(values).all()
    assert np.all(values[start:] == 0.0)
    assert np.any(values[:first] != 0.0)
    plain = lm.salience(PROMPT, TARGET, token_span=(start, len(tokens)), methods=(method,))
    assert np.all(plain.scores[method][start:] == 0.0)
    if method == "deletion_estimate":
        forward = lm.forward_for(None)
        estimate = deletion_estimate(forward, list(tokens.ids), start, len(tokens), spans)
        for (a, b), score in zip(estimate.segments, estimate.scores):
            assert values[a:b].sum() == pytest.approx(score, rel=1e-4, abs=1e-4)
