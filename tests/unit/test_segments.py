"""Segments partition tokens at every granularity; aggregation and normalisation."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salience.core.errors import InputError
from salience.prompts.segments import GRANULARITIES, aggregate, make_segments, normalize, regex_starts
from salience.prompts.templates import render


def char_tokens(text, size=3, bos=True):
    """Fake tokenization: fixed-size chunks (like SentencePiece, whitespace rides along)."""
    spans = [(i, min(i + size, len(text))) for i in range(0, len(text), size)]
    return ([(0, 0)] if bos else []) + spans


def word_tokens(text):
    """SentencePiece-like: each token is a run of spaces plus the next word, or a newline run."""
    import regex

    return [(0, 0)] + [m.span() for m in regex.finditer(r"\n+|[^\S\n]*[^\s]+|[^\S\n]+", text)]


def texts(segments):
    return [s.text for s in segments]


def test_words_sentences_lines_paragraphs():
    text = "Dr. Smith paid 3.5 euros, e.g. for tea. Then left!\nNew line here\n\nNew paragraph."
    tokens = word_tokens(text)
    words = make_segments(text, tokens, "words")
    assert texts(words)[1:4] == ["Dr.", " Smith", " paid"]
    sentences = [t.strip() for t in texts(make_segments(text, tokens, "sentences")) if t.strip()]
    assert sentences == [
        "Dr. Smith paid 3.5 euros, e.g. for tea.",
        "Then left!",
        "New line here",
        "New paragraph.",
    ]
    lines = [t for t in texts(make_segments(text, tokens, "lines")) if t]
    assert lines[0].endswith("left!\n") and lines[1] == "New line here\n\n"
    paragraphs = [t for t in texts(make_segments(text, tokens, "paragraphs")) if t]
    assert paragraphs == [text[: text.index("New paragraph")], "New paragraph."]


def test_bos_is_its_own_segment_and_target_boundary():
    prompt, target = "Analysis: it", " has cheese."
    text = prompt + target
    tokens = word_tokens(prompt) + [(s + len(prompt), e + len(prompt)) for s, e in word_tokens(target)[1:]]
    segments = make_segments(text, tokens, "sentences", prompt_length=len(prompt))
    assert segments[0].token_start == 0 and segments[0].token_end == 1 and segments[0].text == ""
    assert [s.in_target for s in segments] == [False, False, True]
    assert segments[-1].text == target


def test_slots_granularity():
    rendered = render("Likes: {food}\nAnalysis:", {"food": "Cheese"})
    tokens = word_tokens(rendered.text)
    segments = make_segments(rendered.text, tokens, "slots", slots=rendered.slots)
    assert texts(segments)[1:] == ["Likes:", " Cheese", "\nAnalysis:"]


def test_regex_granularity_and_errors():
    text = "Analysis: a\nRecommendation: b\nAnalysis: c"
    segments = make_segments(text, word_tokens(text), "regex", pattern="^Analysis")
    assert [t for t in texts(segments) if t] == ["Analysis: a\nRecommendation: b\n", "Analysis: c"]
    with pytest.raises(InputError, match="not a valid regular expression"):
        regex_starts(text, "(unclosed")
    with pytest.raises(InputError, match="empty"):
        regex_starts(text, "")


def test_catastrophic_regex_times_out_quickly():
    text = "a" * 5000 + "!"
    started = time.perf_counter()
    with pytest.raises(InputError, match="took longer than"):
        regex_starts(text, "(a+)+$", timeout=0.2)
    assert time.perf_counter() - started < 2.0


def test_unknown_granularity():
    with pytest.raises(InputError, match="Unknown granularity"):
        make_segments("abc", [(0, 3)], "chapters")


def test_aggregate_and_normalize():
    text = "one two three"
    tokens = [(0, 3), (3, 7), (7, 13)]
    segments = make_segments(text, tokens, "tokens")
    scores = np.array([1.0, -3.0, 2.0])
    assert list(aggregate(scores, segments, "sum")) == [1.0, -3.0, 2.0]
    merged = make_segments("one two", [(0, 2), (2, 3), (3, 7)], "words")
    assert list(aggregate(np.array([1.0, 2.0, -4.0]), merged, "sum")) == [3.0, -4.0]
    assert list(aggregate(np.array([1.0, 2.0, -4.0]), merged, "mean")) == [1.5, -4.0]
    assert list(aggregate(np.array([1.0, -2.0, -4.0]), merged, "max")) == [-2.0, -4.0]
    values, scale = normalize(np.array([1.0, -4.0]))
    assert scale == 4.0 and list(values) == [0.25, -1.0]
    shared, _ = normalize(np.array([1.0, -4.0]), scale=8.0)
    assert list(shared) == [0.125, -0.5]
    assert normalize(np.zeros(3))[1] == 0.0
    with pytest.raises(InputError):
        aggregate(scores, segments, "median")


weird_text = st.lists(
    st.sampled_from(list("ab .!?\n\t日本😀é") + ["e.g. ", "Dr. ", "3.5", "\n\n", "  "]), max_size=40
).map("".join)


@settings(max_examples=200, deadline=None)
@given(weird_text, st.sampled_from([g for g in GRANULARITIES if g != "slots"]), st.integers(1, 5), st.data())
def test_segments_partition_tokens(text, granularity, size, data):
    if not text:
        return
    tokens = char_tokens(text, size)
    prompt_length = data.draw(st.integers(0, len(text)))
    segments = make_segments(text, tokens, granularity, prompt_length=prompt_length, pattern=r"\s")
    assert segments[0].token_start == 0 and segments[-1].token_end == len(tokens)
    for left, right in zip(segments, segments[1:]):
        assert left.token_end == right.token_start
        assert left.end == right.start
    assert segments[0].start == 0 and segments[-1].end == len(text)
    assert "".join(texts(segments)) == text
    assert all(s.token_end > s.token_start for s in segments)
