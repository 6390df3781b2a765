"""Salience on tiny Gemma and Gemma 3 models: shapes, masking, signs and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from salience.core.errors import ContextLengthError, InputError, UnsupportedModelError
from salience.model.forward import model_family

MODELS = ["tiny_gemma3_lm", "tiny_gemma_lm"]
PROMPT = "Taste-likes: Cheese.\nRecommendation:"
TARGET = " Avoid. You have to try it."


@pytest.fixture(params=MODELS)
def lm(request):
    return request.getfixturevalue(request.param)


def _log_prob(lm, embeddings, start, end, ids):
    forward = lm.forward_for("float32")
    positions = tf.constant(np.arange(start, end, dtype=np.int32))
    targets = tf.constant(np.asarray(ids[start:end], dtype=np.int32))
    weights = tf.ones(end - start)
    return float(
        forward._target_log_prob_graph(tf.constant(embeddings[None]), positions, targets, weights)[0]
    )


def test_shapes_offsets_and_masking(lm):
    result = lm.salience(PROMPT, TARGET, methods=("grad_l2", "grad_dot_input", "integrated_gradients"))
    n = len(result.tokens)
    assert result.tokens[0] == "<bos>"
    assert len(result.offsets) == n
    start, end = result.target_token_span
    assert end == n and result.text[result.offsets[start][0] :] == TARGET
    for values in result.scores.values():
        assert values.shape == (n,)
        assert np.isfinite(values).all()
        assert np.all(values[start:] == 0.0)
        assert np.any(values[:start] != 0.0)
    assert np.all(result.scores["grad_l2"] >= 0)
    assert result.target_text == TARGET


def test_gradient_matches_finite_differences(lm):
    ids = list(lm.tokenize(PROMPT + TARGET).ids)
    start, end = len(ids) - 4, len(ids)
    log_prob, gradient, embeddings = lm.forward_for("float32").gradients(ids, start, end)
    assert log_prob == pytest.approx(_log_prob(lm, embeddings, start, end, ids), rel=1e-5)
    rng = np.random.default_rng(0)
    direction = rng.normal(size=embeddings.shape).astype(np.float32)
    direction[start:] = 0
    h = 1e-3  # small: random directions in all tokens at once curve quickly
    plus = _log_prob(lm, embeddings + h * direction, start, end, ids)
    minus = _log_prob(lm, embeddings - h * direction, start, end, ids)
    numeric = (plus - minus) / (2 * h)
    analytic = float(np.sum(gradient * direction))
    assert numeric == pytest.approx(analytic, rel=2e-2, abs=1e-3)


def test_positive_grad_dot_input_means_toward_target(lm):
    """Scaling token i's embedding by (1 + eps) changes log p by about eps × Grad·Input[i]."""
    result = lm.salience(PROMPT, TARGET)
    ids = list(lm.tokenize_pair(PROMPT, TARGET)[0].ids)
    start, end = result.target_token_span
    _, _, embeddings = lm.forward_for("float32").gradients(ids, start, end)
    base = _log_prob(lm, embeddings, start, end, ids)
    scores = result.scores["grad_dot_input"]
    eps = 1e-2
    for index in (int(np.argmax(scores)), int(np.argmin(scores))):
        scaled = embeddings.copy()
        scaled[index] *= 1 + eps
        change = _log_prob(lm, scaled, start, end, ids) - base
        assert np.sign(change) == np.sign(scores[index])
        assert change == pytest.approx(eps * scores[index], rel=0.2, abs=1e-4)


def _path_start(forward, embeddings, start, baseline):
    """The baseline end of IG's path: prompt tokens (not <bos>, not the target) replaced."""
    point = embeddings.copy()
    point[1:start] = forward.baseline_embedding(baseline)
    return point


@pytest.mark.parametrize("baseline", ["pad", "mean", "zero"])
def test_integrated_gradients_completeness(tiny_gemma3_lm, baseline):
    """Attributions add up to log p(input) − log p(baseline) and both ends are reported right."""
    lm = tiny_gemma3_lm
    ids = list(lm.tokenize_pair(PROMPT, TARGET)[0].ids)
    start, end = len(ids) - 5, len(ids)
    forward = lm.forward_for("float32")
    _, _, embeddings = forward.gradients(ids, start, end)
    result = forward.integrated_gradients(ids, start, end, 64, baseline=baseline)
    origin = _path_start(forward, embeddings, start, baseline)
    assert result.log_prob_input == pytest.approx(_log_prob(lm, embeddings, start, end, ids), abs=1e-4)
    assert result.log_prob_baseline == pytest.approx(_log_prob(lm, origin, start, end, ids), abs=1e-4)
    assert np.all(result.attributions[start:] == 0) and np.all(result.attributions[0] == 0)
    difference = result.log_prob_input - result.log_prob_baseline
    total = float(result.attributions.sum())
    assert result.completeness_gap == pytest.approx(abs(total - difference) / abs(difference), rel=1e-4)
    if baseline != "zero":
        assert total == pytest.approx(difference, rel=0.05, abs=0.02)
    # Zero embeddings sit on RMSNorm's singularity: most of the change happens at tiny α, which
    # the grid misses — the gap reports it (docs/FAITHFULNESS.md).


def test_integrated_gradients_scores_use_the_midpoint_rule(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    result = lm.salience(PROMPT, TARGET, methods=("integrated_gradients",), integrated_steps=6)
    ids = list(lm.tokenize_pair(PROMPT, TARGET)[0].ids)
    start, end = result.target_token_span
    forward = lm.forward_for("float32")
    _, _, embeddings = forward.gradients(ids, start, end)
    origin = _path_start(forward, embeddings, start, "zero")
    expected = np.zeros(len(ids))
    for alpha in (np.arange(6) + 0.5) / 6:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            scaled = tf.constant((origin + alpha * (embeddings - origin))[None])
            tape.watch(scaled)
            value = forward._target_log_prob_graph(
                scaled,
                tf.constant(np.arange(start, end, dtype=np.int32)),
                tf.constant(np.asarray(ids[start:end], np.int32)),
                tf.ones(end - start),
            )
        expected += np.sum(tape.gradient(value, scaled).numpy()[0] * (embeddings - origin), axis=-1) / 6
    expected[start:] = 0
    np.testing.assert_allclose(result.scores["integrated_gradients"], expected, rtol=1e-3, atol=1e-5)
    gap = result.diagnostics["integrated_gradients"]
    assert gap["baseline"] == "zero" and gap["steps"] == 6 and gap["completeness_gap"] >= 0


def test_padding_does_not_change_scores(tiny_gemma3_lm):
    """Scores for a prompt equal those from an unpadded direct gradient."""
    lm = tiny_gemma3_lm
    result = lm.salience(PROMPT, TARGET)
    ids = list(lm.tokenize_pair(PROMPT, TARGET)[0].ids)
    start, end = result.target_token_span
    forward = lm.forward_for("float32")
    embeddings = tf.Variable(forward.embed(tf.constant([ids])))
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(embeddings)
        value = forward._target_log_prob_graph(
            embeddings,
            tf.constant(np.arange(start, end, dtype=np.int32)),
            tf.constant(np.asarray(ids[start:end], np.int32)),
            tf.ones(end - start),
        )
    gradient = tape.gradient(value, embeddings).numpy()[0]
    expected = np.linalg.norm(gradient, axis=-1)
    expected[start:] = 0
    np.testing.assert_allclose(result.scores["grad_l2"], expected, rtol=1e-4, atol=1e-6)


def test_spans(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    text = PROMPT + TARGET
    begin = text.index("You")
    by_chars = lm.salience(PROMPT, TARGET, char_span=(begin, begin + 3))
    start, end = by_chars.target_token_span
    assert "You" in by_chars.text[by_chars.offsets[start][0] : by_chars.offsets[end - 1][1]]
    assert np.all(by_chars.scores["grad_l2"][start:] == 0)
    by_tokens = lm.salience(PROMPT, TARGET, token_span=(start, end))
    np.testing.assert_allclose(by_tokens.scores["grad_l2"], by_chars.scores["grad_l2"])
    with pytest.raises(InputError, match="outside"):
        lm.salience(PROMPT, TARGET, char_span=(0, len(text) + 5))
    with pytest.raises(InputError, match="outside"):
        lm.salience(PROMPT, TARGET, token_span=(0, 2))
    with pytest.raises(InputError, match="not both"):
        lm.salience(PROMPT, TARGET, char_span=(1, 2), token_span=(1, 2))


def test_bad_inputs(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    with pytest.raises(InputError, match="prompt is empty"):
        lm.salience("", TARGET)
    with pytest.raises(InputError, match="target is empty"):
        lm.salience(PROMPT, "")
    with pytest.raises(InputError, match="invalid Unicode"):
        lm.salience("bad \ud800 surrogate", TARGET)
    with pytest.raises(InputError, match="Unknown salience method"):
        lm.salience(PROMPT, TARGET, methods=("attention",))
    with pytest.raises(ContextLengthError, match="over the limit of 256 tokens of this model's context"):
        lm.salience("word " * 300, TARGET)


def test_bfloat16_agrees_with_float32(tiny_gemma3_lm):
    exact = tiny_gemma3_lm.salience(PROMPT, TARGET, precision="float32")
    fast = tiny_gemma3_lm.salience(PROMPT, TARGET, precision="bfloat16")
    start = exact.target_token_span[0]
    a, b = exact.scores["grad_l2"][:start], fast.scores["grad_l2"][:start]
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_unsupported_model_class():
    class GPT2CausalLM:
        pass

    with pytest.raises(UnsupportedModelError, match="not supported"):
        model_family(GPT2CausalLM())
