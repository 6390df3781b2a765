"""Display helpers: re-finding a selection after the output changed, readout, top segments."""

import numpy as np
import regex

from salience.segments import make_segments
from salience.types import SalienceResult
from salience.views import find_selection, heatmap_view, readout, top_segments


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
    assert readout(view, result) == "Most influence on 'Avoid.' came from 'Hates eggs.' (Grad L2)."
    signed = heatmap_view(text, offsets, len(prompt), "sentences", "grad_dot_input", result)
    assert "away from 'Avoid.'" in readout(signed, result)
    assert signed.normalized.min() == -1.0
