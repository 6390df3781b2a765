"""Agreement between a gradient method and Deletion, and cutting a segment out of a prompt."""

import numpy as np
import pytest
import regex

from salience.attribution.agreement import (
    agreement_line,
    compare_top,
    deletion_targets,
    ranked,
    spearman,
    token_spans,
    without_segment,
)
from salience.core.errors import InputError
from salience.prompts.segments import make_segments

TEXTS = {0: "Alice lives in Paris.", 1: "Bob likes tea.", 2: "Carol owns a cat.", 3: "Dan is tall."}


def tokens(text):
    return [(0, 0)] + [m.span() for m in regex.finditer(r"\n+|[^\S\n]*[^\s]+|[^\S\n]+", text)]


def test_ranked_by_magnitude_ties_keep_prompt_order():
    assert ranked([0.1, -0.9, 0.5, 0.5], [0, 1, 2, 3]) == [1, 2, 3, 0]
    assert ranked([0.1, -0.9, 0.5, 0.5], [0, 3]) == [3, 0]


def test_same_top_set_is_confirmed_whatever_the_order():
    agreement = compare_top([3.0, 2.0, 1.0, 0.0], [0.5, 2.0, 1.5, 0.1], [0, 1, 2, 3])
    assert agreement.k == 3 and agreement.agree
    line = agreement_line(agreement, TEXTS, "sentences", "Grad L2")
    assert line == "Deletion confirms the top 3 sentences by Grad L2."


def test_top_match_but_other_members_differ_names_both():
    agreement = compare_top([3.0, 2.0, 1.0, 0.0], [3.0, 0.0, 1.0, 2.0], [0, 1, 2, 3], k=2)
    assert not agreement.agree and agreement.top_match
    assert agreement.only_gradient == (1,) and agreement.only_deletion == (3,)
    line = agreement_line(agreement, TEXTS, "sentences", "Grad L2")
    assert line.startswith(
        "Deletion confirms the top sentence by Grad L2, “Alice lives in Paris.”; for the rest"
    )
    assert "Grad L2 ranks “Bob likes tea.” there, Deletion “Dan is tall.”" in line


def test_copies_are_told_apart_by_place():
    texts = {0: "Likes: tea.", 1: "Likes: tea.", 2: "Other.", 3: "More."}
    places = {0: "the first example", 1: "the second example", 2: "", 3: ""}
    agreement = compare_top([3.0, 2.0, 0.0, 0.0], [3.0, 0.0, 2.0, 0.0], [0, 1, 2, 3], k=2)
    line = agreement_line(agreement, texts, "sentences", "Grad L2", places)
    assert "“Likes: tea.” (the first example)" in line
    assert "“Likes: tea.” (the second example)" in line
    assert line.endswith("Deletion “Other.”.")


def test_disagreement_names_each_methods_first():
    agreement = compare_top([3.0, 0.2, 0.1, 0.0], [0.1, -4.0, 0.2, 0.3], [0, 1, 2, 3])
    assert not agreement.top_match
    line = agreement_line(agreement, TEXTS, "lines", "Grad · Input")
    assert line.startswith(
        "Methods disagree on the top line: Grad · Input ranks “Alice lives in Paris.” first"
    )
    assert "Deletion ranks “Bob likes tea.” first" in line
    assert "They share 2 of their top 3." in line
    assert "toward" not in line and "away" not in line  # ranking is by size only


def test_k_never_covers_every_candidate():
    agreement = compare_top([1.0, 0.0], [0.0, 1.0], [0, 1])
    assert agreement.k == 1 and not agreement.agree
    assert compare_top([1.0, 0.0], [1.0, 0.0], [0, 1]).agree


def test_one_segment_has_nothing_to_compare():
    assert compare_top([1.0], [1.0], [0]) is None
    assert compare_top([1.0, 2.0], [1.0, 2.0], [1, 1]) is None  # duplicates count once


def test_negligible_deletion_is_said_plainly():
    agreement = compare_top([1.0, 2.0, 3.0], [0.0, 1e-6, -1e-5], [0, 1, 2])
    assert agreement.deletion_negligible
    line = agreement_line(agreement, TEXTS, "words", "Grad L2")
    assert "cannot confirm" in line and "single word" in line


def test_spearman_matches_definition_and_handles_constants():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2, 2, 3], [1, 3, 3, 4]) == pytest.approx(1.0)


def test_deletion_targets_skip_bos_whitespace_and_output():
    prompt = "First fact.   \n\nSecond fact. Question?"
    text = prompt + " Answer."
    segments = make_segments(text, tokens(text), "sentences", prompt_length=len(prompt))
    chosen = deletion_targets(segments, len(prompt))
    assert [segments[i].text.strip() for i in chosen] == ["First fact.", "Second fact.", "Question?"]
    spans = token_spans(segments, chosen)
    assert all(start >= 1 and end > start for start, end in spans)
    assert spans == sorted(spans)


def test_whitespace_only_slot_is_not_a_target():
    prompt = "A: x\nB:   \nC: y"
    text = prompt + " z"
    offsets = tokens(text)
    segments = make_segments(text, offsets, "tokens", prompt_length=len(prompt))
    chosen = deletion_targets(segments, len(prompt))
    assert all(segments[i].text.strip() for i in chosen)
    assert all(segments[i].start < len(prompt) for i in chosen)


def test_without_segment_cuts_text_and_trailing_space():
    prompt = "Likes cheese. Hates eggs. Try it?"
    start = prompt.index("Hates")
    end = prompt.index("Try")
    assert without_segment(prompt, start, end) == "Likes cheese. Try it?"
    assert without_segment(prompt, start, 10_000) == "Likes cheese. "  # clipped at the prompt's end


@pytest.mark.parametrize(
    ("prompt", "span", "message"),
    [
        ("Only this.", (0, 10), "whole prompt"),
        ("A.  B.", (2, 4), "only whitespace"),
        ("A. B.", (5, 9), "part of the prompt"),
        ("A. B.", (3, 3), "part of the prompt"),
    ],
)
def test_without_segment_refuses_what_cannot_be_deleted(prompt, span, message):
    with pytest.raises(InputError, match=message):
        without_segment(prompt, *span)


def test_deleting_every_token_of_a_prompt_is_the_empty_prompt_case():
    prompt = "One."
    segments = make_segments(prompt + " Two", tokens(prompt + " Two"), "sentences", prompt_length=len(prompt))
    only = deletion_targets(segments, len(prompt))
    assert len(only) == 1
    assert compare_top(np.ones(len(segments)), np.ones(len(segments)), only) is None
    with pytest.raises(InputError, match="whole prompt"):
        without_segment(prompt, segments[only[0]].start, segments[only[0]].end)


def test_redundancy_is_said_in_plain_words():
    from salience.attribution.agreement import redundancy_sentence, times_less_likely

    assert times_less_likely(3.7) == "about 40 times less likely"
    assert times_less_likely(1.0) == "about 2.7 times less likely"
    assert times_less_likely(12.0) == "more than a thousand times less likely"
    assert times_less_likely(0.1) == "hardly less likely"
    line = redundancy_sentence("“Tom lives in Paris.”", "“Tom's home is Paris.”", 0.2, 2.3)
    assert "at most about 20 times" in redundancy_sentence("a", "b", 3.0, 9.0)
    assert line == (
        "“Tom lives in Paris.” and “Tom's home is Paris.” back each other up: removing just one leaves the "
        "selection hardly less likely, removing both makes it about 10 times less likely."
    )
