"""Cached decoding on tiny models agrees with a full forward pass; stops and sampling behave."""

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from salience.core.errors import ContextLengthError, InputError
from salience.core.types import GenerationSettings
from salience.model.decoding import without_partial_stop as _without_partial_stop

PROMPT = "Recommendation: Avoid. Taste"


@pytest.mark.parametrize("name", ["tiny_gemma3_lm", "tiny_gemma_lm"])
def test_greedy_decoding_matches_full_forward(request, name):
    lm = request.getfixturevalue(name)
    result = lm.generate(PROMPT, GenerationSettings(max_new_tokens=12))
    assert result.stop_reason in ("max_new_tokens", "end_of_text")
    forward = lm.forward_for("float32")
    ids = list(lm.tokenize(PROMPT).ids)
    for token in result.token_ids:
        hidden = forward._hidden(forward.embed(tf.constant([ids])))
        logits = forward._logits(hidden[:, -1]).numpy()[0]
        assert int(np.argmax(logits)) == token
        ids.append(token)
    assert result.text == lm.tokenizer.decode(result.token_ids)


def test_stream_grows_and_ends_final(tiny_gemma3_lm):
    updates = list(tiny_gemma3_lm.stream(PROMPT, GenerationSettings(max_new_tokens=8)))
    assert updates[-1].stop_reason != "running"
    assert all(u.stop_reason == "running" for u in updates[:-1])
    texts = [u.text for u in updates[:-1]]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    assert updates[-1].text.startswith(texts[-1]) if texts else True


def test_stop_sequence_cuts_text(tiny_gemma3_lm):
    """Greedy decoding is deterministic, so the tiny model's text is known: it must be long
    enough to cut (an assertion, never a skip), and the cut must land exactly before the stop."""
    settings = GenerationSettings(max_new_tokens=16)
    full = tiny_gemma3_lm.generate(PROMPT, settings)
    assert full.stop_reason == "max_new_tokens" and len(full.text) >= 8, full
    for stop in (full.text[3:5], full.text[-2:]):  # one in the middle, one at the very end
        first = full.text.index(stop)
        cut = tiny_gemma3_lm.generate(PROMPT, replace(settings, stop_sequences=("never here", stop)))
        assert cut.stop_reason == "stop_sequence"
        assert cut.text == full.text[:first]
        assert full.token_ids[: len(cut.token_ids)] == cut.token_ids  # it stopped there, same tokens
    absent = tiny_gemma3_lm.generate(PROMPT, replace(settings, stop_sequences=("never here",)))
    assert (absent.text, absent.stop_reason) == (full.text, "max_new_tokens")


def test_sampling_is_reproducible_with_a_seed(tiny_gemma3_lm):
    settings = GenerationSettings(max_new_tokens=10, temperature=1.5, top_k=50, top_p=0.95, seed=7)
    first = tiny_gemma3_lm.generate(PROMPT, settings)
    second = tiny_gemma3_lm.generate(PROMPT, settings)
    assert first.token_ids == second.token_ids
    others = {
        tiny_gemma3_lm.generate(
            PROMPT, GenerationSettings(max_new_tokens=10, temperature=1.5, seed=s)
        ).token_ids
        for s in range(5)
    }
    assert len(others) > 1


def test_chat_template_wraps_prompt(tiny_gemma3_lm):
    settings = GenerationSettings(chat_template=True)
    text = tiny_gemma3_lm.format_prompt("Hi", settings)
    assert text.startswith("<start_of_turn>user\nHi<end_of_turn>")
    assert "<start_of_turn>" in tiny_gemma3_lm.tokenize(text).tokens


def test_generation_errors(tiny_gemma3_lm):
    with pytest.raises(InputError, match="prompt is empty"):
        tiny_gemma3_lm.generate("")
    with pytest.raises(InputError, match="Max new tokens"):
        tiny_gemma3_lm.generate(PROMPT, GenerationSettings(max_new_tokens=0))
    with pytest.raises(ContextLengthError, match="Shorten the prompt by"):
        tiny_gemma3_lm.generate("word " * 200, GenerationSettings(max_new_tokens=100))


def test_partial_stop_is_held_back():
    assert _without_partial_stop("Answer: yes\n", ("\n\n",)) == "Answer: yes"
    assert _without_partial_stop("Answer: yes", ("\n\n",)) == "Answer: yes"
    assert _without_partial_stop("abc END", ("ENDING",)) == "abc "
    assert _without_partial_stop("caf\ufffd", ()) == "caf"


def test_stop_sequences_are_unescaped():
    from salience.core.text import unescape

    assert unescape(r"\n\n") == "\n\n"
    assert unescape(r"a\tb\\n é") == "a\tb\\n é"


def test_cpu_limit_is_explained(spm_proto):
    from tiny_models import tiny_gemma3

    from salience.model.language_model import CPU_TOKEN_LIMIT, LanguageModel

    lm = LanguageModel(tiny_gemma3(spm_proto), "tiny", "test:tiny", 32768, precision="float32")
    assert lm.max_context == CPU_TOKEN_LIMIT and lm.model_context == 32768
    with pytest.raises(ContextLengthError, match="this workbench runs on a CPU"):
        lm.generate("word " * CPU_TOKEN_LIMIT)
