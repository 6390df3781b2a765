"""Our decoding path (salience.forward) re-implements KerasHub's cached call on layer internals;
its logits must stay those of KerasHub's own `CausalLM`, so a KerasHub upgrade cannot drift."""

import numpy as np
import pytest

PROMPT = "Recommendation: Avoid. Taste-likes: Cheese."


def keras_hub_logits(causal_lm, ids: list[int]) -> np.ndarray:
    """[len(ids), vocabulary] logits from KerasHub's own CausalLM call (no cache, no gathering)."""
    inputs = {"token_ids": np.array([ids], np.int32), "padding_mask": np.ones((1, len(ids)), np.int32)}
    return np.asarray(causal_lm(inputs, training=False), np.float32)[0]


class KerasHubDecoder:
    """KerasHub's own cached decoding, as its `generate` runs it: `call_with_cache` over the
    padded prompt, then one token at a time."""

    def __init__(self, lm, ids: list[int], length: int = 128):
        self.causal_lm = lm.causal_lm
        self.gemma3 = lm.family == "gemma3"
        tokens = np.zeros((1, length), np.int32)
        tokens[0, : len(ids)] = ids
        options = {}
        if self.gemma3:
            options["padding_mask"] = (np.arange(length) < len(ids))[None].astype(np.int32)
        empty = lm.forward_for("float32").empty_cache(length)  # zeros in KerasHub's cache layout
        logits, _, self.cache = self.causal_lm.call_with_cache(tokens, empty, 0, **options)
        self.logits = np.asarray(logits, np.float32)[0, len(ids) - 1]

    def step(self, token: int, index: int) -> np.ndarray:
        logits, _, self.cache = self.causal_lm.call_with_cache(
            np.array([[token]], np.int32), self.cache, index
        )
        self.logits = np.asarray(logits, np.float32)[0, 0]
        return self.logits


def assert_decoding_matches(lm, steps: int = 6, tolerance: float = 1e-4, plain_call: bool = True) -> None:
    """Our prefill and steps against KerasHub's cached decoding and (``plain_call``) its
    uncached call on the whole sequence, logit by logit."""
    forward = lm.forward_for("float32")
    ids = list(lm.tokenize(PROMPT).ids)
    logits, cache = forward.prefill(ids, 128)
    theirs = KerasHubDecoder(lm, ids)
    for step in range(steps + 1):
        ours = logits.numpy()
        np.testing.assert_allclose(ours, theirs.logits, rtol=tolerance, atol=tolerance)
        if plain_call:
            np.testing.assert_allclose(
                ours, keras_hub_logits(lm.causal_lm, ids)[-1], rtol=tolerance, atol=tolerance
            )
        if step == steps:
            break
        token = int(np.argmax(theirs.logits))
        logits, cache = forward.step(token, len(ids), cache)
        theirs.step(token, len(ids))
        ids.append(token)


@pytest.mark.parametrize("name", ["tiny_gemma3_lm", "tiny_gemma_lm"])
def test_cached_decoding_logits_match_keras_hub(request, name):
    assert_decoding_matches(request.getfixturevalue(name))


def test_gemma2_soft_capped_decoding_matches_keras_hub(spm_proto):
    from tiny_models import tiny_gemma

    from salience.model import LanguageModel

    lm = LanguageModel(tiny_gemma(spm_proto, seed=1, soft_cap=3.0), "g2", "test:g2", 256, precision="float32")
    # Our path capped Gemma 2's final logits a second time (KerasHub's embedding caps them).
    assert_decoding_matches(lm)


def test_the_comparison_can_fail(tiny_gemma3_lm, monkeypatch):
    """Shifting one position in our path (a drifted cache index) is caught."""
    forward = tiny_gemma3_lm.forward_for("float32")
    original = forward.step
    monkeypatch.setattr(forward, "step", lambda token, index, cache: original(token, index + 1, cache))
    with pytest.raises(AssertionError):
        assert_decoding_matches(tiny_gemma3_lm)
