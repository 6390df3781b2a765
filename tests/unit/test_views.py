"""Display helpers: re-finding a selection after the output changed, readout, top segments."""

import numpy as np
import regex

from salience.core.types import SalienceResult
from salience.prompts.segments import make_segments
from salience.prompts.templates import render
from salience.report.views import (
    chart_rows,
    find_selection,
    heatmap_view,
    legend_words,
    readout,
    top_segments,
)


def tokens(text):
    return [(0, 0)] + [m.span() for m in regex.finditer(r"\n+|[^\S\n]*[^\s]+|[^\S\n]+", text)]


def test_selection_follows_its_leading_word():
    prompt = "Analysis:"
    old = " it has cheese.\nRecommendation: You have to try it."
    new = " it has a lot of cheese in it.\nRecommendation: Avoid."
    new_text = prompt + new
    start = old.index("Recommendation")
    chosen = old[start:]
    segments = make_segments(new_text, tokens(new_text), "sentences", prompt_length=len(prompt))
    span = find_selection(segments, new_text, len(prompt), (start, len(old)), chosen)
    assert new_text[span[0] : span[1]] == "Recommendation: Avoid."


def test_selection_falls_back_to_position():
    prompt = "Q:"
    text = prompt + " one two three"
    segments = make_segments(text, tokens(text), "words", prompt_length=len(prompt))
    span = find_selection(segments, text, len(prompt), (5, 8), "gone")
    assert text[span[0] : span[1]] == " two"
    assert find_selection(segments, text, len(prompt), (500, 600), "") == (text.index(" three"), len(text))


def test_readout_and_top_segments():
    prompt, target = "Likes cheese. Hates eggs.", " Avoid."
    text = prompt + target
    offsets = tokens(text)
    scores = np.zeros(len(offsets), np.float32)
    scores[4] = 2.0  # " Hates"
    result = SalienceResult(
        text=text,
        prompt_length=len(prompt),
        tokens=tuple(text[s:e] for s, e in offsets),
        offsets=tuple(offsets),
        target_token_span=(len(offsets) - 1, len(offsets)),
        scores={"grad_l2": scores, "grad_dot_input": -scores},
    )
    view = heatmap_view(text, offsets, len(prompt), "sentences", "grad_l2", result)
    assert top_segments(view, 1)[0]["segment"] == "Hates eggs."
    assert readout(view, result) == "By Grad L2, “Avoid.” is most sensitive to “Hates eggs.”."
    signed = heatmap_view(text, offsets, len(prompt), "sentences", "grad_dot_input", result)
    words = readout(signed, result)
    assert "“Hates eggs.” has the strongest score for “Avoid.” (negative" in words
    assert "toward" not in words and "away" not in words  # Grad · Input's sign is not a direction
    assert signed.normalized.min() == -1.0


def _result(text, prompt, offsets, target_start, scores):
    return SalienceResult(
        text=text,
        prompt_length=len(prompt),
        tokens=tuple(text[s:e] for s, e in offsets),
        offsets=tuple(offsets),
        target_token_span=(target_start, len(offsets)),
        scores=scores,
    )


def _token_at(offsets, position):
    return next(i for i, (s, e) in enumerate(offsets) if s <= position < e)


def test_readout_names_a_copied_line_as_what_the_output_copied_and_says_which_copy():
    rendered = render(
        "Likes: sweet\nVerdict: {first}\n\nLikes: salt\nVerdict: Fine.\n\nLikes: sour\n",
        {"first": "Try it."},
    )
    prompt = rendered.text
    text = prompt + "Verdict: Try it."
    offsets = tokens(text)
    scores = np.zeros(len(offsets))
    copy = prompt.index("Verdict: Try it.")
    scores[_token_at(offsets, copy)] = 9.0  # the identical line in the prompt scores highest
    scores[_token_at(offsets, prompt.index("Verdict: Fine."))] = 4.0
    scores[_token_at(offsets, prompt.index("salt"))] = -1.0
    target = _token_at(offsets, len(prompt))
    result = _result(text, prompt, offsets, target, {"grad_l2": scores, "occlusion": scores})
    view = heatmap_view(text, offsets, len(prompt), "lines", "grad_l2", result, rendered)
    words = readout(view, result, rendered)
    assert words == (
        "By Grad L2, “Verdict: Try it.” is copied from the first example's Verdict line, with the "
        "‘first’ value; it is most sensitive to that text."
    )
    assert "left out" not in words
    assert chart_rows(view, result, rendered)[0]["where"].startswith("the first example's Verdict line")
    deletion = heatmap_view(text, offsets, len(prompt), "lines", "occlusion", result, rendered)
    assert readout(deletion, result, rendered).startswith(
        "By Deletion, “Verdict: Try it.” is copied from the first example's Verdict line, with the "
        "‘first’ value; that text supported it most"
    )
    scores[_token_at(offsets, copy)] = 0.5  # now a line it does not copy is strongest
    deletion = heatmap_view(text, offsets, len(prompt), "lines", "occlusion", result, rendered)
    assert (
        "“Verdict: Fine.” (the second example's Verdict line) supported “Verdict: Try it.” most"
        in readout(deletion, result, rendered)
    )


def test_readout_says_which_copy_of_a_repeated_output_line_it_explains():
    prompt = "Q: say ok twice.\nA:"
    text = prompt + " ok.\nok."
    offsets = tokens(text)
    scores = np.zeros(len(offsets))
    scores[1] = 1.0
    result = _result(text, prompt, offsets, len(offsets) - 1, {"grad_l2": scores})
    view = heatmap_view(text, offsets, len(prompt), "words", "grad_l2", result)
    assert "“ok.” (the 2nd of 2 in the output)" in readout(view, result)


def test_chart_rows_keep_every_position_sorted_by_magnitude_with_legend_words():
    prompt = "Go. Stop. Go. Wait."
    text = prompt + " Go."
    offsets = tokens(text)
    scores = np.zeros(len(offsets))
    scores[1], scores[2], scores[3], scores[4] = 1.0, -3.0, 2.0, 0.5  # Go. Stop. Go. Wait.
    result = _result(text, prompt, offsets, len(offsets) - 1, {"grad_dot_input": scores, "occlusion": scores})
    view = heatmap_view(text, offsets, len(prompt), "sentences", "occlusion", result)
    rows = chart_rows(view, result)
    assert [row["segment"] for row in rows] == ["Stop.", "Go.", "Go.", "Wait."]
    assert len({row["label"] for row in rows}) == 4  # the two "Go." bars stay apart
    assert [row["where"] for row in rows[1:3]] == ["the 2nd of 2 copies", "the 1st of 2 copies"]
    assert rows[0]["meaning"].startswith("worked against") and rows[1]["meaning"].startswith("supported")
    assert rows[1]["same_as_selection"] and not rows[0]["same_as_selection"]  # the selection copies it
    signed = heatmap_view(text, offsets, len(prompt), "sentences", "grad_dot_input", result)
    assert {row["meaning"] for row in chart_rows(signed, result)} == {"negative score", "positive score"}


def test_legend_words_come_from_the_method():
    low, high, note, signed = legend_words("occlusion", 0.5, shared=True)
    assert low.startswith("worked against") and high.startswith("supported") and signed
    assert note == "Strongest colour = ±0.5 nats (change in log-probability) · one scale shared by all panes"
    for method in ("grad_dot_input", "integrated_gradients", "grad_l2"):
        words = " ".join(legend_words(method, 1.0)[:2])
        assert "toward" not in words and "away" not in words and "supported" not in words
    assert legend_words("grad_l2", 2.0).note == "Strongest colour = 2"


def test_switching_granularity_never_shrinks_the_selection():
    prompt = "Analysis:"
    output = " it has cheese.\nRecommendation: You have to try it."
    text = prompt + output
    offsets = tokens(text)
    start = output.index("Recommendation")
    chosen = output[start:]
    for granularity in ("words", "tokens", "sentences", "lines"):
        segments = make_segments(text, offsets, granularity, prompt_length=len(prompt))
        span = find_selection(segments, text, len(prompt), (start, len(output)), chosen)
        assert text[span[0] : span[1]].strip() == chosen, granularity
    word = output.index("have")
    segments = make_segments(text, offsets, "sentences", prompt_length=len(prompt))
    span = find_selection(segments, text, len(prompt), (word, word + 4), "have")
    assert text[span[0] : span[1]] == "Recommendation: You have to try it."  # widened to the sentence


def test_legend_html_puts_words_at_their_ends_and_the_scale_in_details():
    from salience.report.export import legend_html

    page = legend_html("occlusion", True, 0.5, shared=True, test_id="shared-legend")
    low, high = page.index("← worked against"), page.index("supported (output less likely without it) →")
    assert page.index("linear-gradient") < low < high  # bar first, then low end (left), high end (right)
    main, details = page.split("<details", 1)
    assert "0.5" not in main and "±0.5 nats" in details and "shared by all panes" in details
    assert "toward" not in legend_html("grad_dot_input", True, 1.0)
