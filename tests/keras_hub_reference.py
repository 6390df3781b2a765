"""KerasHub's own logits for a model, to compare our re-implemented decoding path against
(tests/model on the tiny models, tests/real on the embedded one)."""

from __future__ import annotations

import numpy as np

PROMPT = "Recommendation: Avoid. Taste-likes: Cheese."


def keras_hub_logits(causal_lm, ids: list[int]) -> np.ndarray:
    """[len(ids), vocabulary] logits from KerasHub's own CausalLM call (no cache, no gathering)."""
    inputs = {"token_ids": np.array([ids], np.int32), "padding_mask": np.ones((1, len(ids)), np.int32)}
    return np.asarray(causal_lm(inputs, training=False), np.float32)[0]


class KerasHubDecoder:
    """KerasHub's own cached decoding, as its `generate` runs it: `call_with_cache` over the
    padded prompt, then one token at a time."""

    def __init__(self, lm, ids: list[int], length: int = 128):
        self.causal_lm = lm.task_for("float32")
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


def assert_decoding_matches(
    lm, steps: int = 6, tolerance: float = 1e-4, plain_call: bool = True, prompt: str = PROMPT
) -> None:
    """Our prefill and steps against KerasHub's cached decoding and (``plain_call``) its
    uncached call on the whole sequence, logit by logit."""
    forward = lm.forward_for("float32")
    ids = list(lm.tokenize(prompt).ids)
    logits, cache = forward.prefill(ids, 128)
    theirs = KerasHubDecoder(lm, ids)
    for step in range(steps + 1):
        ours = logits.numpy()
        np.testing.assert_allclose(ours, theirs.logits, rtol=tolerance, atol=tolerance)
        if plain_call:
            np.testing.assert_allclose(
                ours, keras_hub_logits(theirs.causal_lm, ids)[-1], rtol=tolerance, atol=tolerance
            )
        if step == steps:
            break
        token = int(np.argmax(theirs.logits))
        logits, cache = forward.step(token, len(ids), cache)
        theirs.step(token, len(ids))
        ids.append(token)
