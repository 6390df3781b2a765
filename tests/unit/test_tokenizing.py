"""Character offsets of SentencePiece tokens, including byte-fallback pieces."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from salience.model.tokenizing import OffsetTokenizer


@pytest.fixture(scope="module")
def tokenizer(spm_proto):
    return OffsetTokenizer(spm_proto, bos_id=2)


def _check_cover(text, tokens):
    assert tokens.offsets[0][0] == 0 if tokens.offsets else text == ""
    previous_end = 0
    for start, end in tokens.offsets:
        assert start <= end
        assert start >= previous_end - 1  # byte pieces of one character share it
        previous_end = max(previous_end, end)
    assert previous_end == len(text)


@pytest.mark.parametrize(
    "text",
    ["Keras is a", "Hello  world\n\nfoo 3.14", "café 😀 日本語", "ǅ\u0301\u200d🏳️‍🌈 tab\tend ", "x"],
)
def test_offsets_cover_text(tokenizer, text):
    tokens = tokenizer.tokenize(text)
    _check_cover(text, tokens)
    assert tokenizer.decode(tokens.ids) == text
    joined = "".join(text[s:e] for s, e in _dedupe(tokens.offsets))
    assert joined == text


def _dedupe(spans):
    seen_end = 0
    for start, end in spans:
        start = max(start, seen_end)
        if end > start:
            yield start, end
            seen_end = end


def test_bos_and_shift(tokenizer):
    tokens = tokenizer.tokenize("Keras", add_bos=True, offset=10)
    assert tokens.tokens[0] == "<bos>" and tokens.offsets[0] == (10, 10)
    assert tokens.offsets[-1][1] == 15


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
@example("▁")  # SentencePiece's own space marker typed as text
@example("a ▁b▁ ▁▁c")
def test_offsets_cover_any_text(tokenizer, text):
    tokens = tokenizer.tokenize(text)
    if text:
        _check_cover(text, tokens)
