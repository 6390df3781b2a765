"""Our decoding path (salience.model.forward) re-implements KerasHub's cached call on layer internals;
its logits must stay those of KerasHub's own `CausalLM`, so a KerasHub upgrade cannot drift."""

import pytest
from keras_hub_reference import assert_decoding_matches


@pytest.mark.parametrize("name", ["tiny_gemma3_lm", "tiny_gemma_lm"])
def test_cached_decoding_logits_match_keras_hub(request, name):
    assert_decoding_matches(request.getfixturevalue(name))


def test_gemma2_soft_capped_decoding_matches_keras_hub(spm_proto):
    from tiny_models import tiny_gemma

    from salience.model.language_model import LanguageModel

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
